"""Accounts of the HTTP API (``ledger.api.accounts``) on both ledgers: roles that nest,
argon2id passwords, tokens stored as digests and shown once, every way a token or a
password stops working, and every change in the log without a secret in it."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from ledger.api import accounts
from ledger.api.accounts import AccountError, Unauthorized
from ledger.schema import api_tokens, events, users

PASSWORD = "ruộng lúa xanh mướt chiều thu"


def test_roles_nest():
    admin, operator, auditor = (accounts.Account("a", r) for r in ("admin", "operator", "auditor"))
    assert admin.may("operator") and admin.may("auditor") and operator.may("auditor")
    assert not auditor.may("operator") and not operator.may("admin")


@pytest.mark.parametrize(
    ("name", "role", "password", "said"),
    [
        ("Lan", "operator", PASSWORD, "a name of a-z"),
        ("lan", "root", PASSWORD, "role 'root' is none of"),
        ("lan", "operator", "short", "at least 12 characters"),
        ("lan", "operator", "password1234", "too easy to guess"),
        ("lan", "operator", "lan123456789", "too easy to guess"),
    ],
)
def test_a_bad_account_is_refused_saying_why(engine, name, role, password, said):
    with pytest.raises(AccountError, match=said):
        accounts.add_user(engine, name, role, password)
    with engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(users)) == 0


def test_an_account_s_password_is_argon2id_and_checked(engine):
    accounts.add_user(engine, "lan", "operator", PASSWORD)
    with pytest.raises(AccountError, match="exists"):
        accounts.add_user(engine, "lan", "auditor", PASSWORD)
    with engine.connect() as conn:
        stored = conn.scalar(sa.select(users.c.password_hash))
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert accounts.by_password(engine, "lan", PASSWORD) == accounts.Account("lan", "operator")
    for name, password in (("lan", PASSWORD + "!"), ("nobody", PASSWORD), ("lan", "")):
        with pytest.raises(Unauthorized):
            accounts.by_password(engine, name, password)
    accounts.set_password(engine, "lan", "một mật khẩu mới dài hơn")
    with pytest.raises(Unauthorized):
        accounts.by_password(engine, "lan", PASSWORD)
    accounts.disable(engine, "lan")
    with pytest.raises(Unauthorized):
        accounts.by_password(engine, "lan", "một mật khẩu mới dài hơn")


def test_a_token_is_shown_once_kept_as_its_digest_and_stops_as_it_should(engine):
    accounts.add_user(engine, "kiem-toan", "auditor", PASSWORD)
    before = accounts.now()
    token_id, text, expires = accounts.issue_token(engine, "kiem-toan", label="sở TT&TT")
    assert text.startswith("loat_") and len(text) > 40
    assert expires - before >= accounts.DEFAULT_TOKEN_LIFE
    with engine.connect() as conn:
        kept = conn.execute(sa.select(api_tokens)).one()
    assert text not in repr(kept._asdict()) and kept.digest != text
    assert accounts.by_token(engine, text) == accounts.Account("kiem-toan", "auditor")
    for forged in (text + "x", text[:-1], "loat_", "Bearer " + text, "x" * 500):
        with pytest.raises(Unauthorized):
            accounts.by_token(engine, forged)
    listed = accounts.list_users(engine)
    assert [(u["name"], u["role"], u["tokens"]) for u in listed] == [("kiem-toan", "auditor", 1)]

    accounts.revoke_token(engine, token_id)
    with pytest.raises(Unauthorized):
        accounts.by_token(engine, text)
    with pytest.raises(AccountError, match="revoked already"):
        accounts.revoke_token(engine, token_id)

    _, later, _ = accounts.issue_token(engine, "kiem-toan", life=timedelta(seconds=30))
    with engine.begin() as conn:  # its thirty seconds passed
        conn.execute(api_tokens.update().values(expires_at=sa.func.current_timestamp()))
    with pytest.raises(Unauthorized):
        accounts.by_token(engine, later)

    _, third, _ = accounts.issue_token(engine, "kiem-toan")
    accounts.disable(engine, "kiem-toan")
    with pytest.raises(Unauthorized):
        accounts.by_token(engine, third)
    with pytest.raises(AccountError, match="disabled"):
        accounts.issue_token(engine, "kiem-toan")
    with pytest.raises(AccountError, match="no such account"):
        accounts.issue_token(engine, "nobody")


def test_every_change_is_in_the_log_without_a_secret(engine):
    accounts.add_user(engine, "lan", "operator", PASSWORD)
    token_id, text, _ = accounts.issue_token(engine, "lan")
    accounts.set_password(engine, "lan", "một mật khẩu mới dài hơn")
    accounts.revoke_token(engine, token_id)
    accounts.disable(engine, "lan")
    with engine.connect() as conn:
        logged = [row.detail for row in conn.execute(sa.select(events).order_by(events.c.id))]
    assert [d["action"] for d in logged] == [
        "account_added", "token_issued", "password_reset", "token_revoked", "account_disabled",
    ]  # fmt: skip
    assert all(d.get("by") for d in logged)
    shown = repr(logged)
    assert PASSWORD not in shown and text not in shown and "một mật khẩu" not in shown
