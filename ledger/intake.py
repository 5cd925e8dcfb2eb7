"""Recording a launched campaign: the campaign row, one message row per recipient and one
reject row per unusable list row, all in one transaction, so that a list that turns out
bad halfway (a broken line, a decoding error) leaves nothing behind."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from campaigns.plan import PlanSummary
from campaigns.spec import CampaignSpec
from campaigns.status import Status
from ledger.bulk import insert_rows
from ledger.schema import campaigns, events, messages, now, rejects

MESSAGE_COLUMNS = (
    "campaign_key", "recipient", "country", "carrier", "list_row", "language", "encoding",
    "parts", "batch", "status", "provider", "fields",
)  # fmt: skip
REJECT_COLUMNS = ("campaign_key", "list_row", "reason")


@dataclass(frozen=True, slots=True)
class Intake:
    """What recording a campaign did. ``created`` is false when the campaign already
    existed, in which case nothing was added."""

    campaign_id: str
    created: bool
    batches: int


def record_campaign(
    engine: Engine,
    spec: CampaignSpec,
    list_name: str,
    list_columns: list[str],
    summary: Callable[[], PlanSummary],
    chunks: Iterable[tuple[Sequence[Sequence[Any]], Sequence[Sequence[Any]]]],
    batch_size: int,
) -> Intake:
    """Write a campaign and its planned messages to the ledger.

    Parameters:
        list_columns: the list's columns other than the phone (keys of messages.fields).
        summary: called once the chunks are consumed; stored as the intake counts.
        chunks: (planned rows, rejected cells) lists, streamed, as
            ``campaigns.stream.plan_chunks`` makes them.
        batch_size: messages per batch; batch numbers start at 1.

    Returns:
        The intake; ``created`` is false, and nothing is written, when a campaign with
        this id is already in the ledger (launching twice adds nothing).

    Raises:
        Whatever reading the list raises; the transaction is then rolled back whole.
    """
    started = now()
    campaign_id, provider, queued = spec.id, spec.provider, Status.QUEUED.value
    with engine.begin() as conn:
        exists = conn.execute(
            sa.select(campaigns.c.id).where(campaigns.c.id == campaign_id)
        ).first()
        if exists:
            return Intake(campaign_id, created=False, batches=0)
        key = conn.execute(
            campaigns.insert().values(
                id=campaign_id,
                name=spec.name,
                category=spec.category.value,
                brandname=spec.brandname,
                provider=provider,
                spec=spec.model_dump(mode="json"),
                list_name=list_name,
                list_columns=list_columns,
                intake={},
                state="running",
                batches=0,
                created_at=started,
                valid_until=started + spec.validity,
            )
        ).inserted_primary_key[0]
        planned = 0
        for planned_chunk, rejected_chunk in chunks:
            rows = []
            for row, e164, country, carrier, language, encoding, parts, fields in planned_chunk:
                rows.append(
                    (
                        key, e164, country, carrier, row, language, encoding, parts,
                        planned // batch_size + 1, queued, provider, fields,
                    )
                )  # fmt: skip
                planned += 1
            insert_rows(conn, messages, MESSAGE_COLUMNS, rows)
            insert_rows(
                conn,
                rejects,
                REJECT_COLUMNS,
                [(key, row, reason) for row, reason in rejected_chunk],
            )
        batches = (planned + batch_size - 1) // batch_size
        counts = summary().as_dict()
        conn.execute(
            campaigns.update()
            .where(campaigns.c.id == campaign_id)
            .values(intake=counts, batches=batches)
        )
        conn.execute(
            events.insert().values(
                campaign_id=campaign_id,
                at=now(),
                source="planner",
                to_status=queued,
                detail={"list": list_name, **counts},
            )
        )
    return Intake(campaign_id, created=True, batches=batches)
