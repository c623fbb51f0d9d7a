"""The `encurta` command: serve, migrate, events, reconcile, export, purge, config, openapi,
modules, and the operator commands the modules add (`users`)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
from collections.abc import Iterator, Sequence
from typing import Any
from uuid import UUID

import asyncpg
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from app import backup_command
from app.config import Settings
from app.export_command import add_parser as add_export_parser
from app.export_command import export
from app.kernel import migrations
from app.kernel.database import create_engine, redact
from app.kernel.embedded import EmbeddedPostgres, EmbeddedPostgresError
from app.kernel.logs import configure as configure_logging
from app.kernel.metrics import RequestMeter
from app.main import (
    ConfigurationError,
    Runtime,
    build_runtime,
    check_every_consumer_is_here,
    create_app,
    described,
    openapi,
)
from app.purge_command import add_parser as add_purge_parser
from app.purge_command import purge
from app.registry import MODULES, NAMES
from app.wiring import Command, Module, ModuleSpec

log = logging.getLogger("encurta")


@contextlib.contextmanager
def databases(
    settings: Settings, modules: Sequence[str], *, take_orphans: bool = True
) -> Iterator[dict[str, str]]:
    """Each module's URL: configured, or from the embedded server, started for as long as
    the block runs (and only when some module has no URL).

    A server already running on the data dir is joined, and left running for the others
    who use it; `take_orphans` (for `serve`, not for operator commands) takes over one whose
    owner is gone, killed before it could stop it, and stops it at the end of the block.
    """
    urls = {name: url for name in modules if (url := settings.configured_url(name))}
    missing = [name for name in modules if name not in urls]
    if not missing:
        yield urls
        return
    embedded = EmbeddedPostgres(
        settings.data_dir / "postgres",
        port=settings.embedded.port,
        durable=settings.embedded.durable,
        take_orphans=take_orphans,
    )
    embedded.start()
    try:
        log.info("embedded PostgreSQL on 127.0.0.1:%s for %s", embedded.port, ", ".join(missing))
        urls.update(asyncio.run(embedded.provision(missing)))
        yield urls
    finally:
        embedded.stop()


def migrate_all(modules: Sequence[str], urls: dict[str, str], *, check_first: bool = True) -> None:
    """Upgrade each module's database to its latest revision. `check_first` reads the
    version tables first and runs alembic only for the modules behind."""
    stale = migrations.behind({name: urls[name] for name in modules}) if check_first else modules
    for name in modules:
        if name not in stale:
            log.info("%s is at its latest migration", name)
            continue
        log.info("migrating %s (%s)", name, redact(urls[name]))
        migrations.upgrade(name, urls[name])


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(0)


def serve(settings: Settings, host: str, port: int) -> None:
    import uvicorn

    from app.kernel import collector
    from app.kernel.server import uvicorn_options

    # uvicorn shuts down gracefully on SIGTERM, then re-raises it; with the default
    # handler that would kill us before the embedded server is stopped.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    with databases(settings, settings.modules) as urls:
        if settings.migrate_on_start:
            migrate_all(settings.modules, urls)
        app = create_app(settings, urls)
        collector.settle()
        uvicorn.run(
            app,
            host=host,
            port=port,
            log_level=settings.log_level,
            log_config=None,  # uvicorn's lines go through our handler: format, redaction
            proxy_headers=False,  # the client IP is decided in the app, from trusted proxies
            server_header=False,
            access_log=settings.access_log,
            # Limits, the express lane, and the meter counting the lane's answers.
            **uvicorn_options(settings.server, app.express, _meter(app)),
        )


def _meter(app: Any) -> RequestMeter | None:
    metrics = app.state.runtime.metrics
    return metrics.requests if metrics is not None else None


def migrate(settings: Settings, modules: Sequence[str]) -> None:
    unknown = sorted(set(modules) - set(NAMES))
    if unknown:
        raise ConfigurationError(
            f"no module named {', '.join(unknown)}; modules are {', '.join(NAMES)}"
        )
    names = [name for name in NAMES if name in modules] or list(settings.modules)
    with databases(settings, names, take_orphans=False) as urls:
        migrate_all(names, urls, check_first=False)  # asked for: alembic decides, and says
    print(f"migrated: {', '.join(names)}")


def print_config(settings: Settings) -> None:
    for key, value in settings.masked().items():
        # Unset settings are shown commented out, so the output can be sourced back.
        print(f"{key}={value}" if value is not None else f"# {key}= (unset)")


def print_openapi(settings: Settings) -> None:
    print(json.dumps(openapi(described(settings).modules), indent=2))


def print_modules(settings: Settings) -> None:
    _print_canvas(described(settings))


def _print_canvas(runtime: Runtime) -> None:
    commands = {spec.name: spec.commands for spec in MODULES}
    for module in runtime.modules:
        print(f"{module.name}")
        for command in commands.get(module.name, ()):
            print(f"  command    encurta {command.name}")
        for route in module.routes:
            methods = ",".join(sorted(getattr(route, "methods", None) or [])) or "-"
            print(f"  route      {methods:<10} {getattr(route, 'path', '?')}")
        for table in module.metadata.sorted_tables:
            print(f"  table      {table.name}")
        for contract in module.publishes:
            print(f"  publishes  {contract.type}")
        for subscription in module.subscriptions:
            print(f"  consumes   {subscription.event.type}")
        for broadcast in module.broadcasts:
            print(f"  hears      {broadcast.event.type} (every process)")


async def _parked_events(runtime: Runtime, replay: str | None) -> int:
    try:
        if replay is None:
            rows = [row for consumer in runtime.consumers for row in await consumer.parked()]
            if not rows:
                print("no parked events")
            for row in rows:
                error = " ".join(row.error.split())[:100]
                print(
                    f"{row.id}  {row.consumer:<10} {row.type or '?':<28} "
                    f"attempts={row.attempts} last={row.last_failed_at:%Y-%m-%d %H:%M:%S}  "
                    f"{error}"
                )
            return 0
        for consumer in runtime.consumers:
            targets = (
                [row.id for row in await consumer.parked()] if replay == "all" else [UUID(replay)]
            )
            for parked_id in targets:
                try:
                    ok = await consumer.replay(parked_id)
                except KeyError:
                    continue
                print(
                    f"{'replayed' if ok else 'failed again, still parked'}: "
                    f"{parked_id} ({consumer.name})"
                )
                if replay != "all":
                    return 0 if ok else 1
        if replay != "all":
            print(f"no parked event {replay}", file=sys.stderr)
            return 1
        return 0
    finally:
        for module in runtime.modules:
            await module.engine.dispose()


def events(settings: Settings, action: str, parked_id: str | None) -> int:
    if action == "replay":
        if parked_id is None:
            raise ConfigurationError(
                "say which event to replay: an ID from `encurta events parked`, or `all`"
            )
        if parked_id != "all":
            try:
                UUID(parked_id)
            except ValueError:
                raise ConfigurationError(f"{parked_id!r} is not a parked event ID") from None
    with databases(settings, settings.modules, take_orphans=False) as urls:
        runtime = build_runtime(settings, urls)
        return asyncio.run(_parked_events(runtime, parked_id if action == "replay" else None))


def _shared_tallies(runtime: Runtime) -> dict[str, list[Module]]:
    """Each tally that two modules or more keep here, with its keepers."""
    keepers: dict[str, list[Module]] = {}
    for module in runtime.modules:
        for name in module.tallies:
            keepers.setdefault(name, []).append(module)
    return {name: modules for name, modules in keepers.items() if len(modules) > 1}


async def _differences(runtime: Runtime) -> dict[str, tuple[int, dict[str, dict[str, int]]]]:
    """For each shared tally: how many keys were compared, and those whose counts differ,
    with each module's count (0 where a module has no such key)."""
    compared: dict[str, tuple[int, dict[str, dict[str, int]]]] = {}
    for name, modules in _shared_tallies(runtime).items():
        counts = {module.name: await module.tallies[name]() for module in modules}
        keys = set().union(*counts.values())
        compared[name] = (
            len(keys),
            {
                key: {module: tally.get(key, 0) for module, tally in counts.items()}
                for key in sorted(keys)
                if len({tally.get(key, 0) for tally in counts.values()}) > 1
            },
        )
    return compared


