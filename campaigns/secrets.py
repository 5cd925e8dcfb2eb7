"""Secrets that guard something: a minimum length and a minimum strength.

A receipt route's token, a provider's signing key, the arrivals API key and the retention
key each stand between the internet (or a stolen database) and something that matters.
An empty one turned receipt authentication off without a word (``compare_digest`` of two
empty strings is true; an HMAC with an empty key is one anybody can compute), and
``aaaaaaaaaaaaaaaa`` passed a length check. So such a secret must be at least
``MIN_LENGTH`` characters and hard to guess: its guesses, as estimated by zxcvbn (Dropbox's
estimator, which knows repeats, sequences, keyboard walks, dictionary words and their
l33t forms), at least ``10 ** MIN_GUESSES_LOG10``. A random string of 16 hex digits
passes (10^16); ``password12345678`` (10^4) and ``abcdefghabcdefgh`` (10^2) do not.

Credentials a provider issues for our *outgoing* calls (an API key we send) are checked
by the provider, not here; this is for secrets that check what comes *in*.

Why zxcvbn rather than rules of our own (so many classes of character, so many distinct
ones): rules reject good random tokens (hex has one class) and pass patterned ones
(``Aa1!Aa1!Aa1!Aa1!``); zxcvbn estimates what an attacker's guesser would actually try.
Imported only when a secret is checked (40 ms), each check about 2 ms.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, SecretStr

MIN_LENGTH = 16
#: 10^13 guesses: years for an offline attacker at ten thousand guesses a second, far
#: beyond an online one (failed attempts are slowed down per address). 10^12 let keyboard
#: walks such as ``qwertyuiopasdfghjklzxcvbnm123456`` through (zxcvbn: exactly 10^12).
MIN_GUESSES_LOG10 = 13.0


#: Words of a value copied from documentation rather than made: zxcvbn rates
#: ``replace-me-with-a-secret`` at 10^15, as it would any four words, but it is the first
#: guess of anyone who read the same page.
PLACEHOLDER = re.compile(
    r"replace|example|placeholder|change.?me|your[-_ .]|todo|fixme|xxxx|^loa_", re.IGNORECASE
)


class WeakSecret(ValueError):
    """A guarding secret too short or too easy to guess (the message says which)."""


def check_strength(secret: str) -> None:
    """Refuse a secret that is too short or too guessable.

    Raises:
        WeakSecret: with the reason, never the secret itself.
    """
    if len(secret) < MIN_LENGTH:
        raise WeakSecret(
            f"too short: at least {MIN_LENGTH} characters (have {len(secret)}); "
            "make one with `openssl rand -hex 24`"
        )
    if PLACEHOLDER.search(secret):
        raise WeakSecret(
            "looks like a placeholder (replace…, example, your-…, changeme, a LOA_ name): "
            "make one with `openssl rand -hex 24`"
        )
    from zxcvbn import zxcvbn

    # zxcvbn refuses more than 72 characters; a longer secret is at least as strong as
    # its first 72.
    guesses = zxcvbn(secret[:72])["guesses_log10"]
    if guesses < MIN_GUESSES_LOG10:
        raise WeakSecret(
            f"too easy to guess (about 10^{guesses:.0f} guesses; at least "
            f"10^{MIN_GUESSES_LOG10:.0f}): make one with `openssl rand -hex 24`"
        )


def _strong(value: SecretStr) -> SecretStr:
    check_strength(value.get_secret_value())
    return value


#: A ``SecretStr`` field that must be strong (see ``check_strength``).
GuardingSecret = Annotated[SecretStr, AfterValidator(_strong)]
