"""``loa users``: the accounts of Loa's HTTP API (``ledger.api.accounts``).

Exit codes: 0 done, 2 a bad name, role, weak password or unknown account (said in one
line, nothing changed), 1 the ledger cannot be reached.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from scripts import formats as fmt
from scripts.common import JsonOption, ledger_engine
from scripts.output import BAD_INPUT, err, fail, out, print_json

app = typer.Typer(
    help="Accounts of the HTTP API (`loa api`): each with a role (auditor reads, operator "
    "also launches and stops, admin also manages accounts), an argon2id-hashed password "
    "and API tokens shown once.",
    no_args_is_help=True,
)

Name = Annotated[str, typer.Argument(help="The account's name: a-z, 0-9, '.', '_', '-'.")]
PasswordStdin = Annotated[
    bool,
    typer.Option(
        "--password-stdin",
        help="Read the password from standard input (a script's); without it, asked twice.",
    ),
]


@contextmanager
def _refused() -> Iterator[None]:
    """An account change refused (``AccountError``): its reason in one line, exit 2."""
    from ledger.api.accounts import AccountError

    try:
        yield
    except AccountError as exc:
        fail(str(exc), BAD_INPUT)


def _password(name: str, from_stdin: bool) -> str:
    """The new password: a line of standard input, or asked twice without echo."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = typer.prompt(f"Mật khẩu · password for {name}", hide_input=True)
    again = typer.prompt("Nhập lại · again", hide_input=True)
    if first != again:
        fail(f"{name}: the two passwords differ; nothing changed", BAD_INPUT)
    return str(first)


@app.command("add")
def add(
    name: Name,
    role: Annotated[str, typer.Option(help="auditor, operator or admin.")],
    password_stdin: PasswordStdin = False,
) -> None:
    """Add an account (its password asked twice, or read with --password-stdin: at least
    12 characters, hard to guess; a passphrase is best)."""
    from ledger.api.accounts import add_user

    password = _password(name, password_stdin)
    with ledger_engine() as engine, _refused():
        account = add_user(engine, name, role, password)
    out.print(f"{account.name}: thêm · added ({account.role})")


@app.command("list")
def list_users(as_json: JsonOption = False) -> None:
    """Every account: its role, since when, whether disabled, its live tokens."""
    from rich.table import Table

    from ledger.api.accounts import list_users as found

    with ledger_engine() as engine:
        rows = found(engine)
    if as_json:
        print_json(
            [
                {
                    **row,
                    "created_at": row["created_at"].isoformat(),
                    "disabled_at": row["disabled_at"] and row["disabled_at"].isoformat(),
                }
                for row in rows
            ]
        )
        return
    table = Table(title="Tài khoản · accounts", title_justify="left")
    for title in ("tên\nname", "vai trò\nrole", "từ\nsince", "khoá\ndisabled", "token"):
        table.add_column(title)
    for row in rows:
        disabled = fmt.moment(row["disabled_at"]) if row["disabled_at"] else fmt.NO
        table.add_row(
            row["name"], row["role"], fmt.moment(row["created_at"]), disabled, str(row["tokens"])
        )
    out.print(table)


@app.command("disable")
def disable(name: Name) -> None:
    """Stop an account at once: its password and every token stop working."""
    from ledger.api.accounts import disable as stop

    with ledger_engine() as engine, _refused():
        stop(engine, name)
    out.print(f"{name}: đã khoá · disabled")


@app.command("reset")
def reset(name: Name, password_stdin: PasswordStdin = False) -> None:
    """Give an account a new password (its tokens stay; revoke them with `revoke`)."""
    from ledger.api.accounts import set_password

    password = _password(name, password_stdin)
    with ledger_engine() as engine, _refused():
        set_password(engine, name, password)
    out.print(f"{name}: mật khẩu mới · password reset")


@app.command("token")
def token(
    name: Name,
    expires: Annotated[
        str, typer.Option(help="How long it lives: e.g. 30d, 12h (at most 365d).")
    ] = "90d",
    label: Annotated[str, typer.Option(help="What it is for (a system's name).")] = "",
    as_json: JsonOption = False,
) -> None:
    """Issue an API token for an account, shown this once (keep it as a secret: only
    its digest is stored). Send it as `Authorization: Bearer TOKEN`."""
    from datetime import timedelta

    from campaigns.durations import parse_duration
    from ledger.api.accounts import issue_token

    try:
        life = parse_duration(expires)
    except ValueError as exc:
        fail(f"--expires {expires!r}: {exc}", BAD_INPUT)
    if not isinstance(life, timedelta) or not timedelta(0) < life <= timedelta(days=365):
        fail(f"--expires {expires!r}: between a minute and 365d", BAD_INPUT)
    with ledger_engine() as engine, _refused():
        token_id, text, until = issue_token(engine, name, life, label)
    if as_json:
        print_json(
            {"id": token_id, "account": name, "token": text, "expires_at": until.isoformat()}
        )
        return
    out.print(text, highlight=False, soft_wrap=True)
    err.print(
        f"token {token_id} of {name}, hết hạn · expires {fmt.moment(until)}: hiện một lần "
        "duy nhất · shown this once; revoke: loa users revoke " + str(token_id)
    )


@app.command("revoke")
def revoke(token_id: Annotated[int, typer.Argument(help="The token's number.")]) -> None:
    """Revoke an API token: it stops working at once."""
    from ledger.api.accounts import revoke_token

    with ledger_engine() as engine, _refused():
        revoke_token(engine, token_id)
    out.print(f"token {token_id}: đã thu hồi · revoked")
