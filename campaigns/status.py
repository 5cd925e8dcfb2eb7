"""The delivery status model shared by the ledger, the worker and every provider.

A message starts ``queued``. A worker claims it (``sending``) and hands it to a provider;
the answer makes it ``sent`` (accepted, provider id known), ``failed`` (refused for good),
``unknown`` (the provider may or may not have sent it) or ``queued`` again (refused before
processing, safe to retry). Receipts then move ``sent`` to ``delivered`` or
``undelivered``. ``expired`` is for a message whose validity passed before it could go.
``unreachable``: the channel has no way to this person (no Zalo account behind the
number); final for that channel's message, and the reason the next channel is sent.

A campaign with several channels (Zalo, then SMS) has one message per recipient per
channel; each after the first starts ``standby``: it is ``queued`` when the channel
before it could not reach the person (or did not deliver in time), and ``unneeded``
when it did (``ledger.channels.fallback``). A late delivery on the earlier channel also
makes a next message still ``queued`` ``unneeded``: never a second notification that can
still be spared.

Statuses only move forward; the one exception, ``sending -> queued``, is the worker
releasing a claim on a message the provider never processed. Final statuses never change,
except ``unknown``, which a late but real receipt may correct.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    EXPIRED = "expired"
    UNKNOWN = "unknown"
    CANCELLED = "cancelled"
    UNREACHABLE = "unreachable"
    STANDBY = "standby"
    UNNEEDED = "unneeded"


#: Every recipient ends in exactly one of these.
FINAL: frozenset[Status] = frozenset(
    {
        Status.DELIVERED,
        Status.UNDELIVERED,
        Status.FAILED,
        Status.EXPIRED,
        Status.UNKNOWN,
        Status.CANCELLED,
        Status.UNREACHABLE,
        Status.UNNEEDED,
    }
)

_REAL_FINAL = frozenset({Status.DELIVERED, Status.UNDELIVERED, Status.FAILED, Status.EXPIRED})


#: The allowed moves, written out so that a reader can check each one.
_MOVES: dict[Status, frozenset[Status]] = {
    # An operator's cancel ends only what was not handed to a worker yet.
    Status.QUEUED: frozenset(
        {Status.SENDING, Status.EXPIRED, Status.FAILED, Status.CANCELLED, Status.UNNEEDED}
    ),
    # A receipt can overtake the send call's answer, so `sending` may jump straight to a
    # receipt's status; `queued` is the release of a claim the provider never processed,
    # and `cancelled` the same release when its campaign was cancelled meanwhile (a claim
    # given back after the cancel must not wait in `queued` for good).
    # (`unneeded`: a later channel's message claimed again after the channel before
    # reached the person, spared before it goes.)
    Status.SENDING: frozenset({Status.QUEUED, Status.SENT} | FINAL),
    # (Not `unreachable`: a channel says so when asked to send, never afterwards.)
    Status.SENT: FINAL - {Status.CANCELLED, Status.UNREACHABLE, Status.UNNEEDED},
    # A correction: the provider did send it after all, and said how it ended.
    Status.UNKNOWN: _REAL_FINAL,
    Status.DELIVERED: frozenset(),
    Status.UNDELIVERED: frozenset(),
    Status.FAILED: frozenset(),
    Status.EXPIRED: frozenset(),
    Status.CANCELLED: frozenset(),
    Status.UNREACHABLE: frozenset(),
    # A later channel's message: sent when the channel before could not reach the person,
    # spared when it did; cancelled or expired with its campaign like any waiting one.
    Status.STANDBY: frozenset({Status.QUEUED, Status.UNNEEDED, Status.CANCELLED, Status.EXPIRED}),
    Status.UNNEEDED: frozenset(),
}


def can_move(old: Status, new: Status) -> bool:
    """Whether a message in status ``old`` may move to ``new``."""
    return new in _MOVES[old]


def sources_of(new: Status) -> tuple[Status, ...]:
    """The statuses from which ``new`` may be reached, for a conditional UPDATE's WHERE."""
    return tuple(old for old, targets in _MOVES.items() if new in targets)
