"""The chain's contract with auditors, pinned by hand-written vectors: the canonical
encoding of one event byte for byte, its link, and the chain's time in UTC whatever the
machine's zone (a Loa server in Hà Nội runs at +07:00). These bytes are what
``verify_export.py`` recomputes without Loa: they must not drift between versions."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from ledger.chain import GENESIS, canonical, event_fields, link, stamp

HANOI = timezone(timedelta(hours=7))


@pytest.fixture
def machine_in_hanoi(monkeypatch):
    """The process's local zone set to Asia/Ho_Chi_Minh, as on a server in Vietnam."""
    monkeypatch.setenv("TZ", "Asia/Ho_Chi_Minh")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def event(**changes):
    """An event row as the ledger reads it back (an aware time, ``detail`` as a dict)."""
    row = {
        "id": 7,
        "campaign_id": "bluezone-2026",
        "message_id": 42,
        "at": datetime(2026, 3, 1, 9, 30, 15, 5, tzinfo=HANOI),
        "source": "worker",
        "from_status": "queued",
        "to_status": "sending",
        "code": "tạm dừng",
        "detail": {"parts": 2, "b": None, "a": "ồ"},
    }
    return SimpleNamespace(**{**row, **changes})


def test_the_chain_writes_times_in_utc_with_microseconds_and_z(machine_in_hanoi):
    assert stamp(datetime(2026, 3, 1, 9, 30, 15, 5, tzinfo=HANOI)) == "2026-03-01T02:30:15.000005Z"
    # Past midnight in Hà Nội is still the day before in UTC.
    assert stamp(datetime(2026, 1, 1, 6, 59, 59, tzinfo=HANOI)) == "2025-12-31T23:59:59.000000Z"
    assert stamp(datetime(2026, 1, 1, tzinfo=UTC)) == "2026-01-01T00:00:00.000000Z"


def test_an_event_is_covered_by_exactly_the_documented_fields(machine_in_hanoi):
    assert event_fields(event(extra="not covered")) == {
        "id": 7,
        "campaign_id": "bluezone-2026",
        "message_id": 42,
        "at": "2026-03-01T02:30:15.000005Z",
        "source": "worker",
        "from_status": "queued",
        "to_status": "sending",
        "code": "tạm dừng",
        "detail": {"parts": 2, "b": None, "a": "ồ"},
    }


# Written out by hand from the module's documentation: keys sorted (in ``detail`` too), no
# whitespace, non-ASCII as itself in UTF-8, absent values as null.
CANONICAL = (
    '{"at":"2026-03-01T02:30:15.000005Z","campaign_id":"bluezone-2026","code":"tạm dừng",'
    '"detail":{"a":"ồ","b":null,"parts":2},"from_status":"queued","id":7,"message_id":42,'
    '"source":"worker","to_status":"sending"}'
).encode()


def test_the_canonical_encoding_is_byte_for_byte_the_documented_one(machine_in_hanoi):
    assert canonical(event()) == CANONICAL
    bare = event(message_id=None, from_status=None, to_status=None, code=None, detail=None)
    assert canonical(bare) == (
        b'{"at":"2026-03-01T02:30:15.000005Z","campaign_id":"bluezone-2026","code":null,'
        b'"detail":null,"from_status":null,"id":7,"message_id":null,"source":"worker",'
        b'"to_status":null}'
    )


def test_a_link_hashes_the_previous_link_a_newline_and_the_event(machine_in_hanoi):
    first = hashlib.sha256(b"0" * 64 + b"\n" + CANONICAL).hexdigest()
    assert link(GENESIS, event()) == first
    second = hashlib.sha256(first.encode() + b"\n" + CANONICAL).hexdigest()
    assert link(first, event()) == second
    assert link(GENESIS, event(code="tạm dừng ")) != first  # one character more: another link
