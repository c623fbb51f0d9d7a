"""The structure of docker-compose.yml and of the proxy's routing (docker/proxy/nginx.conf).

No Docker engine runs on these machines, so nothing here starts a container: the tests read
the files and check what a mistake would break. Each app container runs one module, over
Kafka, with its own database only; passwords come from .env; only the proxy is published;
and the proxy sends every route of each module to that module's container.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from app.cli import described
from app.config import Settings
from app.kernel.metrics import MetricsSettings
from app.registry import NAMES
from tests.conftest import AppFactory

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / "docker" / ".env.example"

APPS = tuple(NAMES)  # one app service per module, named after it
POSTGRES = {module: f"postgres-{module}" for module in APPS}
SERVICES = {"kafka", "proxy", "prometheus", "grafana", *APPS, *POSTGRES.values()}
JWKS_PATH = "/.well-known/jwks.json"

# --- reading the compose file ---------------------------------------------------------------


@cache
def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def service(name: str) -> dict[str, Any]:
    services = compose()["services"]
    assert name in services, f"no service {name!r} in docker-compose.yml"
    return services[name]


def env(name: str) -> dict[str, str]:
    raw = service(name).get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) if "=" in item else (item, "") for item in raw)
    return {key: "" if value is None else str(value) for key, value in raw.items()}


def serve_port(name: str) -> int:
    """The port `encurta serve` listens on in that container (its --port, else 8000)."""
    command = service(name).get("command") or []
    if isinstance(command, str):
        command = command.split()
    if "--port" in command:
        return int(command[command.index("--port") + 1])
    return 8000


def depends_on(name: str) -> dict[str, str]:
    """Each dependency and the condition it waits for."""
    raw = service(name).get("depends_on") or {}
    if isinstance(raw, list):
        return dict.fromkeys(raw, "service_started")
    return {dep: (spec or {}).get("condition", "service_started") for dep, spec in raw.items()}


def volume_mounts(name: str) -> list[tuple[str, str, str]]:
    """(source, target, mode) of each short-syntax volume of a service."""
    mounts = []
    for entry in service(name).get("volumes") or []:
        assert isinstance(entry, str), f"{name}: use the short volume syntax ({entry!r})"
        source, target, *mode = entry.split(":")
        mounts.append((source, target, mode[0] if mode else "rw"))
    return mounts


# Compose's variable syntax: ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error} ...
_VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")
_REQUIRED = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*:\?[^}]+\}")


def interpolate(value: str, variables: Mapping[str, str] | None = None) -> str:
    """What Compose makes of `value` with these variables set: defaults apply, and a
    required variable that is missing becomes `<NAME>` (where Compose would refuse)."""
    variables = variables or {}

    def substitute(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"] or "", match["arg"] or ""
        current = variables.get(name)
        if current if op.startswith(":") else current is not None:
            return str(current)
        if op.endswith("-"):
            return arg
        if op.endswith("?"):
            return f"<{name}>"
        return ""

    return _VARIABLE.sub(substitute, value.replace("$$", "\0")).replace("\0", "$")


def variables_in(value: str) -> set[str]:
    return {match["name"] for match in _VARIABLE.finditer(value)}


def required_variables(value: str) -> set[str]:
    return {m["name"] for m in _VARIABLE.finditer(value) if (m["op"] or "").endswith("?")}


def database_url_keys(environment: Mapping[str, str]) -> list[str]:
    return sorted(key for key in environment if re.fullmatch(r"ENCURTA_[A-Z]+__DATABASE_URL", key))


def raw_password(url: str) -> str:
    """The password part of a URL as written, `${...}` and all."""
    match = re.fullmatch(r"[a-z0-9+]+://[^:/@]+:(?P<password>.+)@[^@]+", url)
    assert match, f"no user:password@ in {url!r}"
    return match["password"]


# --- the services --------------------------------------------------------------------------


def test_the_topology_is_kafka_a_database_per_module_an_app_per_module_and_a_proxy() -> None:
    assert set(compose()["services"]) == SERVICES


@pytest.mark.parametrize("module", APPS)
def test_each_app_container_runs_exactly_its_own_module(module: str) -> None:
    modules = [part.strip() for part in env(module).get("ENCURTA_MODULES", "").split(",")]
    assert modules == [module]


def test_the_app_containers_run_one_image() -> None:
    images = {(service(m).get("image"), repr(service(m).get("build"))) for m in APPS}
    assert len(images) == 1, images
    assert all(service(m).get("build") for m in APPS), "the image is built from this Dockerfile"


def test_every_encurta_variable_given_to_an_app_is_a_real_setting() -> None:
    """pydantic-settings ignores unknown ENCURTA_ names: a typo would be silently dropped."""
    known = set(Settings().masked())
    for module in APPS:
        unknown = {key for key in env(module) if key.startswith("ENCURTA_")} - known
        assert not unknown, f"{module}: not settings: {sorted(unknown)}"


# --- each module's database ----------------------------------------------------------------


@pytest.mark.parametrize("module", APPS)
def test_each_app_gets_one_database_url_its_own(module: str) -> None:
    environment = env(module)
    assert database_url_keys(environment) == [f"ENCURTA_{module.upper()}__DATABASE_URL"]


@pytest.mark.parametrize("module", APPS)
def test_each_database_url_points_at_its_own_postgres_database_and_role(module: str) -> None:
    postgres = env(POSTGRES[module])
    url = env(module)[f"ENCURTA_{module.upper()}__DATABASE_URL"]
    parts = urlsplit(interpolate(url))

    assert parts.scheme == "postgresql+asyncpg"
    assert parts.hostname == POSTGRES[module]
    assert parts.port == 5432
    assert parts.path == f"/{postgres['POSTGRES_DB']}"
    assert parts.username == postgres["POSTGRES_USER"]
    # The same .env variable as that server's POSTGRES_PASSWORD.
    assert variables_in(raw_password(url)) == variables_in(postgres["POSTGRES_PASSWORD"])


def test_databases_roles_passwords_and_volumes_are_distinct_per_module() -> None:
    for key in ("POSTGRES_DB", "POSTGRES_USER", "POSTGRES_PASSWORD"):
        values = [env(POSTGRES[m]).get(key) for m in APPS]
        assert all(values) and len(set(values)) == len(APPS), f"{key}: {values}"
    data = [
        source
        for m in APPS
        for source, target, _ in volume_mounts(POSTGRES[m])
        if target == "/var/lib/postgresql/data"
    ]
    assert len(data) == len(APPS) == len(set(data)), data


@pytest.mark.parametrize("module", APPS)
def test_no_app_sees_another_modules_database_or_password(module: str) -> None:
    others = [m for m in APPS if m != module]
    foreign = set().union(*(variables_in(env(POSTGRES[m])["POSTGRES_PASSWORD"]) for m in others))
    values = " ".join(env(module).values())
    assert not variables_in(values) & foreign
    assert not any(POSTGRES[m] in values for m in others)


def test_only_app_and_postgres_services_hold_database_credentials() -> None:
    for name in SERVICES - set(APPS) - set(POSTGRES.values()):
        environment = env(name)
        assert not database_url_keys(environment), name
        # Grafana's own admin password, from a variable of its own, is no database's.
        own = {"GF_SECURITY_ADMIN_PASSWORD"} if name == "grafana" else set()
        assert not any("PASSWORD" in key for key in set(environment) - own), name
        assert not any("_DB_PASSWORD" in value for value in environment.values()), name


# --- Kafka ---------------------------------------------------------------------------------


def listeners(value: str) -> dict[str, tuple[str, int]]:
    """NAME://host:port,... as {NAME: (host, port)}."""
    result = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        name, address = item.split("://", 1)
        host, _, port = address.rpartition(":")
        result[name] = (host, int(port))
    return result


