"""Who a follow-up campaign texts (issue #24): the recipients a campaign did not reach,
by why, and, where the numbers that acted were imported, those who have not acted.

A recipient's fate is its last channel's (a template channel's message unreachable,
then its SMS undelivered: ``undelivered``); reached is delivered by any channel. Still ``sent`` (no
receipt) counts as ``unknown``. A recipient whose number retention already replaced by
its HMAC cannot be texted again: counted (``retained``), never chosen.

The selection is read in one pass over the campaign's messages in the order of their
unique index (recipient, channel): a million recipients stream, never held whole.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from campaigns.limits import figure
from ledger.schema import key_of, messages, outcome_acts

#: What a follow-up may be sent to.
REASONS = ("undelivered", "failed", "unknown", "expired", "unreachable", "cancelled", "not-acted")
#: A last status, as the reason a recipient was not reached.
_NOT_REACHED = {"undelivered": "undelivered", "failed": "failed", "unknown": "unknown",
                "sent": "unknown", "expired": "expired", "unreachable": "unreachable",
                "cancelled": "cancelled"}  # fmt: skip


class FollowUpError(ValueError):
    """A follow-up that cannot be chosen as asked (an unknown reason, ``not-acted``
    without a goal or the retention key)."""


@dataclass
class Chosen:
    """The follow-up's recipients so far: why each was chosen, and who could not be."""

    by_reason: Counter[str] = field(default_factory=Counter)
    retained: int = 0
    reached: int = 0  # reached and not chosen
    left_out: int = 0  # every recipient not chosen (the reached among them), retained too

    def as_dict(self) -> dict[str, Any]:
        return {"by_reason": dict(self.by_reason), "retained": self.retained,
                "reached_left_out": self.reached, "left_out": self.left_out}  # fmt: skip


def parse_reasons(text: str) -> tuple[str, ...]:
    """``undelivered,failed`` → its reasons. Raises: FollowUpError naming a wrong one."""
    wanted = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    wrong = [reason for reason in wanted if reason not in REASONS]
    if wrong or not wanted:
        raise FollowUpError(
            f"--to {text!r}: {', '.join(map(repr, wrong)) or 'nothing'} is no reason; choose among "
            f"{', '.join(REASONS)}"
        )
    return wanted


def choose(
    engine: Engine,
    campaign: Any,
    reasons: tuple[str, ...],
    key: str | None,
    chosen: Chosen,
) -> Iterator[tuple[str, list[Any], str]]:
    """``(number, its list cells, why)`` for each recipient to text again, counting in
    ``chosen`` as it goes.

    Raises:
        FollowUpError: the campaign has messages not yet final; ``not-acted`` for a
            campaign without a goal, or without ``key``.
    """
    from campaigns.status import FINAL
    from ledger.summary import status_counts

    # Chosen from final statuses only: a recipient still sending, or whose receipt is
    # awaited, may yet be reached, and a follow-up now would text them twice.
    pending = sum(n for status, n in status_counts(engine, campaign.id).items()
                  if status not in FINAL)  # fmt: skip
    if pending:
        raise FollowUpError(
            f"campaign {campaign.id} is not over: {figure(pending)} of its messages are still "
            "being sent or await their receipts (a follow-up now could text them twice). "
            f"Wait until `loa campaign status {campaign.id}` says completed, or cancel it."
        )
    acted: set[str] | None = None
    hashed_by: Callable[[str], str] | None = None
    if "not-acted" in reasons:
        if campaign.spec.goal is None:
            raise FollowUpError(f"--to not-acted: campaign {campaign.id} serves no goal")
        if key is None:
            raise FollowUpError("--to not-acted: LOA_RETENTION_KEY is not set (the numbers "
                                "that acted are kept as their keyed HMAC)")  # fmt: skip
        from ledger.retention import fingerprint
        from ledger.schema import goal_keys

        with engine.connect() as conn:
            kept_under = conn.scalar(sa.select(goal_keys.c.fingerprint).where(
                goal_keys.c.goal == campaign.spec.goal.name))  # fmt: skip
        if kept_under is not None and kept_under != fingerprint(key):
            raise FollowUpError(
                "--to not-acted: the numbers that acted were kept under another "
                f"LOA_RETENTION_KEY (fingerprint {kept_under}); with this one nobody would "
                "match them and everyone would be chosen. Use the key they were kept under."
            )
        with engine.connect() as conn:
            acted = set(conn.scalars(
                sa.select(outcome_acts.c.who).where(outcome_acts.c.goal == campaign.spec.goal.name)
            ))  # fmt: skip
        from ledger.retention import pseudonymiser

        hashed_by = pseudonymiser(key)
    query = (
        sa.select(messages.c.recipient, messages.c.channel, messages.c.status, messages.c.fields)
        .where(messages.c.campaign_key == key_of(campaign.id))
        .order_by(messages.c.recipient, messages.c.channel)
    )
    with engine.connect() as conn:
        rows = conn.execution_options(yield_per=10_000).execute(query)
        current, statuses, cells = None, [], None
        for recipient, channel, status, fields in rows:
            if recipient != current:
                if current is not None:
                    yield from _decide(current, statuses, cells, reasons, acted, hashed_by, chosen)
                current, statuses, cells = recipient, [], None
            statuses.append(status)
            if channel == 0 or cells is None:
                cells = fields
        if current is not None:
            yield from _decide(current, statuses, cells, reasons, acted, hashed_by, chosen)


