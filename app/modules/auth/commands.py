"""`encurta users ...`: accounts administered on the server, against auth's own database.

They work beside a running `encurta serve` (joining its embedded PostgreSQL) and with a
configured ENCURTA_AUTH__DATABASE_URL alike, and apply the API's rules: the password policy
and argon2 settings of registration, the first account is the admin, an instance keeps an
active admin, and disabling an account or setting its password ends its sessions (in the
same transaction). A password is read from stdin (`--password-stdin`) or asked for on a
terminal, never taken as an argument; no password or hash is ever printed.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.modules.auth.emails import email_key
from app.modules.auth.passwords import Passwords
from app.modules.auth.schemas import RegisterRequest, strong_enough
from app.modules.auth.sessions import access_changed, end_sessions
from app.modules.auth.settings import AuthSettings
from app.modules.auth.tables import users
from app.modules.auth.users import (
    ROLES_LOCK,
    EmailTaken,
    LastAdmin,
    insert_user,
    keep_an_admin,
    store_password,
)
from app.wiring import Command

OK, FAILED, USAGE = 0, 1, 2


class _Refused(Exception):
    """The command cannot do it; the message says why, in one line."""

    def __init__(self, message: str, status: int = FAILED) -> None:
        super().__init__(message)
        self.status = status


def _arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    stdin_help = (
        "read the password from stdin (one line; without this flag it is asked for on a terminal)"
    )
    create = actions.add_parser(
        "create",
        help="create an account",
        description="Create an account, whatever ENCURTA_AUTH__REGISTRATION says. The first "
        "account of an instance is its admin; later ones are users unless --admin. The "
        "password follows registration's rules (8 to 256 characters, not a common one).",
    )
    create.add_argument("email")
    create.add_argument("--admin", action="store_true", help="make the account an admin")
    create.add_argument("--password-stdin", action="store_true", help=stdin_help)
    actions.add_parser(
        "list",
        help="list the accounts",
        description="Print every account, oldest first: email, role, active, created.",
    )
    for name, short, does in (
        (
            "disable",
            "disable an account and end its sessions",
            "Disable an account: it cannot log in, and its sessions end now. Refused when it "
            "would leave the instance without an active admin.",
        ),
        ("enable", "enable a disabled account", "Enable a disabled account again."),
    ):
        action = actions.add_parser(name, help=short, description=does)
        action.add_argument("email")
    set_password = actions.add_parser(
        "set-password",
        help="set an account's password",
        description="Set an account's password (registration's rules apply); every session "
        "of the account ends.",
    )
    set_password.add_argument("email")
    set_password.add_argument("--password-stdin", action="store_true", help=stdin_help)


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        text = sys.stdin.read()
        password = text.removesuffix("\n").removesuffix("\r")
        if "\n" in password or "\r" in password:
            raise _Refused("the password on stdin must be one line")
        return password
    if not sys.stdin.isatty():
        raise _Refused(
            "give the password on stdin with --password-stdin (never as an argument)", USAGE
        )
    password = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != password:
        raise _Refused("the two passwords differ")
    return password


def _invalid(error: ValidationError) -> _Refused:
    reasons = [
        f"{'.'.join(str(p) for p in item['loc'])}: "
        + str(item["msg"]).removeprefix("Value error, ")
        for item in error.errors(include_url=False, include_input=False)
    ]
    return _Refused("; ".join(reasons))


async def _account(engine: AsyncEngine, email: str) -> Any:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(users.c.id, users.c.email).where(users.c.email_key == email_key(email))
            )
        ).one_or_none()
    if row is None:
        raise _Refused(f"no account has the email {email}")
    return row


async def _hash(settings: AuthSettings, password: str) -> str:
    passwords = Passwords(settings.argon2)
    try:
        with passwords.slot("cli") as slot:
            return await passwords.hash(password, slot=slot)
    finally:
        await passwords.close()


async def _create(args: argparse.Namespace, settings: AuthSettings, engine: AsyncEngine) -> None:
    password = _read_password(args)
    try:
        valid = RegisterRequest.model_validate({"email": args.email, "password": password})
    except ValidationError as exc:
        raise _invalid(exc) from None
    password_hash = await _hash(settings, password)
    try:
        async with engine.begin() as conn:
            row = await insert_user(
                conn, str(valid.email), password_hash, role="admin" if args.admin else None
            )
    except EmailTaken:
        raise _Refused(f"an account with the email {valid.email} already exists") from None
    first = " (the first account of the instance is its admin)" if not args.admin else ""
    print(f"created {row.email}: {row.role}{first if row.role == 'admin' else ''}")


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


async def _list(args: argparse.Namespace, settings: AuthSettings, engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(users.c.email, users.c.role, users.c.is_active, users.c.created_at).order_by(
                    users.c.created_at, users.c.id
                )
            )
        ).all()
    if not rows:
        print("no accounts (the first one made will be the admin)")
        return
    table = [("EMAIL", "ROLE", "ACTIVE", "CREATED")] + [
        (row.email, row.role, "yes" if row.is_active else "no", _when(row.created_at))
        for row in rows
    ]
    widths = [max(len(line[column]) for line in table) for column in range(3)]
    for email, role, active, created in table:
        padded = (
            cell.ljust(width) for cell, width in zip((email, role, active), widths, strict=True)
        )
        print("  ".join((*padded, created)))


async def _set_active(engine: AsyncEngine, email: str, active: bool) -> None:
    account = await _account(engine, email)
    try:
        async with engine.begin() as conn:
            await conn.execute(select(func.pg_advisory_xact_lock(ROLES_LOCK)))
            await conn.execute(
                update(users)
                .where(users.c.id == account.id)
                .values(is_active=active, updated_at=func.now())
            )
            if not active:
                await keep_an_admin(conn)  # raises LastAdmin
                await end_sessions(conn, account.id)
            else:
                await access_changed(conn, account.id)  # every module admits it again
    except LastAdmin:
        raise _Refused(
            f"{account.email} is the last active admin: the instance must keep one "
            "(make another admin first)"
        ) from None
    print(
        f"disabled {account.email}; its sessions are ended"
        if not active
        else f"enabled {account.email}"
    )


async def _disable(args: argparse.Namespace, settings: AuthSettings, engine: AsyncEngine) -> None:
    await _set_active(engine, args.email, active=False)


async def _enable(args: argparse.Namespace, settings: AuthSettings, engine: AsyncEngine) -> None:
    await _set_active(engine, args.email, active=True)


async def _set_password(
    args: argparse.Namespace, settings: AuthSettings, engine: AsyncEngine
) -> None:
    password = _read_password(args)
    try:
        strong_enough(password)
    except ValueError as exc:
        raise _Refused(f"password: {exc}") from None
    account = await _account(engine, args.email)
    password_hash = await _hash(settings, password)
    async with engine.begin() as conn:
        if not await store_password(conn, account.id, password_hash):
            raise _Refused(f"no account has the email {args.email}")  # deleted meanwhile
    print(f"set the password of {account.email}; its sessions are ended")


_ACTIONS = {
    "create": _create,
    "list": _list,
    "disable": _disable,
    "enable": _enable,
    "set-password": _set_password,
}


async def _run(args: argparse.Namespace, settings: AuthSettings, engine: AsyncEngine) -> int:
    try:
        await _ACTIONS[args.action](args, settings, engine)
    except _Refused as exc:
        print(f"encurta users {args.action}: {exc}", file=sys.stderr)
        return exc.status
    return OK


USERS = Command[AuthSettings](
    name="users",
    help="create, list, disable and enable accounts, set passwords",
    description="Administer auth's accounts on the server: `users create EMAIL [--admin] "
    "--password-stdin`, `users list`, `users disable EMAIL`, `users enable EMAIL`, `users "
    "set-password EMAIL --password-stdin`. Beside a running `encurta serve` it uses serve's "
    "embedded server and leaves it running; with ENCURTA_AUTH__DATABASE_URL it uses that. "
    "Exit status: 0 done, 1 refused (the reason on stderr), 2 usage.",
    arguments=_arguments,
    run=_run,
)
