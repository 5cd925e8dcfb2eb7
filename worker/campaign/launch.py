"""Launching a campaign: check the inputs, record the plan in the ledger, enqueue batches.

Everything that can be wrong with the inputs (the campaign file, the provider, the list's
header and encoding, template fields) is checked before the ledger is touched, and the
list itself is recorded in one transaction, so bad input never leaves half a campaign.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from campaigns.spec import CampaignSpec
from ledger.intake import record_campaign
from ledger.summary import load_campaign
from worker.campaign.pipeline import Chunk, planned_chunks
from worker.campaign.planning import ListOptions, Prepared, prepare
from worker.logging import get_logger
from worker.queues.jobs import enqueue_batch
from worker.runtime import Runtime
from worker.upkeep.recovery import batches_without_job

log = get_logger("loa.launch")


@dataclass(frozen=True)
class Launched:
    campaign_id: str
    created: bool
    batches_enqueued: int
    prepared: Prepared
    #: A relaunch whose list is not the one recorded (another file, or other rows):
    #: nothing of it was added.
    list_differs: bool = False
    #: A relaunch with another campaign file: the fields that differ from the recorded
    #: one (text, brandname …); none of it was applied.
    spec_differs: tuple[str, ...] = ()

    @property
    def refused(self) -> bool:
        """A relaunch with another list or campaign file: nothing done (exit 2)."""
        return self.list_differs or bool(self.spec_differs)


def _counting(chunks: Iterable[Chunk], tick: Callable[[int], None]) -> Iterator[Chunk]:
    for chunk in chunks:
        tick(len(chunk[0]) + len(chunk[1]))
        yield chunk


def _lost_batches(runtime: Runtime, campaign_id: str, refused: bool) -> list[tuple[int, str]]:
    """What a relaunch puts back: the running campaign's batches still holding queued
    messages that have no job in Redis (claims would make a second job harmless, but it
    is work for nothing). None when the relaunch is refused (another list or campaign
    file: exit 2, a refused command changes nothing) or the campaign is not running
    (paused, cancelled, scheduled: resume and the scheduler enqueue theirs)."""
    if refused or load_campaign(runtime.engine, campaign_id).state != "running":
        return []
    return batches_without_job(runtime, campaign_id)


def file_sha256(path: Path) -> str:
    """A file's SHA-256, hex (a relaunch's list told apart from the recorded one; the
    API's launches of the same files made one job)."""
    import hashlib

    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _pseudonymiser(
    runtime: Runtime, spec: CampaignSpec
) -> tuple[Callable[[str], str] | None, str | None]:
    """For a campaign serving a goal, each number's keyed HMAC under the retention key
    (what the numbers that acted are kept as), so that its goal section matches them with
    a join, and the key's fingerprint; ``(None, None)`` without a goal or a key (the
    section then HMACs at each report)."""
    key = runtime.settings.retention_key
    if spec.goal is None or key is None:
        return None, None
    from ledger.retention import fingerprint, pseudonymiser

    secret = key.get_secret_value()
    return pseudonymiser(secret), fingerprint(secret)


def launch(
    runtime: Runtime,
    spec: CampaignSpec | Path,
    recipients: Path,
    options: ListOptions | None = None,
    *,
    rejects: Path | None = None,
    progress: Callable[[int], None] | None = None,
    parallel: bool | None = None,
    start_at: datetime | None = None,
    follows: dict[str, Any] | None = None,
) -> Launched:
    """Record a campaign and its list, then enqueue its batches.

    Launching a campaign that is already in the ledger adds nothing; if it is running,
    its batches that still hold ``queued`` messages and have no job in Redis are enqueued
    again. With another list (``Launched.list_differs``) nothing is enqueued.
    ``parallel`` plans in a second process (default: for lists of 4 MB and more).
    ``start_at``: recorded now, sent from then (``scheduled`` until ``loa scheduler``
    starts it). ``follows``: a follow-up's first campaign and why its recipients were
    chosen (``ledger.goals.followup``), kept with the intake.

    Raises:
        SpecError, ListError, PlanError, ProviderConfigError: bad input, nothing written.
        LedgerError: the ledger is unreachable or behind.
    """
    prepared = prepare(runtime, spec, recipients, options or ListOptions())
    spec = prepared.spec
    chunks, summary = planned_chunks(prepared, rejects, parallel=parallel)
    if progress is not None:
        chunks = _counting(chunks, progress)
    digest = file_sha256(recipients)
    pseudonym_of, pseudonym_key = _pseudonymiser(runtime, spec)
    intake = record_campaign(
        runtime.engine,
        spec,
        recipients.name,
        prepared.recipients.columns,
        summary,
        chunks,
        runtime.settings.batch_size,
        start_at,
        digest,
        follows,
        pseudonym_of=pseudonym_of,
        pseudonym_key=pseudonym_key,
    )
    differs, changed = False, ()
    if not intake.created:  # read the list anyway (nothing is written) to compare it
        for _ in chunks:
            pass
        recorded, fresh = load_campaign(runtime.engine, spec.id), summary()
        # Its name and its rows (not the recipients: a suppression added since changes
        # those, and the same list is still the same list).
        differs = (recorded.list_name, recorded.intake.get("rows_read")) != (
            recipients.name,
            fresh.rows_read,
        ) or recorded.intake.get("list_sha256") not in (None, digest)  # (before it was kept)
        changed = tuple(
            name for name in type(spec).model_fields
            if getattr(recorded.spec, name) != getattr(spec, name)
        )  # fmt: skip
    prepared.planner.summary = summary()  # the child's, when planned in a child
    refused = differs or bool(changed)
    batches = list(intake.batches) if intake.created else _lost_batches(runtime, spec.id, refused)
    if load_campaign(runtime.engine, spec.id).state == "scheduled":
        batches = []  # `loa scheduler` enqueues them when the time comes
    for batch, provider in batches:
        enqueue_batch(provider, spec.id, batch)
    log.info(
        "campaign.launched" if intake.created else "campaign.relaunched",
        campaign_id=spec.id,
        batches=len(batches),
    )
    return Launched(spec.id, intake.created, len(batches), prepared, differs, changed)
