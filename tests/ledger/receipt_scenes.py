"""Scenes for the receipt inbox tests: sent messages, receipts as the webhook makes them
(``Inbound`` with its digest), and the ledger's clock held still (``Clock``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from campaigns.recipients import ListRow
from campaigns.spec import CampaignSpec, load_spec
from campaigns.status import Status
from ledger.handover import record_sent
from ledger.messages import claim_batch
from ledger.receipts import Inbound, digest
from ledger.schema import messages, receipts
from tests.helpers import record

SPEC = load_spec(Path(__file__).resolve().parents[2] / "examples" / "bluezone.toml")
#: When the receipts of a scene arrive (whole seconds: both ledgers keep them exactly).
T0 = datetime(2024, 3, 8, 9, 30, tzinfo=UTC)


class Clock:
    """The ledger's clock for ``ledger.receipts`` (``now``), moved by hand."""

    def __init__(self, at: datetime = T0) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, by: timedelta) -> None:
        self.at += by


def spec_for(provider: str, campaign_id: str = SPEC.id) -> CampaignSpec:
    return CampaignSpec.model_validate(
        {**SPEC.model_dump(mode="json"), "id": campaign_id, "provider": provider}
    )


def claimed(engine, count: int, spec: CampaignSpec = SPEC, first: int = 0) -> list[int]:
    """``count`` messages of a new campaign, claimed by a worker (``sending``)."""
    rows = [ListRow(i + 2, f"09123{first + i:05d}", ()) for i in range(count)]
    record(engine, spec, rows, batch_size=count)
    return [m.id for m in claim_batch(engine, spec.id, 1)]


def sent(engine, ids: list[str], spec: CampaignSpec = SPEC, first: int = 0) -> dict[str, int]:
    """Messages the provider accepted under ``ids``: provider id -> message id."""
    message_ids = claimed(engine, len(ids), spec, first)
    record_sent(engine, spec.id, list(zip(message_ids, ids, strict=True)))
    return dict(zip(ids, message_ids, strict=True))


def receipt(
    provider_id: str,
    status: Status | None,
    *,
    provider: str = SPEC.provider,
    code: str | None = None,
    network: str | None = None,
    raw: str | None = None,
    seq: int = 0,
) -> Inbound:
    """A parsed receipt as the webhook builds it; ``seq`` tells apart two receipts that
    say the same thing (a provider's retried callback is the same receipt)."""
    raw = raw if raw is not None else (status.value if status else "?")
    fields = {"id": provider_id, "status": raw, "code": code or "", "seq": str(seq)}
    return Inbound(provider, provider_id, status, raw, code, network, digest(provider, fields))


def inbox(engine) -> list[tuple[str, str, datetime | None]]:
    """Each stored receipt in the order received: provider id, state, when looked at."""
    query = sa.select(
        receipts.c.provider_message_id, receipts.c.state, receipts.c.applied_at
    ).order_by(receipts.c.id)
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(query)]


def statuses(engine) -> dict[int, str]:
    with engine.connect() as conn:
        return dict(conn.execute(sa.select(messages.c.id, messages.c.status)).all())


def spoil(engine, provider_id: str) -> None:
    """Give a stored receipt a status no rule knows, as a row an older version wrote."""
    with engine.begin() as conn:
        conn.execute(
            receipts.update()
            .where(receipts.c.provider_message_id == provider_id)
            .values(status="teleported")
        )