def test_kafka_runs_in_kraft_mode_from_the_official_image() -> None:
    kafka = service("kafka")
    assert re.fullmatch(r"apache/kafka:[34]\.\d+\.\d+", kafka["image"]), kafka["image"]
    settings = env("kafka")
    assert set(settings["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert settings.get("CLUSTER_ID"), "KRaft formats its storage with CLUSTER_ID"
    assert "KAFKA_ZOOKEEPER_CONNECT" not in settings

    controller = settings["KAFKA_CONTROLLER_LISTENER_NAMES"]
    _, controller_port = listeners(settings["KAFKA_LISTENERS"])[controller]
    assert settings["KAFKA_CONTROLLER_QUORUM_VOTERS"] == (
        f"{settings['KAFKA_NODE_ID']}@kafka:{controller_port}"
    )
    for key in (
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
    ):
        assert settings[key] == "1", f"{key}: a single broker holds one replica"


def test_kafka_keeps_its_log_on_a_named_volume() -> None:
    log_dirs = env("kafka")["KAFKA_LOG_DIRS"].split(",")
    mounted = {target: source for source, target, _ in volume_mounts("kafka")}
    for log_dir in log_dirs:
        assert any(log_dir == t or log_dir.startswith(t.rstrip("/") + "/") for t in mounted), (
            f"{log_dir} is not on a volume: the broker's events would die with the container"
        )
    assert all(source in compose()["volumes"] for source in mounted.values())


@pytest.mark.parametrize("module", APPS)
def test_each_app_talks_to_the_broker_over_kafka(module: str) -> None:
    environment = env(module)
    assert environment.get("ENCURTA_BUS__TRANSPORT") == "kafka"
    advertised = set(listeners(env("kafka")["KAFKA_ADVERTISED_LISTENERS"]).values())
    servers = environment["ENCURTA_BUS__KAFKA__BOOTSTRAP_SERVERS"].split(",")
    for server in servers:
        host, _, port = server.strip().rpartition(":")
        assert (host, int(port)) in advertised, f"{server} is not a listener kafka advertises"


def test_all_apps_share_one_bootstrap_list_and_a_replication_factor_the_broker_can_hold() -> None:
    keys = (
        "ENCURTA_BUS__KAFKA__BOOTSTRAP_SERVERS",
        "ENCURTA_BUS__KAFKA__REPLICATION_FACTOR",
        "ENCURTA_BUS__KAFKA__TOPIC_PREFIX",
        "ENCURTA_BUS__KAFKA__GROUP_PREFIX",
    )
    for key in keys:
        assert len({env(m).get(key) for m in APPS}) == 1, f"{key} differs between the apps"
    brokers = len(env("kafka")["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(","))
    factor = int(env(APPS[0])["ENCURTA_BUS__KAFKA__REPLICATION_FACTOR"])
    assert 1 <= factor <= brokers


# --- tokens, health, order of start --------------------------------------------------------


@pytest.mark.parametrize("module", [m for m in APPS if m != "auth"])
def test_modules_without_auth_verify_tokens_with_auths_jwks(module: str) -> None:
    url = urlsplit(env(module).get("ENCURTA_TOKENS__JWKS_URL", ""))
    assert (url.scheme, url.hostname, url.port, url.path) == (
        "http",
        "auth",
        serve_port("auth"),
        JWKS_PATH,
    )


def test_auth_signs_with_its_own_key_on_its_own_volume() -> None:
    data_dir = env("auth")["ENCURTA_DATA_DIR"]
    named = compose()["volumes"]
    assert any(t == data_dir and s in named for s, t, _ in volume_mounts("auth")), (
        "the signing key would be regenerated with every new container"
    )
    for module in APPS:
        if module != "auth":
            auth_volumes = {s for s, _, _ in volume_mounts("auth")}
            assert not auth_volumes & {s for s, _, _ in volume_mounts(module)}, module


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_service_has_a_healthcheck(name: str) -> None:
    check = service(name).get("healthcheck") or {}
    assert not check.get("disable")
    test = check.get("test")
    assert test and test != ["NONE"] and test[0] in {"CMD", "CMD-SHELL"}, test


@pytest.mark.parametrize("module", APPS)
def test_app_healthchecks_ask_readyz_on_the_port_served(module: str) -> None:
    probe = " ".join(service(module)["healthcheck"]["test"])
    assert f":{serve_port(module)}/readyz" in probe


def test_kafka_healthcheck_asks_the_broker_itself() -> None:
    probe = " ".join(service("kafka")["healthcheck"]["test"])
    assert re.search(r"kafka-(broker-api-versions|topics)\.sh", probe)
    ports = {port for _, port in listeners(env("kafka")["KAFKA_LISTENERS"]).values()}
    bootstrap = re.search(r"--bootstrap-server\s+\S+:(\d+)", probe)
    assert bootstrap and int(bootstrap[1]) in ports


@pytest.mark.parametrize("module", APPS)
def test_apps_start_once_their_database_kafka_and_auth_are_healthy(module: str) -> None:
    deps = depends_on(module)
    assert deps.get(POSTGRES[module]) == "service_healthy"
    assert deps.get("kafka") == "service_healthy"
    if module != "auth":
        assert deps.get("auth") == "service_healthy", "the JWKS comes from auth"
    assert not {POSTGRES[m] for m in APPS if m != module} & set(deps)


# --- volumes, secrets, ports ---------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_volumes_are_named_or_read_only_files_from_docker(name: str) -> None:
    named = compose().get("volumes") or {}
    for source, target, mode in volume_mounts(name):
        if source.startswith((".", "/", "~")):
            assert source.startswith("./docker/") and mode == "ro", f"{name}: {source}:{target}"
            assert (ROOT / source).is_file(), f"{name}: {source} does not exist"
        else:
            assert source in named, f"{name}: volume {source} is not declared"


def test_every_declared_volume_is_used() -> None:
    used = {source for name in SERVICES for source, _, _ in volume_mounts(name)}
    assert set(compose().get("volumes") or {}) <= used


def test_passwords_come_from_required_variables_never_literals() -> None:
    for name in sorted(SERVICES):
        for key, value in env(name).items():
            if re.search(r"PASSWORD|SECRET|PRIVATE_KEY$", key):
                assert _REQUIRED.fullmatch(value), f"{name}: {key} must be ${{VAR:?...}}"
            if re.match(r"[a-z0-9+]+://[^/@]+@", value):
                assert _REQUIRED.fullmatch(raw_password(value)), f"{name}: {key} holds a password"


def test_every_variable_compose_reads_is_in_the_env_example() -> None:
    example = ENV_EXAMPLE.read_text(encoding="utf-8")
    listed = set(re.findall(r"^#?([A-Z][A-Z0-9_]*)=", example, flags=re.MULTILINE))
    text = COMPOSE.read_text(encoding="utf-8")
    assert variables_in(text) <= listed, variables_in(text) - listed
    # The required ones are there uncommented, with no value: the copy is where they go.
    required = required_variables(text)
    assert required
    for name in required:
        assert re.search(rf"^{name}=$", example, flags=re.MULTILINE), name


def test_the_image_bakes_in_no_secret() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    for instruction in re.findall(r"^\s*(?:ENV|ARG)\s+(.+)$", dockerfile, flags=re.MULTILINE):
        assert not re.search(r"PASSWORD|SECRET|PRIVATE_KEY|DATABASE_URL", instruction)
    assert not re.search(r"^\s*(COPY|ADD)\s.*\.env\b", dockerfile, flags=re.MULTILINE)
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert ".env" in ignored and "**/.env" in ignored


def test_only_the_proxy_and_grafana_publish_a_port_on_loopback_by_default() -> None:
    published = {name for name in SERVICES if service(name).get("ports")}
    assert published == {"proxy", "grafana"}
    assert not any(service(name).get("network_mode") == "host" for name in SERVICES)
    for name in published:
        for port in service(name)["ports"]:
            assert interpolate(str(port)).startswith("127.0.0.1:"), port


def test_databases_and_kafka_are_out_of_the_proxys_reach() -> None:
    def networks(name: str) -> set[str]:
        return set(service(name).get("networks") or ["default"])

    for name in ("kafka", *POSTGRES.values()):
        assert not networks(name) & networks("proxy"), name
    for module in APPS:
        assert networks(module) & networks("proxy"), f"the proxy cannot reach {module}"
        assert networks(module) & networks(POSTGRES[module]), f"{module} cannot reach its db"
        assert networks(module) & networks("kafka"), f"{module} cannot reach kafka"


def test_the_shortener_trusts_forwarded_for_from_the_proxys_network_only() -> None:
    raw_trusted = env("shortener")["ENCURTA_SHORTENER__TRUSTED_PROXIES"]
    proxy_networks = service("proxy")["networks"]
    for variables in ({}, {"ENCURTA_EDGE_SUBNET": "10.99.0.0/24"}):
        trusted = [
            ipaddress.ip_network(part.strip())
            for part in interpolate(raw_trusted, variables).split(",")
        ]
        assert all(network.prefixlen >= 8 for network in trusted), trusted
        for name in proxy_networks:
            subnets = [
                ipaddress.ip_network(interpolate(block["subnet"], variables))
                for block in compose()["networks"][name]["ipam"]["config"]
            ]
            assert subnets, f"network {name} has no fixed range to trust"
            for subnet in subnets:
                assert any(subnet.subnet_of(network) for network in trusted), (subnet, trusted)


# --- the proxy's configuration -------------------------------------------------------------


Directive = tuple[str, list[str], list[Any] | None]  # name, arguments, block (or None)


def parse_nginx(text: str) -> list[Directive]:
    tokens = re.findall(
        r"\"(?:\\.|[^\"])*\"|'(?:\\.|[^'])*'|[{};]|[^\s{};]+", re.sub(r"(?m)(^|\s)#.*$", "", text)
    )

    def block(position: int) -> tuple[list[Directive], int]:
        directives: list[Directive] = []
        words: list[str] = []
        while position < len(tokens):
            token = tokens[position]
            position += 1
            if token == ";":
                directives.append((words[0], words[1:], None))
                words = []
            elif token == "{":
                inner, position = block(position)
                directives.append((words[0], words[1:], inner))
                words = []
            elif token == "}":
                assert not words, f"unterminated directive {words}"
                return directives, position
            else:
                words.append(token.strip("\"'"))
        assert not words, f"unterminated directive {words}"
        return directives, position

    directives, _ = block(0)
    return directives


def children(directives: list[Directive], name: str) -> list[Directive]:
    return [d for d in directives if d[0] == name]


def proxy_config_path() -> Path:
    for source, target, _ in volume_mounts("proxy"):
        if target == "/etc/nginx/nginx.conf":
            return ROOT / source
    raise AssertionError("the proxy mounts no /etc/nginx/nginx.conf")


@cache
def nginx() -> list[Directive]:
    return parse_nginx(proxy_config_path().read_text(encoding="utf-8"))


def http_block() -> list[Directive]:
    (http,) = children(nginx(), "http")
    assert http[2] is not None
    return http[2]


def listen_port(server: list[Directive]) -> list[int]:
    return [int(args[0].rpartition(":")[2]) for _, args, _ in children(server, "listen")]


def public_server() -> list[Directive]:
    container_ports = {int(str(p).rpartition(":")[2]) for p in service("proxy")["ports"]}
    servers = [s[2] for s in children(http_block(), "server") if s[2] is not None]
    matching = [s for s in servers if container_ports & set(listen_port(s))]
    assert len(matching) == 1, "one server block listens on the published port"
    return matching[0]


def route(uri: str) -> list[Directive]:
    """The location block nginx picks for `uri` (exact match, else longest prefix)."""
    locations = [(args, body) for _, args, body in children(public_server(), "location")]
    assert all(args[0] not in {"~", "~*"} for args, _ in locations), "regex: not modelled here"
    for args, body in locations:
        if args[0] == "=" and args[1] == uri:
            return body
    prefixes = [(args[-1], body) for args, body in locations if args[0] != "="]
    matching = [(prefix, body) for prefix, body in prefixes if uri.startswith(prefix)]
    assert matching, f"no location for {uri}"
    return max(matching, key=lambda item: len(item[0]))[1]


def upstream(location: list[Directive]) -> tuple[str | None, int | None, str]:
    """(host, port, path) that the location proxies to, with `set` variables resolved."""
    (proxy_pass,) = children(location, "proxy_pass")
    target = proxy_pass[1][0]
    for _, args, _ in children(public_server(), "set") + children(location, "set"):
        target = target.replace(args[0], args[1])
    parts = urlsplit(target)
    return parts.hostname, parts.port, parts.path


def effective_headers(location: list[Directive]) -> dict[str, str]:
    """nginx inherits proxy_set_header from the outer level only into a block that sets none."""
    for level in (location, public_server(), http_block()):
        headers = children(level, "proxy_set_header")
        if headers:
            return {args[0].lower(): args[1] if len(args) > 1 else "" for _, args, _ in headers}
    return {}


def module_paths(module: str) -> list[str]:
    """Concrete request paths for every route of a module, from the app itself."""
    (found,) = [m for m in described(Settings()).modules if m.name == module]
    paths = [re.sub(r"\{[^}]+\}", "abc123", getattr(r, "path", "")) for r in found.routes]
    assert paths, module
    return paths


@pytest.mark.parametrize("module", APPS)
def test_the_proxy_sends_every_route_of_a_module_to_that_module(module: str) -> None:
    for path in module_paths(module):
        host, port, uri = upstream(route(path))
        assert (host, port) == (module, serve_port(module)), f"{path} goes to {host}:{port}"
        assert uri == "", f"{path}: a URI in proxy_pass would rewrite the request's path"


@pytest.mark.parametrize(
    ("path", "module"),
    [
        ("/api/auth/login", "auth"),
        (JWKS_PATH, "auth"),
        ("/api/stats/abc123", "analytics"),
        ("/api/stats/orphans", "shortener"),
        ("/api/stats/orphansx", "analytics"),
        ("/api/admin/users", "auth"),
        ("/api/admin/links", "shortener"),
        ("/api/admin/blocked-domains/example.org", "shortener"),
        ("/abc123", "shortener"),
        ("/api/links", "shortener"),
        ("/api/links/export", "shortener"),
        ("/api/stats/abc123/clicks", "analytics"),
        ("/readyz", "shortener"),
        ("/api/authorize", "shortener"),  # a prefix is a path segment, not any string
        ("/api/statsabc", "shortener"),
        # The Shlink API: visits are analytics', orphan visits and the rest the shortener's.
        ("/rest/v3/visits", "analytics"),
        ("/rest/v3/visits/short-urls/abc123", "analytics"),
        ("/rest/v3/visits/non-orphan", "analytics"),
        ("/rest/v3/visits/orphan", "shortener"),
        ("/rest/v3/short-urls/abc123/visits", "shortener"),
        ("/rest/v3/short-urls", "shortener"),
        ("/rest/health", "shortener"),
        # The web app: each module's pages go to it; the kernel's assets are everywhere.
        ("/login", "auth"),
        ("/signup", "auth"),
        ("/auth/refresh", "auth"),
        ("/account/keys", "auth"),
        ("/links", "shortener"),
        ("/stats/abc123", "analytics"),
        ("/loginx", "shortener"),  # a short code
        ("/static/app.css", "shortener"),
    ],
)
def test_the_proxy_routes_the_three_path_groups(path: str, module: str) -> None:
    assert upstream(route(path))[:2] == (module, serve_port(module))


@pytest.mark.parametrize("path", ["/api/auth/login", JWKS_PATH, "/api/stats/abc123", "/abc123"])
def test_the_proxy_passes_the_client_address_and_host_on(path: str) -> None:
    headers = effective_headers(route(path))
    # Replaced ($remote_addr) or appended to ($proxy_add_x_forwarded_for); either ends with
    # the address the proxy saw, which is what the shortener reads from a trusted proxy.
    assert headers.get("x-forwarded-for") in {"$remote_addr", "$proxy_add_x_forwarded_for"}
    # Without it the upstream sees Host: shortener:8000, and short URLs would carry that.
    assert headers.get("host") in {"$http_host", "$host"}


def test_the_proxy_resolves_upstream_variables_through_dockers_dns() -> None:
    targets = [
        args[0]
        for _, _, body in children(public_server(), "location")
        for _, args, _ in children(body or [], "proxy_pass")
    ]
    assert targets
    if any("$" in target for target in targets):
        resolvers = children(http_block(), "resolver") + children(public_server(), "resolver")
        assert resolvers and "127.0.0.11" in resolvers[0][1], "names in variables need a resolver"


def test_the_proxy_healthcheck_asks_a_loopback_server_of_its_own() -> None:
    probe = " ".join(service("proxy")["healthcheck"]["test"])
    match = re.search(r"http://127\.0\.0\.1:(\d+)(/\S*)", probe)
    assert match, probe
    port, path = int(match[1]), match[2]
    servers = [s[2] for s in children(http_block(), "server") if s[2] is not None]
    (server,) = [s for s in servers if port in listen_port(s)]
    assert all(args[0].startswith("127.0.0.1:") for _, args, _ in children(server, "listen"))
    assert any(args == ["=", path] for _, args, _ in children(server, "location"))


# --- metrics: Prometheus and Grafana --------------------------------------------------------

PROMETHEUS_CONFIG = ROOT / "docker" / "prometheus" / "prometheus.yml"
DASHBOARD = ROOT / "docker" / "grafana" / "dashboards" / "encurta.json"


def mounted(name: str, target: str) -> Path:
    for source, mount, _ in volume_mounts(name):
        if mount == target:
            return ROOT / source
    raise AssertionError(f"{name} mounts nothing at {target}")


def test_prometheus_scrapes_each_modules_process_directly_with_the_token() -> None:
    config = yaml.safe_load(mounted("prometheus", "/etc/prometheus/prometheus.yml").read_text())
    secrets = service("prometheus").get("secrets") or []
    token = compose()["secrets"]["metrics-token"]
    # The same variable the apps serve their token from.
    assert interpolate(env("auth")["ENCURTA_METRICS__TOKEN"]) == f"<{token['environment']}>"
    scraped: dict[str, int] = {}
    for job in config["scrape_configs"]:
        assert job.get("metrics_path", "/metrics") == "/metrics"
        credentials = job["authorization"]["credentials_file"]
        assert credentials.removeprefix("/run/secrets/") in secrets, credentials
        for found in job.get("dns_sd_configs", []):
            for name in found["names"]:
                scraped[name] = found["port"]
        for found in job.get("static_configs", []):
            for target in found["targets"]:
                host, _, port = target.partition(":")
                scraped[host] = int(port)
    assert scraped == {module: serve_port(module) for module in APPS}
    networks = set(service("prometheus")["networks"])
    for module in APPS:
        assert networks & set(service(module)["networks"]), f"prometheus cannot reach {module}"
        assert env(module)["ENCURTA_METRICS__TOKEN"], module
    assert not networks & set(service("kafka")["networks"]), "prometheus needs no backend"


def test_the_proxy_does_not_serve_metrics() -> None:
    location = route("/metrics")
    assert not children(location, "proxy_pass")
    assert [args for _, args, _ in children(location, "return")] == [["404"]]


def test_grafana_is_provisioned_with_prometheus_and_the_dashboard() -> None:
    sources = mounted("grafana", "/etc/grafana/provisioning/datasources/prometheus.yml")
    (source,) = yaml.safe_load(sources.read_text())["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    providers = mounted("grafana", "/etc/grafana/provisioning/dashboards/encurta.yml")
    (provider,) = yaml.safe_load(providers.read_text())["providers"]
    assert mounted("grafana", f"{provider['options']['path']}/encurta.json") == DASHBOARD
    dashboard = json.loads(DASHBOARD.read_text())
    uids = {t["datasource"]["uid"] for p in dashboard["panels"] for t in p["targets"]}
    assert uids == {source["uid"]}


def exported_names(body: str) -> set[str]:
    """Every sample name a scrape can hold, from its families (a histogram without a sample
    yet still has its _bucket, _sum and _count names)."""
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}
    return {
        family.name + suffix
        for family in text_string_to_metric_families(body)
        for suffix in suffixes.get(family.type, [""])
    }


async def test_every_metric_in_the_dashboard_is_one_the_app_exports(
    app_client: AppFactory,
) -> None:
    async with app_client(metrics=MetricsSettings(token=SecretStr("t"))) as client:
        response = await client.get("/metrics", headers={"Authorization": "Bearer t"})
    assert response.status_code == 200, response.text
    exported = exported_names(response.text)
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {name for expr in expressions for name in re.findall(r"\bencurta_\w+", expr)}
    assert used, expressions
    assert used <= exported, used - exported
    # And every series of the task is on the dashboard.
    for name in (
        "encurta_http_requests_total",
        "encurta_http_request_duration_seconds_bucket",
        "encurta_shortener_clicks_recorded_total",
        "encurta_outbox_backlog",
        "encurta_consumer_lag_seconds",
        "encurta_parked_events",
        "encurta_db_pool_waiting",
        "encurta_database_up",
    ):
        assert name in used, name
