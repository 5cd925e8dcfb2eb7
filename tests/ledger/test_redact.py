"""Passwords never shown: in a URL's userinfo, in its query, in a driver's error text."""

from __future__ import annotations

import pytest

from ledger.db import LedgerError, display_url, make_engine
from ledger.redact import mask_url, redact


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://loa:hunter2@db/loa", "postgresql://loa:***@db/loa"),
        ("postgresql://loa@db/loa?password=hunter2", "postgresql://loa@db/loa?password=***"),
        (
            "postgresql://loa:hunter2@db:5432/loa?sslmode=require&PASSWORD=hunter2",
            "postgresql://loa:***@db:5432/loa?sslmode=require&PASSWORD=***",
        ),
        ("postgresql://loa@db/loa?sslpassword=hunter2", "postgresql://loa@db/loa?sslpassword=***"),
        ("redis://:hunter2@cache:6379/0", "redis://:***@cache:6379/0"),
        ("rediss://default:hunter2@cache:6380/0", "rediss://default:***@cache:6380/0"),
        ("redis://cache:6379/0?password=hunter2", "redis://cache:6379/0?password=***"),
        (
            "unix:///run/redis.sock?db=0&password=hunter2",
            "unix:///run/redis.sock?db=0&password=***",
        ),
        # '@' or '/' in an unencoded password: nothing either URL reader would use is left.
        ("postgresql://loa:hun@ter2@db/loa", "postgresql://loa:***@db/loa"),
        ("postgresql://loa:hun/ter2@db/loa", "postgresql://loa:***@db/loa"),
        ("loa:hunter2@db/loa", "loa:***@db/loa"),  # the scheme forgotten
    ],
)
def test_mask_url_hides_the_password_wherever_it_is(url, shown):
    assert mask_url(url) == shown


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://loa@db:5432/loa?sslmode=require&application_name=loa",
        "redis://cache:6379/0",
        "rediss://default@cache:6380/0?ssl_cert_reqs=none",
        "sqlite:////var/lib/loa/loa.db",
        "sqlite:///var/loa.db",
    ],
)
def test_mask_url_leaves_urls_without_a_password_alone(url):
    assert mask_url(url) == url


def test_display_url_masks_query_passwords_and_never_raises():
    assert display_url("postgresql://loa@db/loa?password=hunter2") == (
        "postgresql+psycopg://loa@db/loa?password=***"
    )
    assert display_url("postgresql://loa:hunter2@db:port/loa") == "postgresql://loa:***@db:port/loa"
    assert "hunter2" not in display_url("not a url, loa:hunter2@db")


@pytest.mark.parametrize(
    "text",
    [
        # libpq/psycopg echo a conninfo, quoted or not
        'invalid dsn: "host=db user=loa password=hunter2 dbname=loa"',
        'missing "=" after "x" in connection info string: password=\'hun ter2\' host=db',
        # a URL in a sentence, password in the userinfo or in the query
        "cannot reach the ledger at postgresql://loa:hunter2@db/loa: refused",
        "cannot reach the ledger at postgresql://loa@db/loa?password=hunter2: refused",
        # a mapping's repr
        "connect kwargs {'host': 'db', 'password': 'hunter2'}",
    ],
)
def test_redact_masks_passwords_in_error_messages(text):
    redacted = redact(text)
    assert "hunter2" not in redacted and "ter2" not in redacted
    assert "***" in redacted


def test_redact_keeps_the_rest_of_the_message():
    message = "cannot reach the ledger at postgresql://loa@db/loa?password=hunter2: refused"
    assert (
        redact(message)
        == "cannot reach the ledger at postgresql://loa@db/loa?password=***: refused"
    )


def test_an_unusable_ledger_url_is_a_ledger_error_without_its_password():
    for url in ("nosuchdb://loa:hunter2@db/loa", "postgresql://loa:hunter2@db:port/loa"):
        with pytest.raises(LedgerError) as caught:
            make_engine(url)
        assert "hunter2" not in str(caught.value) and "***" in str(caught.value)


@pytest.mark.parametrize(
    "secret_name", ["token", "access_token", "api_key", "apikey", "client_secret", "pwd"]
)
def test_a_url_s_token_or_key_is_masked_in_urls_and_in_messages(secret_name):
    """A receipt callback carrying its provider's token (eSMS's CALLBACK_URL) must not show
    it in `loa config show`, logs or errors."""
    url = f"https://hook.example/receipts/esms?{secret_name}=S3cr3tValue&x=1"
    assert "S3cr3tValue" not in mask_url(url) and "x=1" in mask_url(url)
    assert "S3cr3tValue" not in redact(f"callback {url} refused")
