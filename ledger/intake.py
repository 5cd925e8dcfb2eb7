"""Recording a launched campaign: the campaign row, one message row per recipient and one
reject row per unusable list row, all in one transaction, so that a list that turns out
bad halfway (a broken line, a decoding error) leaves nothing behind.

Messages are grouped in batches, the unit of work a worker claims. A batch holds the
messages of one provider only (its job goes on that provider's queue), so a campaign
routed to several providers fills one open batch per provider as the list streams by.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from campaigns.channels import TemplateChannel
from campaigns.plan import PlanSummary
from campaigns.spec import CampaignSpec
from campaigns.status import Status
from ledger.audit.rows import rows_digest, spec_digest
from ledger.bulk import insert_rows, refresh_statistics
from ledger.schema import campaigns, events, messages, now, recipient_pseudonyms, rejects

MESSAGE_COLUMNS = (
    "campaign_key", "recipient", "country", "carrier", "list_row", "language", "encoding",
    "parts", "batch", "status", "provider", "fields",
)  # fmt: skip
#: A campaign with several channels: one message per recipient per channel.
CHANNEL_COLUMNS = (*MESSAGE_COLUMNS, "channel", "fallback")
REJECT_COLUMNS = ("campaign_key", "list_row", "reason")
PSEUDONYM_COLUMNS = ("campaign_key", "list_row", "who")


@dataclass(frozen=True, slots=True)
class Intake:
    """What recording a campaign did. ``created`` is false when the campaign already
    existed, in which case nothing was added. ``batches``: (batch, provider) pairs."""

    campaign_id: str
    created: bool
    batches: tuple[tuple[int, str], ...] = ()


class _Batcher:
    """Batch numbers for a stream of messages, one open batch per provider; numbers
    start at 1 and are unique in the campaign."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.made: list[tuple[int, str]] = []
        self._open: dict[str, list[int]] = {}  # provider -> [batch, messages in it]

    def next(self, provider: str) -> int:
        slot = self._open.get(provider)
        if slot is None or slot[1] == self.size:
            self.made.append((len(self.made) + 1, provider))
            slot = self._open[provider] = [len(self.made), 0]
        slot[1] += 1
        return slot[0]