# reconcile's exit statuses, beside 0 (every tally agrees) and argparse's 2 (usage).
DIFFER, NOTHING_TO_COMPARE, UNREADABLE = 1, 3, 4


async def _reconcile(runtime: Runtime, in_process: bool, wait_seconds: float) -> int:
    loop = asyncio.get_running_loop()
    if not _shared_tallies(runtime):
        print(
            "nothing to compare: no two modules here keep the same tally (run it with "
            "every module's database configured)",
            file=sys.stderr,
        )
        return NOTHING_TO_COMPARE
    try:
        if in_process:  # this process delivers what is pending; over Kafka, consumers do
            for consumer in runtime.consumers:
                runtime.bus.subscribe(consumer)
        await runtime.bus.start()
        pending = sum([await relay.drain() for relay in runtime.relays])
        deadline = loop.time() + wait_seconds
        while (differences := await _differences(runtime)) and any(
            differing for _, differing in differences.values()
        ):
            if loop.time() >= deadline:
                break
            await asyncio.sleep(0.5)
        for name, (compared, differing) in differences.items():
            if not differing:
                print(f"{name}: all {compared} agree")
                continue
            print(f"{name}: {len(differing)} of {compared} differ")
            for key, counts in differing.items():
                print(f"  {key}  " + "  ".join(f"{m}={n}" for m, n in counts.items()))
        if pending:
            print(f"({pending} pending events were delivered first)")
        return DIFFER if any(differing for _, differing in differences.values()) else 0
    except (OSError, asyncpg.PostgresError, SQLAlchemyError) as exc:
        print(f"encurta: reconcile could not read a database: {exc}", file=sys.stderr)
        return UNREADABLE
    finally:
        await runtime.bus.stop()
        for module in runtime.modules:
            await module.engine.dispose()