def _decide(
    recipient: str,
    statuses: list[str],
    cells: Any,
    reasons: tuple[str, ...],
    acted: set[str] | None,
    hashed_by: Callable[[str], str] | None,
    chosen: Chosen,
) -> Iterator[tuple[str, list[Any], str]]:
    from ledger.retention import PREFIX

    reached = "delivered" in statuses
    why = None
    if not reached:
        why = _NOT_REACHED.get(statuses[-1])
        if why not in reasons:
            why = None
    if why is None and acted is not None and hashed_by is not None:
        hashed = recipient if recipient.startswith(PREFIX) else hashed_by(recipient)
        if hashed not in acted:
            why = "not-acted"
    if why is None:
        chosen.reached += reached
        chosen.left_out += 1
        return
    if recipient.startswith(PREFIX):  # retention replaced the number: it cannot be texted
        chosen.retained += 1
        chosen.left_out += 1
        return
    chosen.by_reason[why] += 1
    yield recipient, list(cells or []), why


def follow_ups(engine: Engine, campaign_id: str, key: str | None = None) -> dict[str, Any] | None:
    """A campaign's follow-ups (``loa campaign follow-up``), a follow-up's own follow-ups
    too, and the reach of all of them together: each follow-up's recipients and those it
    reached, and the first campaign's recipients reached by it or by any follow-up, each
    once. ``None`` without any.

    A number retention replaced is its keyed HMAC: with ``key`` (the retention key) the
    others are HMACed too, so that one person counts once across campaigns; without it,
    once some number is replaced, ``reached_together`` is ``None`` (unknown, not twice).
    """
    from ledger.retention import PREFIX, pseudonymiser
    from ledger.schema import campaigns

    with engine.connect() as conn:
        rows = conn.execute(sa.select(campaigns.c.id, campaigns.c.key, campaigns.c.intake,
                                      campaigns.c.created_at)).all()  # fmt: skip
        follows = {row.id: ((row.intake or {}).get("follows") or {}).get("campaign")
                   for row in rows}  # fmt: skip
        chain, found = {campaign_id}, []
        for row in sorted(rows, key=lambda r: (r.created_at, r.key)):  # launched in order
            if follows[row.id] in chain:
                chain.add(row.id)
                found.append((row.id, row.key, follows[row.id]))
        if not found:
            return None
        first = conn.scalar(sa.select(campaigns.c.key).where(campaigns.c.id == campaign_id))
        keys = [first, *(key_ for _, key_, _ in found)]
        each = []
        for follow_id, key_, of in found:
            recipients, reached = conn.execute(
                sa.select(
                    sa.func.count(sa.distinct(messages.c.recipient)),
                    sa.func.count(sa.distinct(sa.case(
                        (messages.c.status == "delivered", messages.c.recipient)))),
                ).where(messages.c.campaign_key == key_)
            ).one()  # fmt: skip
            each.append({"campaign": follow_id, "follows": of, "recipients": int(recipients),
                         "reached": int(reached)})  # fmt: skip
        reached = sa.and_(messages.c.campaign_key.in_(keys), messages.c.status == "delivered")
        retained = conn.scalar(
            sa.select(sa.exists().where(reached, messages.c.recipient.startswith(PREFIX)))
        )
        together: int | None = None
        if not retained:
            together = conn.scalar(
                sa.select(sa.func.count(sa.distinct(messages.c.recipient))).where(reached)
            )
        elif key is not None:  # one person once: every number as its keyed HMAC
            hashed = pseudonymiser(key)
            numbers = conn.execution_options(yield_per=10_000).scalars(
                sa.select(messages.c.recipient).where(reached)
            )
            together = len({n if n.startswith(PREFIX) else hashed(n) for n in numbers})
        recipients = conn.scalar(
            sa.select(sa.func.count(sa.distinct(messages.c.recipient))).where(
                messages.c.campaign_key == first
            )
        )
    return {"follow_ups": each, "recipients": int(recipients or 0),
            "reached_together": together}  # fmt: skip
