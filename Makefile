# The newcomer's two commands are `make run` and `make test`; `make check` is what CI runs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export ENCURTA_DATA_DIR ?= $(CURDIR)/data

.PHONY: run test test-fast lint check clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv

# Reinstall only when the dependencies change.
# Installs exactly what uv.lock pins (`--locked` fails if pyproject.toml changed without
# `uv lock`); `.venv/bin/uv lock --upgrade` refreshes the pins.
$(VENV)/.installed: pyproject.toml uv.lock | $(BIN)/python
	UV_PROJECT_ENVIRONMENT=$(VENV) $(BIN)/uv sync --quiet --locked --inexact --all-extras \
		--compile-bytecode --python $(BIN)/python
	@# Compiled once here: with PYTHONDONTWRITEBYTECODE set, every start would compile again.
	$(BIN)/python -m compileall -q app
	touch $@

run: $(VENV)/.installed
	$(BIN)/encurta serve

test: $(VENV)/.installed
	$(BIN)/pytest

# The pure tests only (no PostgreSQL, broker or process started): seconds, for the inner loop.
test-fast: $(VENV)/.installed
	$(BIN)/pytest -m "not integration" -q

lint: $(VENV)/.installed
	$(BIN)/ruff check app tests bench migrations scripts
	$(BIN)/ruff format --check app tests bench migrations scripts
	$(BIN)/mypy
	$(BIN)/lint-imports importlinter.ini

check: lint test  # exactly what .ci/run does

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