def reconcile(settings: Settings, wait_seconds: float) -> int:
    check_every_consumer_is_here(settings)  # it delivers what is pending, as serve would
    with databases(settings, settings.modules, take_orphans=False) as urls:
        runtime = build_runtime(settings, urls)
        in_process = settings.bus.transport == "inprocess"
        return asyncio.run(_reconcile(runtime, in_process, wait_seconds))


def _reason(exc: BaseException) -> str:
    """One line about a database failure, without SQLAlchemy's statement and parameters
    (which may hold a password hash)."""
    cause = getattr(exc, "orig", None) or exc
    lines = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {lines[0]}" if lines else type(cause).__name__


async def _run_command(
    command: Command[Any], args: argparse.Namespace, section: Any, url: str, settings: Any
) -> int:
    engine = create_engine(url, settings)
    try:
        return await command.run(args, section, engine)
    finally:
        await engine.dispose()


@contextlib.contextmanager
def ready_databases(
    settings: Settings, names: Sequence[str], what: str
) -> Iterator[dict[str, str]]:
    """The modules' databases for an operator command: the configured ones, or the
    embedded server's (joined if `serve` runs, else started for the while). A database
    behind its migrations is migrated first, as serve would (unless
    ENCURTA_MIGRATE_ON_START=false, then the command refuses). `what` names the command
    in errors."""
    with databases(settings, names, take_orphans=False) as urls:
        try:
            if stale := migrations.behind({name: urls[name] for name in names}):
                if not settings.migrate_on_start:
                    raise ConfigurationError(
                        f"the {', '.join(stale)} database is not at its latest migration: "
                        f"run `encurta migrate {' '.join(stale)}` first"
                    )
                migrate_all(list(stale), urls, check_first=False)
        except (OSError, asyncpg.PostgresError, SQLAlchemyError) as exc:
            which = " and ".join(names) + (" databases" if len(names) > 1 else " database")
            raise ConfigurationError(
                f"{what}: the {which} could not be used: {_reason(exc)}"
            ) from None
        yield urls


def module_command(
    settings: Settings, spec: ModuleSpec[Any], command: Command[Any], args: argparse.Namespace
) -> int:
    """A module's operator command, on the module's database (`ready_databases`)."""
    with ready_databases(settings, [spec.name], command.name) as urls:
        try:
            return asyncio.run(
                _run_command(
                    command,
                    args,
                    settings.section(spec),
                    urls[spec.name],
                    settings.database(spec.name),
                )
            )
        except (OSError, asyncpg.PostgresError, SQLAlchemyError) as exc:
            raise ConfigurationError(
                f"{command.name}: the {spec.name} database could not be used: {_reason(exc)}"
            ) from None


async def find_owner(spec: ModuleSpec[Any], url: str, settings: Any, email: str | None) -> UUID:
    """The account `--owner EMAIL` names (or the only admin), asked of the module that
    keeps accounts (`ModuleSpec.find_account`); LookupError says why there is none."""
    assert spec.find_account is not None
    engine = create_engine(url, settings)
    try:
        return await spec.find_account(engine, email)
    finally:
        await engine.dispose()


