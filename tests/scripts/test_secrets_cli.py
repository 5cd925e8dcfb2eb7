"""Secrets that guard something refuse to be weak (issue 17): an empty eSMS callback
token or Twilio auth token once switched receipt authentication off while `loa provider
list` said "ready", and the retention key took ``aaaaaaaaaaaaaaaa``."""

from __future__ import annotations

import hashlib

import pytest

from campaigns.secrets import WeakSecret, check_strength
from tests.scripts.test_cli import loa

WEAK = [
    "",
    "sh0rt",
    "aaaaaaaaaaaaaaaa",
    "password12345678",
    "abcdefghabcdefgh",
    "1234567890123456",
    "qwertyuiopasdfghjklzxcvbnm123456",
    "1111111122222222333333334444",
]
STRONG = [
    "3f9a1c2b7d4e8f60",
    "khoá-bí-mật-của-sở-tttt",
    "f3A9-kq2_Lm8Zx1pQ",
    hashlib.sha512(b"loa").hexdigest()[:80],
]  # past zxcvbn's 72


@pytest.mark.parametrize("secret", WEAK)
def test_weak_secrets_are_refused(secret):
    with pytest.raises(WeakSecret) as refused:
        check_strength(secret)
    assert not secret or secret not in str(refused.value)  # the reason, never the secret


@pytest.mark.parametrize("secret", STRONG)
def test_strong_secrets_pass(secret):
    check_strength(secret)


ESMS = {
    "LOA_PROVIDERS__GW__TYPE": "esms",
    "LOA_PROVIDERS__GW__API_KEY": "k",
    "LOA_PROVIDERS__GW__SECRET_KEY": "s",
}
TWILIO = {
    "LOA_PROVIDERS__INTL__TYPE": "twilio",
    "LOA_PROVIDERS__INTL__ACCOUNT_SID": "AC" + "0" * 32,
}


@pytest.mark.parametrize(
    ("variable", "base", "command"),
    [
        ("LOA_PROVIDERS__GW__CALLBACK_TOKEN", ESMS, ("provider", "list")),
        ("LOA_PROVIDERS__INTL__AUTH_TOKEN", TWILIO, ("provider", "list")),
        ("LOA_PROVIDERS__GW__CALLBACK_TOKEN", ESMS, ("webhook", "--port", "1")),
        ("LOA_ARRIVALS_API_KEY", {}, ("webhook", "--port", "1")),
        ("LOA_RETENTION_KEY", {}, ("retention", "apply")),
        ("LOA_ARRIVALS_API_KEY", {}, ("suppress", "show")),
    ],
)
@pytest.mark.parametrize("secret", ["", "aaaaaaaaaaaaaaaa"])
def test_a_weak_guarding_secret_stops_the_command_naming_it(
    tmp_path, variable, base, command, secret
):
    result = loa(*command, cwd=tmp_path, env={**base, variable: secret})
    assert result.returncode == 2, result.stdout + result.stderr
    shown = result.stdout + result.stderr
    assert variable in shown and "Traceback" not in shown
    assert not secret or secret not in shown
    assert "ready" not in shown
