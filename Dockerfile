# The encurta image: one process serving the enabled modules (ENCURTA_MODULES, default all).
#
# It holds no secret. Each module's database comes from ENCURTA_<MODULE>__DATABASE_URL
# (see docker-compose.yml): the image has no embedded PostgreSQL (the `embedded` extra), and
# a module without a URL stops the start with a message saying so. The auth signing key is generated into ENCURTA_DATA_DIR on
# first start unless ENCURTA_AUTH__PRIVATE_KEY(_FILE) provides one.
#
#   docker build -t encurta .

ARG PYTHON_IMAGE=python:3.11-slim

# --- build: a virtualenv with the project and its dependencies -----------------------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore

RUN python -m venv /opt/encurta
WORKDIR /src

# Dependencies first, exactly as uv.lock pins them (what the tests ran with), so a code
# change does not reinstall them. The image talks to Kafka and to managed PostgreSQL
# servers (docker-compose.yml): the `kafka` extra, not the embedded PostgreSQL.
COPY pyproject.toml uv.lock README.md ./
RUN pip install uv==0.13.9 \
    && uv export --locked --no-hashes --no-emit-project --no-dev --extra kafka \
        > /tmp/requirements.txt \
    && /opt/encurta/bin/pip install -r /tmp/requirements.txt

# Then the project itself: the `app` package, with migrations/ packaged as app/_migrations.
COPY app ./app
COPY migrations ./migrations
RUN /opt/encurta/bin/pip install --no-deps . \
    && /opt/encurta/bin/encurta --help > /dev/null

# --- runtime: the virtualenv, a non-root user and its data folder --------------------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="encurta" \
      org.opencontainers.image.description="A self-hosted URL shortener with click analytics." \
      org.opencontainers.image.licenses="MIT"

RUN groupadd --gid 10001 encurta \
    && useradd --uid 10001 --gid encurta --no-create-home \
        --home-dir /var/lib/encurta --shell /usr/sbin/nologin encurta \
    && install -d -o encurta -g encurta -m 0700 /var/lib/encurta

# Same path as in the build stage, so the venv's scripts and interpreter link stay valid.
COPY --from=build /opt/encurta /opt/encurta

ENV PATH=/opt/encurta/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    ENCURTA_DATA_DIR=/var/lib/encurta

# Mount a volume here (docker-compose.yml does): it holds the auth signing key. A named
# volume starts with this folder's owner and mode (encurta, 0700).
WORKDIR /var/lib/encurta
# Numeric, so an orchestrator can check that it is not root (runAsNonRoot).
USER 10001:10001

EXPOSE 8000
CMD ["encurta", "serve", "--host", "0.0.0.0", "--port", "8000"]