def owner_from_accounts(settings: Settings, email: str | None) -> UUID:
    """The account a command's work will belong to (`encurta import --owner EMAIL`), asked
    here, the composition root: the module doing the work never reads another's database."""
    spec = next((s for s in MODULES if s.find_account is not None), None)
    if spec is None:
        raise ConfigurationError("no module keeps accounts to find --owner")
    with databases(settings, [spec.name], take_orphans=False) as urls:
        try:
            return asyncio.run(
                find_owner(spec, urls[spec.name], settings.database(spec.name), email)
            )
        except LookupError as exc:
            raise ConfigurationError(str(exc)) from None
        except (OSError, asyncpg.PostgresError, SQLAlchemyError) as exc:
            raise ConfigurationError(
                f"the {spec.name} database could not be used: {_reason(exc)}"
            ) from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="encurta",
        description="A self-hosted URL shortener with click analytics. "
        "Settings come from ENCURTA_* variables; see `encurta config`.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve_cmd = commands.add_parser(
        "serve",
        help="serve the HTTP API",
        description="Serve the enabled modules (ENCURTA_MODULES). Modules without a database "
        "URL get one from the embedded PostgreSQL under ENCURTA_DATA_DIR, which starts and "
        "stops with the server (it stays up while another encurta command still uses it). "
        "Migrations run first unless ENCURTA_MIGRATE_ON_START=false.",
    )
    serve_cmd.add_argument("--host", help="address to bind (default: ENCURTA_HOST, 127.0.0.1)")
    serve_cmd.add_argument("--port", type=int, help="port to bind (default: ENCURTA_PORT, 8000)")

    migrate_cmd = commands.add_parser(
        "migrate",
        help="apply each module's migrations",
        description="Upgrade each named module's database (default: the enabled modules) to "
        "its latest migration. Uses the configured URLs, or the embedded server: a running "
        "`encurta serve`'s, which it leaves running, or one of its own for the while.",
    )
    migrate_cmd.add_argument(
        "modules", nargs="*", metavar="MODULE", help=f"any of: {', '.join(NAMES)}"
    )

    events_cmd = commands.add_parser(
        "events",
        help="list or replay parked events",
        description="Events a consumer could not handle after its retries are parked with "
        "their error. `events parked` lists them; `events replay ID` (or `all`) applies one "
        "again, and it counts once. Beside a running `encurta serve`, it uses serve's "
        "embedded server and leaves it running.",
    )
    events_cmd.add_argument("action", choices=["parked", "replay"])
    events_cmd.add_argument("id", nargs="?", help="for replay: a parked event ID, or `all`")

    reconcile_cmd = commands.add_parser(
        "reconcile",
        help="check that modules agree on what they both count",
        description="Compare what two modules count each by their own means (every link's "
        "click_count in the shortener, its total in analytics). Pending events are "
        "delivered first; a difference is waited out for up to --wait seconds (events on "
        "their way), then each differing link is named. Exit status: 0 all agree, 1 some "
        "differ, 3 nothing to compare here, 4 a database could not be read. Under live "
        "traffic the busiest links may differ by the clicks in flight.",
    )
    reconcile_cmd.add_argument(
        "--wait",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how long differences may take to settle (default 30)",
    )

    for spec in MODULES:
        for command in spec.commands:
            module_cmd = commands.add_parser(
                command.name, help=command.help, description=command.description
            )
            command.arguments(module_cmd)
            module_cmd.set_defaults(module_command=(spec, command))

    add_export_parser(commands)
    add_purge_parser(commands)
    backup_command.add_parsers(commands)

    commands.add_parser(
        "config",
        help="print the effective settings, secrets masked",
        description="Print every effective setting as ENCURTA_* lines, with "
        "passwords, keys and database passwords masked.",
    )
    commands.add_parser(
        "openapi",
        help="print the OpenAPI 3.1 document of the enabled modules",
        description="Print the OpenAPI 3.1 document of the enabled modules.",
    )
    commands.add_parser(
        "modules",
        help="print each enabled module's canvas",
        description="Print what each enabled module registers: routes, tables, "
        "events published and consumed.",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        print("encurta: invalid settings:", file=sys.stderr)
        for error in exc.errors(include_url=False):
            variable = "ENCURTA_" + "__".join(str(part).upper() for part in error["loc"])
            print(f"  {variable}: {error['msg']}", file=sys.stderr)
        return 2
    configure_logging(settings.log_format, settings.log_level)
    try:
        if hasattr(args, "module_command"):
            spec, command = args.module_command
            if getattr(args, "owner_from_auth", False):
                args.owner_id = owner_from_accounts(settings, args.owner)
            return module_command(settings, spec, command, args)
        if args.command == "serve":
            serve(settings, args.host or settings.host, args.port or settings.port)
        elif args.command == "migrate":
            migrate(settings, args.modules)
        elif args.command == "events":
            return events(settings, args.action, args.id)
        elif args.command == "reconcile":
            return reconcile(settings, args.wait)
        elif args.command == "export":
            return export(settings, args, lambda names: ready_databases(settings, names, "export"))
        elif args.command == "purge":
            return purge(settings, args, lambda names: ready_databases(settings, names, "purge"))
        elif args.command in ("backup", "restore"):
            return backup_command.run(
                settings,
                args,
                lambda names: databases(settings, names, take_orphans=False),
                lambda names, urls: migrate_all(names, urls),
            )
        elif args.command == "config":
            print_config(settings)
        elif args.command == "openapi":
            print_openapi(settings)
        elif args.command == "modules":
            print_modules(settings)
    except (ConfigurationError, EmbeddedPostgresError) as exc:
        print(f"encurta: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
