"""`encurta backup DIR` and `encurta restore DIR`: every module's database, and the keys.

A backup folder holds one pg_dump per module (`<module>.dump`, each one snapshot of its
database: consistent per module), the secrets generated into the data dir (`keys/`: auth's
signing key, the shortener's visitor secret), and `manifest.json` (written last: a folder
without it is an unfinished backup) with each file's size and SHA-256 and each module's
Alembic revision.

The modules are dumped in the registry's order, publishers before their consumers (auth,
then the shortener, then analytics and webhooks). With the in-process bus an outbox row is
marked sent only once its consumers have committed, so every event a producer's dump shows
as sent is in its consumers' later dumps, and every event it shows unsent is published
again after a restore, where the consumers' inboxes drop what they already have. See the
README's "Backups" for what that means with Kafka.

Restore checks every file against the manifest before it touches anything, refuses a
database that already has tables (or a different key in the data dir) unless `--force`,
restores each module in one transaction, then migrates forward: a backup of an older
encurta restored by a newer one ends at the newer one's revisions.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import asyncpg
from pydantic import BaseModel, SecretStr
from sqlalchemy.exc import SQLAlchemyError

from app.config import Settings
from app.kernel import backup, migrations
from app.kernel.embedded import EmbeddedPostgres
from app.registry import NAMES

OK, REFUSED = 0, 1
MANIFEST = "manifest.json"
FORMAT = 1
KEYS = "keys"  # the data dir's folder of generated secrets, and its copy in a backup

Databases = Callable[[Sequence[str]], AbstractContextManager[dict[str, str]]]
MigrateForward = Callable[[Sequence[str], dict[str, str]], None]


class Refused(Exception):
    """The backup or restore cannot go on; the message says why, naming module and file."""


def add_parsers(commands: Any) -> None:
    """`encurta backup` and `encurta restore`, on the CLI's subcommands."""
    made = commands.add_parser(
        "backup",
        help="dump every enabled module's database and the keys into a new folder",
        description="Write DIR/<module>.dump (pg_dump, one consistent snapshot per module, "
        "safe while `encurta serve` runs), DIR/keys/ (the signing key and secrets generated "
        "in ENCURTA_DATA_DIR: DIR then holds secrets, kept 0700/0600), and DIR/manifest.json "
        "(versions, revisions, sizes, SHA-256). DIR must be new or empty. Uses the configured "
        "URLs, or the embedded server (a running serve's, or its own for the while).",
    )
    made.add_argument("dir", type=Path, metavar="DIR")
    back = commands.add_parser(
        "restore",
        help="restore a backup made by `encurta backup` into this instance",
        description="Check every file of DIR against its manifest, then restore each "
        "module's database and the keys, and migrate each module forward to this version. "
        "Refuses databases that already have tables, or a different key in the data dir, "
        "unless --force (which drops what the module's role owns in its database first). "
        "Stop `encurta serve` first. Exit status: 0 done, 1 refused (the reason on stderr).",
    )
    back.add_argument("dir", type=Path, metavar="DIR")
    back.add_argument(
        "--force", action="store_true", help="replace the databases' tables and the keys"
    )


def _encurta_version() -> str:
    try:
        return version("encurta")
    except PackageNotFoundError:  # a checkout that is not installed
        return "unknown"


def _private_file(source: Path, target: Path) -> None:
    """`source` copied to `target`, readable by its owner alone from the first byte."""
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out, source.open("rb") as src:
        shutil.copyfileobj(src, out)
    os.chmod(target, 0o600)


def _described(path: Path, name: str) -> dict[str, Any]:
    return {"file": name, "size": path.stat().st_size, "sha256": backup.sha256(path)}


def _configured_secrets(settings: Settings) -> list[str]:
    """The module settings that hold a key or secret given by the operator (not generated
    into the data dir): a backup cannot copy them; they live with the settings."""
    named: list[str] = []
    for name in settings.modules:
        section = settings.database(name)
        for field in type(section).model_fields:
            value = getattr(section, field)
            if field == "database_url" or value is None or isinstance(value, BaseModel):
                continue
            if isinstance(value, SecretStr | Path) and ("key" in field or "secret" in field):
                named.append(f"ENCURTA_{name.upper()}__{field.upper()}")
    return named


