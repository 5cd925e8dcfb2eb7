"""Launching a campaign: check the inputs, record the plan in the ledger, enqueue batches.

Everything that can be wrong with the inputs (the campaign file, the provider, the list's
header) is checked before the ledger is touched, and the list itself is recorded in one
transaction, so bad input never leaves half a campaign behind.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

from campaigns.plan import Planner
from campaigns.recipients import ListRow, read_list
from campaigns.spec import CampaignSpec, load_spec
from ledger.intake import record_campaign
from ledger.summary import queued_batches
from worker.dispatch import enqueue_batch
from worker.logging import get_logger
from worker.runtime import Runtime

log = get_logger("loa.launch")


@dataclass(frozen=True)
class Launched:
    campaign_id: str
    created: bool
    batches_enqueued: int


def _counting(
    rows: Iterator[ListRow], every: int, tick: Callable[[int], None]
) -> Iterator[ListRow]:
    for count, row in enumerate(rows, start=1):
        if count % every == 0:
            tick(every)
        yield row


def launch(
    runtime: Runtime,
    spec: CampaignSpec | Path,
    recipients: Path,
    *,
    phone_column: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> Launched:
    """Record a campaign and its list, then enqueue its batches.

    Launching a campaign that is already in the ledger adds nothing; its batches that
    still hold ``queued`` messages are enqueued again (harmless: claims make it so).

    Raises:
        SpecError, ListError: bad campaign file or list, nothing written.
        ProviderConfigError: the campaign names a provider that is not configured.
        LedgerError: the ledger is unreachable or behind.
    """
    if isinstance(spec, Path):
        spec = load_spec(spec)
    runtime.provider(spec.provider)  # unknown or misconfigured provider: fail now
    rows = read_list(recipients, phone_column)
    first = next(rows, None)  # header problems surface here, before the ledger is touched
    stream: Iterator[ListRow] = chain([first], rows) if first is not None else iter(())
    if progress is not None:
        stream = _counting(stream, 500, progress)
    runtime.ensure_schema()
    planner = Planner(spec)
    intake = record_campaign(
        runtime.engine,
        spec,
        recipients.name,
        planner,
        planner.plan(stream),
        runtime.settings.batch_size,
    )
    batches = (
        range(1, intake.batches + 1) if intake.created else queued_batches(runtime.engine, spec.id)
    )
    for batch in batches:
        enqueue_batch(spec.provider, spec.id, batch)
    log.info(
        "campaign.launched" if intake.created else "campaign.relaunched",
        campaign_id=spec.id,
        batches=len(batches),
    )
    return Launched(spec.id, intake.created, len(batches))
