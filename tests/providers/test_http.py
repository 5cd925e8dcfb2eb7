"""The classifier every HTTP provider shares."""

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from providers import ErrorKind
from providers.http import classify_status, parse_retry_after


@pytest.mark.parametrize(
    ("status", "kind", "provider_wide"),
    [
        (500, ErrorKind.RETRYABLE, True),
        (503, ErrorKind.RETRYABLE, True),
        (429, ErrorKind.RETRYABLE, True),
        (401, ErrorKind.HALT, False),
        (403, ErrorKind.HALT, False),
        (400, ErrorKind.PERMANENT, False),
        (404, ErrorKind.PERMANENT, False),
    ],
)
def test_status_codes(status, kind, provider_wide):
    error = classify_status(status)
    assert (error.kind, error.code, error.provider_wide) == (kind, f"http_{status}", provider_wide)


def test_retry_after_in_both_forms():
    assert parse_retry_after("7") == 7
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    assert 115 < parse_retry_after(later) <= 120
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None
    assert classify_status(429, "3").retry_after == 3


def test_a_hostile_retry_after_is_bounded():
    far = format_datetime(datetime.now(UTC) + timedelta(days=3650), usegmt=True)
    assert parse_retry_after(far) == parse_retry_after("1e12") == 3600  # not ten years
    assert parse_retry_after("inf") == 3600
    assert parse_retry_after("-5") == 0 and parse_retry_after("nan") is None
    assert parse_retry_after("Mon, 99 Foo 2026") is None