def take(settings: Settings, target: Path, databases: Databases) -> int:
    """`encurta backup DIR`."""
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise Refused(f"{target} already exists and is not an empty folder: choose a new one")
    target.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(target, 0o700)
    names = list(settings.modules)
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "encurta": _encurta_version(),
        "started_at": datetime.now(UTC).isoformat(),
        "modules": {},
        "secrets": {},
    }
    with databases(names) as urls:
        for name in names:  # the registry's order: publishers before their consumers
            revision = backup.revision(name, urls[name])
            file = target / f"{name}.dump"
            backup.dump(name, urls[name], file)
            os.chmod(file, 0o600)
            manifest["modules"][name] = {
                **_described(file, file.name),
                "revision": revision,
                "dumped_at": datetime.now(UTC).isoformat(),
            }
            print(f"{name}: {file} ({file.stat().st_size} bytes, revision {','.join(revision)})")
    keys = settings.data_dir / KEYS
    if keys.is_dir() and (files := sorted(p for p in keys.iterdir() if p.is_file())):
        (target / KEYS).mkdir(mode=0o700)
        for source in files:
            copy = target / KEYS / source.name
            _private_file(source, copy)
            manifest["secrets"][source.name] = _described(copy, f"{KEYS}/{source.name}")
        print(
            f"keys: {len(files)} file(s) copied to {target / KEYS}: {target} now holds "
            "secrets (the token signing key, the visitor secret): keep it private, encrypted"
        )
    for variable in _configured_secrets(settings):
        print(f"not copied: {variable} is configured: keep it with your settings")
    manifest["finished_at"] = datetime.now(UTC).isoformat()
    (target / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    os.chmod(target / MANIFEST, 0o600)
    print(f"backup complete: {target / MANIFEST}")
    return OK


def _manifest(source: Path) -> dict[str, Any]:
    path = source / MANIFEST
    try:
        manifest: Any = json.loads(path.read_text())
    except FileNotFoundError:
        raise Refused(
            f"{path} is missing: not a backup made by `encurta backup`, or an unfinished one"
        ) from None
    except (OSError, ValueError) as exc:
        raise Refused(f"{path} cannot be read: {type(exc).__name__}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise Refused(f"{path} is not a manifest this encurta reads (format {FORMAT})")
    return manifest


def _check_file(source: Path, entry: Any, what: str) -> Path:
    """The file a manifest entry names, checked against its size and SHA-256."""
    if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
        raise Refused(f"{what}: the manifest has no file for it")
    path: Path = (source / str(entry["file"])).resolve()
    if source.resolve() not in path.parents:
        raise Refused(f"{what}: {entry['file']} is outside the backup folder")
    if not path.is_file():
        raise Refused(f"{what}: {path} is missing")
    if path.stat().st_size != entry.get("size") or backup.sha256(path) != entry.get("sha256"):
        raise Refused(f"{what}: {path} does not match its checksum in the manifest (damaged?)")
    return path


def _check_revision(name: str, entry: dict[str, Any]) -> None:
    known = migrations.revisions(name)
    recorded = entry.get("revision") or []
    if known is not None and not set(recorded) <= known:
        raise Refused(
            f"{name}: the backup is at revision {','.join(recorded)}, which this encurta "
            f"({_encurta_version()}) does not know: restore it with the version that made it "
            "or a newer one"
        )


def restore(
    settings: Settings,
    source: Path,
    force: bool,
    databases: Databases,
    migrate_forward: MigrateForward,
) -> int:
    """`encurta restore DIR [--force]`."""
    manifest = _manifest(source)
    modules: dict[str, Any] = manifest.get("modules") or {}
    unknown = sorted(set(modules) - set(NAMES))
    if unknown:
        raise Refused(f"the backup has modules this encurta lacks: {', '.join(unknown)}")
    names = [name for name in NAMES if name in modules]
    dumps = {name: _check_file(source, modules[name], name) for name in names}
    for name in names:
        _check_revision(name, modules[name])
    secrets = {
        key: _check_file(source, entry, f"key {key}")
        for key, entry in (manifest.get("secrets") or {}).items()
    }
    if odd := [key for key in secrets if Path(key).name != key or key in (".", "..")]:
        raise Refused(f"the manifest names keys that are not plain file names: {odd}")
    keys = settings.data_dir / KEYS
    clashing = [
        key
        for key, path in secrets.items()
        if (keys / key).exists() and (keys / key).read_bytes() != path.read_bytes()
    ]
    if clashing and not force:
        raise Refused(
            f"{keys} already holds a different {', '.join(clashing)}: restore into a fresh "
            "instance, or pass --force to replace it (tokens it signed stop verifying)"
        )
    embedded = [name for name in names if not settings.configured_url(name)]
    if embedded and EmbeddedPostgres(settings.data_dir / "postgres").running():
        raise Refused(
            f"the embedded PostgreSQL under {settings.data_dir} is running (an `encurta serve` "
            "uses it, or one was killed and left it: start and stop `encurta serve` once): "
            "stop it before restoring"
        )
    with databases(names) as urls:
        if not force:
            for name in names:
                if found := backup.tables(urls[name]):
                    raise Refused(
                        f"{name}: its database already has {len(found)} tables: restore into "
                        "a fresh instance, or pass --force to replace them"
                    )
        for name in names:
            if force:
                backup.wipe(urls[name])
            backup.restore(name, urls[name], dumps[name])
            print(f"{name}: restored from {dumps[name]}")
        migrate_forward(names, urls)
        for name in names:
            print(f"{name}: at revision {','.join(backup.revision(name, urls[name]))}")
    if secrets:
        keys.mkdir(mode=0o700, parents=True, exist_ok=True)
        for key, path in secrets.items():
            _private_file(path, keys / key)
        print(f"keys: {', '.join(sorted(secrets))} restored to {keys}")
    print(f"restore complete, from a backup of encurta {manifest.get('encurta', '?')}")
    return OK


def run(
    settings: Settings,
    args: argparse.Namespace,
    databases: Databases,
    migrate_forward: MigrateForward,
) -> int:
    """Run `encurta backup` or `encurta restore`; a refusal is one line on stderr."""
    try:
        if args.command == "backup":
            return take(settings, args.dir, databases)
        return restore(settings, args.dir, args.force, databases, migrate_forward)
    except Refused as exc:
        print(f"encurta {args.command}: {exc}", file=sys.stderr)
        return REFUSED
    except backup.BackupError as exc:
        print(f"encurta {args.command}: {exc}", file=sys.stderr)
    except (OSError, asyncpg.PostgresError, SQLAlchemyError) as exc:
        reason = (str(exc).strip().splitlines() or [""])[0]
        print(
            f"encurta {args.command}: a database could not be used: {type(exc).__name__}: {reason}",
            file=sys.stderr,
        )
    if args.command == "backup":
        print(
            f"encurta backup: {args.dir} is unfinished (no {MANIFEST}): remove it", file=sys.stderr
        )
    else:
        print(
            "encurta restore: the modules named above as restored are; run it again with "
            "--force once the cause is fixed",
            file=sys.stderr,
        )
    return REFUSED
