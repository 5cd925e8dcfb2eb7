"""``loa provider list|test``, and provider settings checked at start-up."""

from __future__ import annotations

import json

import pytest

from tests.fake_gateway import fake_gateway
from tests.scripts.test_cli import loa

ACCOUNT = "AC" + "0" * 32


def intl(url: str, **fields: str) -> dict[str, str]:
    """Environment for a Twilio instance ``intl`` beside the sandbox."""
    env = {
        "LOA_PROVIDERS__SANDBOX__TYPE": "sandbox",
        "LOA_PROVIDERS__INTL__TYPE": "twilio",
        "LOA_PROVIDERS__INTL__ACCOUNT_SID": ACCOUNT,
        "LOA_PROVIDERS__INTL__AUTH_TOKEN": "fake-twilio-token-7f3a9c",
        "LOA_PROVIDERS__INTL__BASE_URL": url,
        "LOA_PROVIDERS__INTL__RATE_PER_SECOND": "10",
    }
    env.update({f"LOA_PROVIDERS__INTL__{k.upper()}": v for k, v in fields.items()})
    return env


@pytest.fixture(scope="module")
def twilio():
    with fake_gateway("providers.fakes.twilio") as running:
        yield running


def test_missing_credentials_stop_a_command_at_start_up_naming_the_setting(tmp_path, twilio):
    env = intl(twilio.url)
    del env["LOA_PROVIDERS__INTL__AUTH_TOKEN"]
    result = loa("campaign", "status", "anything", cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert "LOA_PROVIDERS__INTL__AUTH_TOKEN" in result.stderr


def test_list_shows_each_instance_and_its_problem(tmp_path, twilio):
    result = loa("provider", "list", "--json", cwd=tmp_path, env=intl(twilio.url))
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["intl"]["type"] == "twilio" and rows["intl"]["rate_per_second"] == 10
    assert rows["sandbox"]["problem"] is None and rows["intl"]["halted"] is None

    broken = loa("provider", "list", "--json", cwd=tmp_path, env=intl(twilio.url, account_sid="x"))
    assert broken.returncode == 2
    (bad,) = [row for row in json.loads(broken.stdout) if row["name"] == "intl"]
    assert "LOA_PROVIDERS__INTL__ACCOUNT_SID" in bad["problem"]


def test_test_sends_nothing_without_to(tmp_path, twilio):
    twilio.reset()
    result = loa("provider", "test", "intl", "--json", cwd=tmp_path, env=intl(twilio.url))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["problem"] is None
    assert twilio.received() == []  # the account check is a GET: no message


def test_test_names_refused_credentials_and_an_unreachable_endpoint(tmp_path, twilio):
    refused = loa(
        "provider",
        "test",
        "intl",
        cwd=tmp_path,
        env=intl(twilio.url, auth_token="not-the-token-3b8f2a"),
    )
    assert refused.returncode == 1 and "20003" in refused.stderr
    down = loa("provider", "test", "intl", cwd=tmp_path, env=intl("http://127.0.0.1:9"))
    assert down.returncode == 1 and "cannot reach http://127.0.0.1:9" in down.stderr


def test_test_with_to_sends_one_sms_and_masks_the_number(tmp_path, twilio):
    twilio.reset()
    result = loa(
        "provider", "test", "intl", "--to", "0912345678", cwd=tmp_path, env=intl(twilio.url)
    )
    assert result.returncode == 0, result.stderr
    assert "+8491*****78" in result.stdout and "0912345678" not in result.stdout
    ((_, to, _, answer),) = twilio.received()
    assert (to, answer) == ("+84912345678", "queued")


def test_test_refuses_a_bad_number(tmp_path, twilio):
    result = loa("provider", "test", "intl", "--to", "12", cwd=tmp_path, env=intl(twilio.url))
    assert result.returncode == 2 and "--to" in result.stderr
    # A landline is somebody's number too: named masked, as in every other message.
    landline = loa("provider", "test", "intl", "--to", "028 3822 1234", cwd=tmp_path,
                   env=intl(twilio.url))  # fmt: skip
    assert landline.returncode == 2 and "landline" in landline.stderr
    assert "3822 1234" not in landline.stderr and "02838****34" in landline.stderr
    added = loa("suppress", "add", "02838221234", "--list", "dnc", cwd=tmp_path)
    assert added.returncode == 2 and "02838221234" not in added.stderr


def test_test_of_a_halted_provider_says_no_campaign_sends_through_it(tmp_path, twilio):
    """The credentials may be fine again while the ledger still holds the halt: `settings
    ok` alone once let an operator think campaigns would go on. Without a ledger, the
    check makes none to say nothing is halted."""
    env = intl(twilio.url)
    clean = loa("provider", "test", "intl", "--json", cwd=tmp_path, env=env)
    assert json.loads(clean.stdout)["halted"] is None
    assert not (tmp_path / "var").exists()

    from ledger.db import make_engine
    from ledger.halts import halt
    from ledger.migrate import ensure_current

    engine = make_engine(f"sqlite:///{tmp_path / 'var' / 'loa.db'}")
    (tmp_path / "var").mkdir(mode=0o700)
    ensure_current(engine, auto=True)
    halt(engine, "intl", "20003 authenticate")
    engine.dispose()
    told = loa("provider", "test", "intl", cwd=tmp_path, env=env)
    assert told.returncode == 0, told.stderr
    assert "settings ok, credentials accepted" in told.stdout
    warning = " ".join(told.stderr.split())
    assert "provider intl is halted (20003 authenticate)" in warning
    assert "until `loa provider resume intl`" in warning
    as_json = loa("provider", "test", "intl", "--json", cwd=tmp_path, env=env)
    assert json.loads(as_json.stdout)["halted"] == "20003 authenticate"


def test_a_password_or_token_in_a_providers_url_is_never_printed(tmp_path):
    """A base URL with userinfo or a ``?token=`` (a proxy's, a gateway's) was printed whole
    by `provider test` ("cannot reach http://user:pw@…") and by `config show`."""
    env = intl("http://gw:s3cr3tpw@127.0.0.1:9/?token=abc123secret")
    for args in (("provider", "test", "intl"), ("provider", "test", "intl", "--json"),
                 ("config", "show"), ("config", "show", "--json")):  # fmt: skip
        result = loa(*args, cwd=tmp_path, env=env)
        said = result.stdout + result.stderr
        assert "s3cr3tpw" not in said and "abc123secret" not in said, (args, said)
        if args[0] == "config":  # shown on purpose, masked
            assert "http://gw:***@127.0.0.1:9/?token=***" in said, (args, said)
    esms = {
        "LOA_PROVIDERS__VN__TYPE": "esms",
        "LOA_PROVIDERS__VN__API_KEY": "fake-esms-api-key-5d1e7c",
        "LOA_PROVIDERS__VN__SECRET_KEY": "fake-esms-secret-key-9a2b4f",
        "LOA_PROVIDERS__VN__BASE_URL": "http://gw:s3cr3tpw@127.0.0.1:9/?token=abc123secret",
    }
    down = loa("provider", "test", "vn", cwd=tmp_path, env=esms)
    assert down.returncode == 1, down.stderr
    assert "cannot reach http://gw:***@127.0.0.1:9/?token=***" in down.stderr, down.stderr


def test_a_base_url_that_is_not_http_is_refused_at_start_naming_the_variable(tmp_path):
    """``file:///etc/passwd``, ``ftp://``, an empty value or a bare ``host:port`` passed the
    settings ("ready" in provider list) and failed only at the first request, exit 1."""
    for url in ("file:///etc/passwd", "ftp://gw.example/", "", "127.0.0.1:18818", "http://"):
        result = loa("provider", "list", cwd=tmp_path, env=intl(url))
        assert result.returncode == 2, (url, result.stdout)
        assert "LOA_PROVIDERS__INTL__BASE_URL: an http:// or https:// URL with a host" in (
            " ".join((result.stdout + result.stderr).split())
        ), url


def test_a_test_sms_without_a_clear_answer_may_have_gone_out(tmp_path, twilio):
    """A send that timed out was worded "the test SMS was refused", though the provider
    may have sent it: an operator would send another and the phone get two."""
    twilio.reset()
    twilio.faults({"hang": True, "requests": 1})
    env = intl(twilio.url, request_timeout="1")
    result = loa("provider", "test", "intl", "--to", "0912345678", cwd=tmp_path, env=env)
    assert result.returncode == 1
    said = " ".join(result.stderr.split())
    assert "the test SMS may have gone out (no clear answer): ambiguous" in said, said
    assert "refused" not in said
