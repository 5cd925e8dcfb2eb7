"""Recording a launched campaign: the campaign row, one message row per recipient and one
reject row per unusable list row, all in one transaction, so that a list that turns out
bad halfway (a broken line, a decoding error) leaves nothing behind."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import islice

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from campaigns.plan import PlannedMessage, Planner, RejectedRow
from campaigns.spec import CampaignSpec
from campaigns.status import Status
from ledger.schema import campaigns, events, messages, now, rejects

#: Rows per INSERT round trip while recording a list.
CHUNK = 2000


@dataclass(frozen=True, slots=True)
class Intake:
    """What recording a campaign did. ``created`` is false when the campaign already
    existed, in which case nothing was added."""

    campaign_id: str
    created: bool
    batches: int


def campaign_exists(engine: Engine, campaign_id: str) -> bool:
    with engine.connect() as conn:
        found = conn.execute(sa.select(campaigns.c.id).where(campaigns.c.id == campaign_id))
        return found.first() is not None


def record_campaign(
    engine: Engine,
    spec: CampaignSpec,
    list_name: str,
    planner: Planner,
    decisions: Iterable[PlannedMessage | RejectedRow],
    batch_size: int,
) -> Intake:
    """Write a campaign and its planned messages to the ledger.

    Parameters:
        planner: the planner producing ``decisions``; its summary, complete once the
            decisions are consumed, is stored as the campaign's intake counts.
        decisions: planned messages and rejections, streamed.
        batch_size: messages per batch; batch numbers start at 1.

    Returns:
        The intake; ``created`` is false, and nothing is written, when a campaign with
        this id is already in the ledger (launching twice adds nothing).

    Raises:
        Whatever reading the list raises; the transaction is then rolled back whole.
    """
    started = now()
    with engine.begin() as conn:
        exists = conn.execute(sa.select(campaigns.c.id).where(campaigns.c.id == spec.id)).first()
        if exists:
            return Intake(spec.id, created=False, batches=0)
        conn.execute(
            campaigns.insert().values(
                id=spec.id,
                name=spec.name,
                category=spec.category.value,
                brandname=spec.brandname,
                provider=spec.provider,
                spec=spec.model_dump(mode="json"),
                list_name=list_name,
                intake={},
                state="running",
                batches=0,
                created_at=started,
                valid_until=started + spec.validity,
            )
        )
        planned = 0
        stream = iter(decisions)
        while chunk := list(islice(stream, CHUNK)):
            rows, rejected = [], []
            for decision in chunk:
                if isinstance(decision, RejectedRow):
                    rejected.append(
                        {
                            "campaign_id": spec.id,
                            "list_row": decision.row,
                            "reason": decision.reason,
                        }
                    )
                    continue
                rows.append(
                    {
                        "campaign_id": spec.id,
                        "recipient": decision.phone.e164,
                        "country": decision.phone.country,
                        "carrier": decision.phone.carrier,
                        "list_row": decision.row,
                        "language": decision.language,
                        "encoding": decision.encoding.value,
                        "parts": decision.parts,
                        "batch": planned // batch_size + 1,
                        "status": Status.QUEUED.value,
                        "attempts": 0,
                        "provider": spec.provider,
                        "created_at": started,
                        "updated_at": started,
                    }
                )
                planned += 1
            if rows:
                conn.execute(messages.insert(), rows)
            if rejected:
                conn.execute(rejects.insert(), rejected)
        batches = (planned + batch_size - 1) // batch_size
        summary = planner.summary.as_dict()
        conn.execute(
            campaigns.update()
            .where(campaigns.c.id == spec.id)
            .values(intake=summary, batches=batches)
        )
        conn.execute(
            events.insert().values(
                campaign_id=spec.id,
                at=now(),
                source="planner",
                to_status=Status.QUEUED.value,
                detail={"list": list_name, **summary},
            )
        )
    return Intake(spec.id, created=True, batches=batches)