class _Channels:
    """The message rows of a campaign with several channels (``campaigns.channels``): per
    planned recipient, one per channel, in order. The first is ``queued``, each other
    ``standby`` until the one before decides it (``ledger.channels.fallback``); each but
    the last has its fallback undecided (0). A template channel's message goes through its
    own provider as one message (parts 1); the text channel's is the planned SMS."""

    def __init__(self, spec: CampaignSpec, key: int, batch_of: Callable[[str], int]) -> None:
        self.key, self.batch_of = key, batch_of
        self.channels = spec.channel_list
        self.several = spec.channels is not None

    def rows(self, planned: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
        out, last = [], len(self.channels) - 1
        for row, e164, country, carrier, routed, language, encoding, parts, fields in planned:
            for index, channel in enumerate(self.channels):
                template = isinstance(channel, TemplateChannel)
                provider = channel.provider if template else routed
                out.append(
                    (
                        self.key, e164, country, carrier, row, language, encoding,
                        1 if template else parts, self.batch_of(provider),
                        (Status.QUEUED if index == 0 else Status.STANDBY).value, provider,
                        fields, index, 0 if index < last else None,
                    )
                )  # fmt: skip
        return out


def launched_by() -> str | None:
    """Who launches (``ledger.audit.actions.actor``), kept with the intake counts so that
    a report can say it, and in the launch's event."""
    from ledger.audit.actions import actor

    return actor()


def record_campaign(
    engine: Engine,
    spec: CampaignSpec,
    list_name: str,
    list_columns: list[str],
    summary: Callable[[], PlanSummary],
    chunks: Iterable[tuple[Sequence[Sequence[Any]], Sequence[Sequence[Any]]]],
    batch_size: int,
    start_at: datetime | None = None,
    list_digest: str | None = None,
    follows: dict[str, Any] | None = None,
    pseudonym_of: Callable[[str], str] | None = None,
    pseudonym_key: str | None = None,
) -> Intake:
    """Write a campaign and its planned messages to the ledger.

    Parameters:
        pseudonym_of: for a campaign serving a goal, each number's keyed HMAC
            (``ledger.retention.pseudonymiser``), written beside its list row
            (``recipient_pseudonyms``) for the goal section to match with a join;
            ``pseudonym_key``: its key's fingerprint, kept with the intake counts.
        follows: a follow-up's first campaign and the recipients chosen by reason
            (``ledger.goals.followup``), kept with the intake counts.
        list_digest: the list file's SHA-256, kept with the intake counts: a relaunch
            with another file of the same name and rows is told from the same one.
        list_columns: the list's columns other than the phone (keys of messages.fields).
        summary: called once the chunks are consumed; stored as the intake counts.
        chunks: (planned rows, rejected cells) lists, streamed, as
            ``campaigns.stream.plan_chunks`` makes them.
        batch_size: messages per batch (per provider; a batch never mixes providers).
        start_at: when to start sending (``--at``): the campaign is ``scheduled`` until
            then, and its validity runs from then.

    Returns:
        The intake, with the batches made; ``created`` is false, and nothing is written,
        when a campaign with this id is already in the ledger (launching twice adds
        nothing).

    Raises:
        Whatever reading the list raises; the transaction is then rolled back whole.
    """
    started = now()
    campaign_id, queued = spec.id, Status.QUEUED.value
    try:
        with engine.begin() as conn:
            exists = conn.execute(
                sa.select(campaigns.c.id).where(campaigns.c.id == campaign_id)
            ).first()
            if exists:
                return Intake(campaign_id, created=False)
            launched = {
                "name": spec.name,
                "category": spec.category.value,
                "brandname": spec.brandname,
                "provider": spec.provider,
                "spec": spec.model_dump(mode="json"),
                "list_name": list_name,
            }
            key = conn.execute(
                campaigns.insert().values(
                    id=campaign_id,
                    **launched,
                    list_columns=list_columns,
                    intake={},
                    state="running" if start_at is None else "scheduled",
                    state_reason=None if start_at is None else f"starts at {start_at.isoformat()}",
                    batches=0,
                    created_at=started,
                    valid_until=max(started, start_at or started) + spec.validity,
                    start_at=start_at,
                )
            ).inserted_primary_key[0]
            batcher = _Batcher(batch_size)
            batch_of = batcher.next
            channels = _Channels(spec, key, batch_of)
            for planned_chunk, rejected_chunk in chunks:
                if channels.several:
                    insert_rows(conn, messages, CHANNEL_COLUMNS, channels.rows(planned_chunk))
                else:
                    rows = [
                        (
                            key, e164, country, carrier, row, language, encoding, parts,
                            batch_of(provider), queued, provider, fields,
                        )
                        for row, e164, country, carrier, provider, language, encoding, parts,
                        fields in planned_chunk
                    ]  # fmt: skip
                    insert_rows(conn, messages, MESSAGE_COLUMNS, rows)
                if pseudonym_of is not None:
                    insert_rows(
                        conn,
                        recipient_pseudonyms,
                        PSEUDONYM_COLUMNS,
                        [(key, planned[0], pseudonym_of(planned[1])) for planned in planned_chunk],
                    )
                insert_rows(
                    conn,
                    rejects,
                    REJECT_COLUMNS,
                    [(key, row, reason) for row, reason in rejected_chunk],
                )
            if pseudonym_of is not None:  # for the goal section's join, at once
                refresh_statistics(conn, messages, recipient_pseudonyms)
            counts = {**summary().as_dict(), "launched_by": launched_by()}
            if list_digest is not None:
                counts["list_sha256"] = list_digest
            if pseudonym_of is not None:
                counts["pseudonym_key"] = pseudonym_key
            if follows is not None:  # a follow-up: the campaign it follows, and why each
                counts["follows"] = follows
            conn.execute(
                campaigns.update()
                .where(campaigns.c.id == campaign_id)
                .values(intake=counts, batches=len(batcher.made))
            )
            conn.execute(
                events.insert().values(
                    campaign_id=campaign_id,
                    at=now(),
                    source="planner",
                    to_status=queued,
                    # Carriers and parts as planned, the spec as launched, bound to the
                    # log (ledger.audit.rows).
                    detail={
                        "list": list_name,
                        **counts,
                        # A message per recipient per channel (``campaigns.channels``).
                        **({"channels": len(spec.channel_list)} if channels.several else {}),
                        "rows_digest": rows_digest(conn, key),
                        "spec_digest": spec_digest(launched),
                    },
                )
            )
        return Intake(campaign_id, created=True, batches=tuple(batcher.made))
    except sa.exc.IntegrityError:
        # Two launches of one id at once: both found none, and the second's insert waited
        # on the first's and was refused by the unique id. The second added nothing, as
        # a relaunch adds nothing; any other refusal is not this one's to hide.
        with engine.connect() as conn:
            if conn.scalar(sa.select(campaigns.c.key).where(campaigns.c.id == spec.id)) is None:
                raise
        return Intake(spec.id, created=False)
