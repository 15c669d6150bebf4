"""``visage users``: console accounts (the people who sign in to the web console)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from visage.cli._base import JsonFlag, _core, _emit_json, app, guarded, out
from visage.cli._input import build
from visage.cli._lazy import lazy, lazy_call
from visage.errors import InputError
from visage.governance.roles import Role

if TYPE_CHECKING:  # imported when a command runs (see visage.cli._lazy)
    from rich.table import Table

    from visage.governance import audit
    from visage.usecases import users as users_uc
else:
    Table = lazy_call("rich.table", "Table")
    audit = lazy("visage.governance.audit")
    users_uc = lazy("visage.usecases.users")

users_app = typer.Typer(
    help="Console user accounts: named people with one role each.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(users_app, name="users")

UserName = Annotated[str, typer.Argument(help="The account's user name.", show_default=False)]
PasswordStdin = Annotated[
    bool,
    typer.Option(
        "--password-stdin",
        help="Read the password from standard input (never from the command line). "
        "Without it, a random password is made, printed once, and must be changed at "
        "first sign-in.",
    ),
]


def _read_password() -> str:
    """The first line of standard input, without its line ending."""
    line = sys.stdin.readline()
    password = line.removesuffix("\n").removesuffix("\r")
    if not password:
        raise InputError("--password-stdin: standard input holds no password")
    return password


def _password(from_stdin: bool) -> tuple[str, bool]:
    """(password, generated)."""
    return (_read_password(), False) if from_stdin else (users_uc.new_password(), True)


def _show(info: users_uc.UserInfo, as_json: bool, verb: str) -> None:
    if as_json:
        _emit_json(info)
    else:
        out.print(f"user {info.name} ({info.role.value}) {verb}")


@users_app.command("add")
@guarded
def users_add(
    name: UserName,
    role: Annotated[
        Role, typer.Option("--role", help="admin, enroller, operator, reviewer or auditor.")
    ],
    purpose: Annotated[
        list[str] | None,
        typer.Option("--purpose", help="Purpose an operator may use (operators need one). Repeat."),
    ] = None,
    password_stdin: PasswordStdin = False,
    as_json: JsonFlag = False,
) -> None:
    """Add a console account."""
    new = build(
        users_uc.NewUser,
        {"purposes": "--purpose", "name": "NAME"},
        name=name,
        role=role,
        purposes=purpose or [],
    )
    password, generated = _password(password_stdin)
    info = users_uc.add_user(_core(), new, password, audit.Actor.local(), must_change=generated)
    if as_json:
        _emit_json(
            {**info.model_dump(mode="json"), **({"password": password} if generated else {})}
        )
        return
    purposes = ", ".join(info.purposes) or "-"
    out.print(f"user {info.name} added ({info.role.value}, purposes: {purposes})")
    if generated:
        out.print(f"[bold]{password}[/]  <- one-time password, shown once; to be changed")


@users_app.command("list")
@guarded
def users_list(as_json: JsonFlag = False) -> None:
    """All console accounts (never their passwords): role, purposes, TOTP, state."""
    users = users_uc.list_users(_core())
    if as_json:
        _emit_json(users)
        return
    table = Table(title=f"{len(users)} user(s)")
    for col in ("name", "role", "purposes", "totp", "created", "state"):
        table.add_column(col)
    for u in users:
        state = "disabled" if u.disabled_at else "active"
        if u.must_change_password and not u.disabled_at:
            state += " (must change password)"
        table.add_row(
            u.name,
            u.role.value,
            ", ".join(u.purposes) or "-",
            "on" if u.totp else "off",
            f"{u.created_at:%Y-%m-%d}",
            state,
        )
    out.print(table)


@users_app.command("disable")
@guarded
def users_disable(name: UserName, as_json: JsonFlag = False) -> None:
    """Disable an account: it cannot sign in, and its open sessions end now."""
    _show(users_uc.disable_user(_core(), name, audit.Actor.local()), as_json, "disabled")


@users_app.command("enable")
@guarded
def users_enable(name: UserName, as_json: JsonFlag = False) -> None:
    """Enable a disabled account again."""
    _show(users_uc.enable_user(_core(), name, audit.Actor.local()), as_json, "enabled")


@users_app.command("passwd")
@guarded
def users_passwd(
    name: UserName, password_stdin: PasswordStdin = False, as_json: JsonFlag = False
) -> None:
    """Set an account's password; its open sessions end."""
    password, generated = _password(password_stdin)
    core = _core()
    users_uc.set_password(core, name, password, audit.Actor.local(), must_change=generated)
    info = users_uc.get_user(core, name)
    if as_json:
        _emit_json(
            {**info.model_dump(mode="json"), **({"password": password} if generated else {})}
        )
        return
    out.print(f"password of {info.name} set; its sessions ended")
    if generated:
        out.print(f"[bold]{password}[/]  <- one-time password, shown once; to be changed")


@users_app.command("totp-off")
@guarded
def users_totp_off(name: UserName, as_json: JsonFlag = False) -> None:
    """Turn an account's one-time codes (TOTP) off, e.g. after a lost authenticator."""
    _show(users_uc.disable_totp(_core(), name, audit.Actor.local()), as_json, "has TOTP off")
