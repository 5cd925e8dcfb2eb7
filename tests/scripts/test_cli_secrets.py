"""A database or Redis password never reaches the screen: not in ``loa config show``, not in
the error of a ledger that does not answer, wherever the URL carries it."""

from __future__ import annotations

import json

import pytest
import typer
from sqlalchemy import exc as sa_exc

from scripts.output import FAILURE, errors_as_exit_codes
from tests.scripts.test_cli import EXAMPLE, loa, small_list

SECRETS = ("hunter2", "s3cret", "qu3ry", "r3dis")

ENV = {
    # userinfo password and a second one in the query (libpq takes the query's)
    "LOA_DATABASE_URL": "postgresql://loa:hunter2@db.internal/loa?password=qu3ry&sslmode=require",
    "LOA_REDIS_URL": "redis://:s3cret@cache:6379/0?password=r3dis",
}


def _nothing_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, text


@pytest.mark.parametrize("as_json", [True, False])
def test_config_show_masks_passwords_in_userinfo_and_query(tmp_path, as_json):
    result = loa("config", "show", *(["--json"] if as_json else []), cwd=tmp_path, env=ENV)
    assert result.returncode == 0, result.stderr
    _nothing_secret(result.stdout, result.stderr)
    if as_json:
        shown = json.loads(result.stdout)
        assert shown["database_url"] == (
            "postgresql+psycopg://loa:***@db.internal/loa?password=***&sslmode=require"
        )
        assert shown["redis_url"] == "redis://:***@cache:6379/0?password=***"
    else:
        assert "sslmode=require" in result.stdout and "password=***" in result.stdout


def test_config_show_masks_a_query_password_alone(tmp_path):
    env = {"LOA_DATABASE_URL": "postgresql://loa@db.internal/loa?password=qu3ry"}
    result = loa("config", "show", "--json", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    _nothing_secret(result.stdout)
    assert json.loads(result.stdout)["database_url"].endswith("/loa?password=***")


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://loa@127.0.0.1:1/loa?password=qu3ry",
        "postgresql://loa:hunter2@127.0.0.1:1/loa?sslpassword=s3cret",
    ],
)
@pytest.mark.parametrize("command", [["db", "upgrade"], ["campaign", "status", "x"]])
def test_an_unreachable_ledger_is_one_line_without_the_password(tmp_path, url, command):
    result = loa(*command, cwd=tmp_path, env={"LOA_DATABASE_URL": url})
    assert result.returncode == 1
    _nothing_secret(result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert "cannot reach the ledger at postgresql+psycopg://loa" in result.stderr
    assert "127.0.0.1:1/loa?" in result.stderr and "=***" in result.stderr


def test_an_unusable_ledger_url_is_one_line_without_the_password(tmp_path):
    env = {"LOA_DATABASE_URL": "nosuchdb://loa:hunter2@db/loa"}
    result = loa("campaign", "status", "x", cwd=tmp_path, env=env)
    assert result.returncode == 1
    _nothing_secret(result.stderr)
    assert "Traceback" not in result.stderr and "nosuchdb://loa:***@db/loa" in result.stderr


def test_an_unreachable_redis_is_one_line_without_the_password(tmp_path):
    env = {"LOA_REDIS_URL": "redis://:s3cret@127.0.0.1:1/0?password=r3dis"}
    result = loa(
        "campaign", "launch", str(EXAMPLE), "-r", str(small_list(tmp_path)), cwd=tmp_path, env=env
    )
    assert result.returncode == 1
    _nothing_secret(result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and "LOA_REDIS_URL" in result.stderr


@pytest.mark.parametrize(
    "error",
    [
        sa_exc.OperationalError(
            "SELECT 1", {}, Exception('connection failed: "host=db password=hunter2"')
        ),
        sa_exc.InterfaceError("SELECT 1", {}, Exception("connection closed; dsn password=qu3ry")),
    ],
)
def test_a_ledger_lost_mid_command_is_one_line_without_the_password(capsys, error):
    with pytest.raises(typer.Exit) as exited, errors_as_exit_codes():
        raise error
    assert exited.value.exit_code == FAILURE
    shown = capsys.readouterr().err
    _nothing_secret(shown)
    assert shown.startswith("error: ledger error:") and "password=***" in shown
    assert "SELECT" not in shown  # the driver's words, not SQLAlchemy's statement


def test_other_errors_are_not_swallowed():
    with pytest.raises(KeyError), errors_as_exit_codes():
        raise KeyError("a bug stays a bug")
