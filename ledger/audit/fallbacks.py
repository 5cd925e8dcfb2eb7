"""A multi-channel campaign's fallback decisions held to the log (``ledger.channels.
fallback``): every move of a later channel's message by the fallback sweep must be one
the channel before justified, as the log had it then, and no decision may be marked made
while the later message still stands by.

- ``Justified`` follows, in log order, each message's status and when it was sent: an
  SMS queued ``fallback_unreachable`` needs its Zalo message ``unreachable`` before it;
  ``fallback_late``, its Zalo message sent (or unknown) at least the channel's
  ``deliver_within`` earlier; ``fallback_halted``, its Zalo message cancelled; an SMS made
  ``unneeded``, its Zalo message delivered (or itself spared). A made-up decision (an
  extra SMS, or one withheld so that nobody is reached) is named.
- ``marks``: a message whose decision is marked made (``fallback`` 1) while its next
  message still stands by was altered: that person would wait for ever.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from campaigns.spec import CampaignSpec
from campaigns.status import Status
from ledger.chain import Verdict
from ledger.schema import campaigns, messages

#: Decisions named one by one at most this many.
NAMED = 20
#: How much earlier than its window a late fallback may be logged (seconds): the
#: sweep's clock and the sent event's are read apart.
SLACK = 60
_m = messages.c


class Justified:
    """Per message, its earlier channel's message and that channel's window, loaded once
    (only for campaigns with several channels); ``check`` each event in log order."""

    def __init__(self, conn: Connection, verdict: Verdict) -> None:
        self.verdict, self.named = verdict, 0
        earlier = messages.alias("earlier")
        rows = conn.execute(
            sa.select(_m.id, earlier.c.id, _m.campaign_key, _m.channel)
            .join(
                earlier,
                sa.and_(
                    earlier.c.campaign_key == _m.campaign_key,
                    earlier.c.recipient == _m.recipient,
                    earlier.c.channel == _m.channel - 1,
                ),
            )
            .where(_m.channel > 0)
        ).all()
        self.before = {row[0]: row[1] for row in rows}
        windows: dict[tuple[int, int], timedelta | None] = {}
        keys = {row[2] for row in rows}
        if keys:
            for key, spec in conn.execute(
                sa.select(campaigns.c.key, campaigns.c.spec).where(campaigns.c.key.in_(keys))
            ):
                for index, channel in enumerate(CampaignSpec.model_validate(spec).channel_list):
                    windows[(key, index)] = getattr(channel, "deliver_within", None)
        self.window = {row[0]: windows.get((row[2], row[3] - 1)) for row in rows}
        self.sent: dict[int, datetime] = {}

    def check(self, row: Any, state: dict[int, str]) -> None:
        """One event: note when a message was sent; hold a fallback move to its cause."""
        if row.to_status in (Status.SENT.value, Status.UNKNOWN.value):
            self.sent.setdefault(row.message_id, row.at)
        if row.source != "fallback" or row.message_id not in self.before:
            return
        earlier = self.before[row.message_id]
        was = state.get(earlier, Status.QUEUED.value)
        why = self._why_not(row, earlier, was)
        if why is None:
            return
        self.named += 1
        if self.named <= NAMED:
            self.verdict.problems.append(
                f"event {row.id} of message {row.message_id} ({row.code}): {why}: made up"
            )
        elif self.named == NAMED + 1:
            self.verdict.problems.append("… and more fallback decisions nothing justified")

    def _why_not(self, row: Any, earlier: int, was: str) -> str | None:
        code = row.code or ""
        if row.to_status == Status.UNNEEDED.value:
            if was in (Status.DELIVERED.value, Status.UNNEEDED.value):
                return None
            return f"spared while the channel before left it {was}, not delivered"
        if row.to_status != Status.QUEUED.value:
            return None  # a halted channel's own cancellation: its provider's to say
        if code == "fallback_late":
            sent, window = self.sent.get(earlier), self.window.get(row.message_id)
            if was not in (Status.SENT.value, Status.UNKNOWN.value) or sent is None:
                return f"sent late while the channel before left it {was}, not sent"
            if window is not None and row.at < sent + window - timedelta(seconds=SLACK):
                return f"sent late {row.at - sent} after the channel before, within its {window}"
            return None
        wanted = "cancelled" if code == "fallback_halted" else code.removeprefix("fallback_")
        if was != wanted or not code.startswith("fallback_"):
            return f"sent as if the channel before were {wanted or '?'}; it was {was}"
        return None


def marks(conn: Connection, verdict: Verdict) -> None:
    """A decision marked made (``fallback`` 1) with the next message still standing by."""
    later = messages.alias("later")
    query = (
        sa.select(_m.id)
        .join(
            later,
            sa.and_(
                later.c.campaign_key == _m.campaign_key,
                later.c.recipient == _m.recipient,
                later.c.channel == _m.channel + 1,
            ),
        )
        .where(_m.fallback == 1, later.c.status == Status.STANDBY.value)
        .order_by(_m.id)
    )
    found = list(conn.scalars(query.limit(NAMED + 1)))
    for message_id in found[:NAMED]:
        verdict.problems.append(
            f"message {message_id}: its fallback is marked decided while its next channel's "
            "message still stands by: the row was altered (that person would wait for ever)"
        )
    if len(found) > NAMED:
        verdict.problems.append("… and more decisions marked made that were not")
