# The newcomer's two commands are `make run` and `make test`; `make check` is what CI runs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export ENCURTA_DATA_DIR ?= $(CURDIR)/data

.PHONY: run test test-fast lint check clean screenshots vendor

# The browser tests (tests/browser) drive the system's Chromium: Playwright cannot download
# its own here, and 1.64 (pinned) drives Debian's 156. Installed when we can (root with
# apt), else the exact command is printed and the tests fail rather than skip.
export CHROMIUM ?= /usr/bin/chromium

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

$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "Installing Debian's chromium for the browser tests (a minute or two, once)"; \
		apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	else \
		echo "The browser tests need Chromium at $(CHROMIUM): run" >&2; \
		echo "    sudo apt-get install -y chromium" >&2; \
		echo "or set CHROMIUM to another build of Chromium 156." >&2; \
		exit 1; \
	fi

# Shlink's JS SDK for tests/test_shlink_client.py: exactly what package-lock.json pins,
# installed by npm (from Debian, with Node, when we can), else the command is printed.
SHLINK_SDK := tests/shlink/node_modules/.installed
$(SHLINK_SDK): tests/shlink/package.json tests/shlink/package-lock.json
	@if ! command -v node >/dev/null || ! command -v npm >/dev/null; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "Installing Debian's nodejs and npm for the Shlink SDK test (once)"; \
			apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null; \
		else \
			echo "The Shlink SDK test needs Node.js 18+ and npm: run" >&2; \
			echo "    sudo apt-get install -y nodejs npm" >&2; \
			exit 1; \
		fi; \
	fi
	npm ci --prefix tests/shlink --no-audit --no-fund
	touch $@

test: $(VENV)/.installed $(CHROMIUM) $(SHLINK_SDK)
	$(BIN)/pytest

# Every page at 1280 and 360 px, light and dark, into docs/screenshots/ (look at them).
screenshots: $(VENV)/.installed $(CHROMIUM)
	SCREENSHOTS=docs/screenshots $(BIN)/pytest -q tests/browser/test_looks*.py

# Fetch the pinned browser assets from npm again and rewrite their manifest.
vendor:
	$(BIN)/python scripts/vendor_assets.py

# The pure tests only (no PostgreSQL, broker or process started): seconds, for the inner loop.
test-fast: $(VENV)/.installed
	$(BIN)/pytest -m "not integration" -q

lint: $(VENV)/.installed
	$(BIN)/ruff check app tests bench migrations scripts
	$(BIN)/ruff format --check app tests bench migrations scripts
	$(BIN)/mypy
	$(BIN)/lint-imports importlinter.ini
	@# Known vulnerabilities in what uv.lock pins (pip-audit, PyPI's advisories; ~10 s).
	$(BIN)/python scripts/audit_lock.py

check: lint test  # exactly what .ci/run does

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache tests/shlink/node_modules
