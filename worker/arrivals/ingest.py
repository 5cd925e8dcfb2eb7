"""Ingesting arrival events: parse and decide (``campaigns.arrivals``), settle repeats
and recent welcomes in the ledger (``ledger.arrivals``), add the welcomes to the month's
arrivals campaign, and enqueue their batches for when they are due.

Events are taken a chunk at a time, each chunk in one transaction: a chunk is either
wholly recorded (its event ids taken, its visitors marked, its welcomes queued) or not at
all, so an ingest that fails halfway can simply be run again, and the ids already taken
make the replay welcome nobody twice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import Any

import redis
import sqlalchemy

from campaigns.arrivals import Arrival, ArrivalRejected, ArrivalsConfig, Skipped, Welcome
from campaigns.hours import VIETNAM
from campaigns.plan import PlannedMessage, Planner
from campaigns.recipients import ListRow
from ledger.arrivals import COLUMNS, add_welcomes, arrivals_campaign, take_events, welcome_once
from ledger.schema import now as ledger_now
from ledger.suppressions import load
from worker.campaign.planning import routes
from worker.logging import get_logger
from worker.queues.jobs import enqueue_batch
from worker.runtime import Runtime

log = get_logger("loa.arrivals")

#: Events per transaction.
CHUNK = 2_000
#: What "the ledger or Redis is away" raises: nothing of the chunk was kept, so the
#: caller tries again later (a POST answered 503, a file left in the inbox).
UNAVAILABLE = (
    OSError,
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)


@dataclass
class Ingested:
    """What an ingest did. ``rejects``: (where, reason, field, detail) of each bad event;
    ``batches``: (campaign, batch, provider, due) of each batch enqueued."""

    read: int = 0
    welcomed: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    rejects: list[tuple[Any, str, str, str]] = field(default_factory=list)
    batches: list[tuple[str, int, str, datetime]] = field(default_factory=list)
    #: Batches recorded but not enqueued (the queue away): the housekeeper enqueues them.
    unqueued: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "welcomed": self.welcomed,
            "rejected": sum(self.rejected.values()),
            "rejected_by_reason": dict(self.rejected),
            "skipped": sum(self.skipped.values()),
            "skipped_by_reason": dict(self.skipped),
            "campaigns": sorted({c for c, _, _, _ in self.batches}),
            "batches": len(self.batches),
            "batches_not_queued": self.unqueued,
        }


class Ingest:
    """Arrivals into welcomes, for one rules file, in this process.

    Raises (on creation):
        ProviderConfigError: the rules file's provider (or a route) is not configured.
    """

    def __init__(self, runtime: Runtime, config: ArrivalsConfig, clock: Any = None) -> None:
        self.runtime, self.config = runtime, config
        self.clock = clock or ledger_now
        self.router = routes(runtime, config.spec)
        lists = load(runtime.engine, {"residents", *config.spec.suppression_lists})
        self.residents = lists.pop("residents")
        self.suppressed = lists
        self._planners: dict[str, Planner] = {}

    def run(self, records: Iterable[tuple[Any, Mapping[str, Any] | ArrivalRejected]]) -> Ingested:
        """Ingest ``(where, event)`` pairs (``where``: a row number or an index, for the
        rejects) and enqueue the welcomes' batches."""
        result = Ingested()
        for chunk in _chunks(iter(records), CHUNK):
            made = self._chunk(chunk, result)
            for campaign_id, batch, provider, due in made:
                delay = (due - self.clock()).total_seconds()
                # Due now: on the queue itself (any delay, even 0, goes by dramatiq's
                # delay queue and waits for a worker's next look at it).
                try:
                    enqueue_batch(
                        provider,
                        campaign_id,
                        batch,
                        delay_ms=int(delay * 1000) if delay > 0 else None,
                    )
                except Exception as exc:
                    # The chunk is committed: its welcomes wait in the ledger, and the
                    # housekeeper enqueues a batch with no job again (``recovery``).
                    # Failing here would tell the caller "nothing was taken" when its
                    # events were, and the retry would welcome nobody.
                    log.warning("arrivals.enqueue_failed", batch=batch, error=type(exc).__name__)
                    result.unqueued += 1
            result.batches += made
        log.info(
            "arrivals.ingested", **{k: v for k, v in result.as_dict().items() if k != "campaigns"}
        )
        return result

    def _chunk(
        self, chunk: list[tuple[Any, Mapping[str, Any]]], result: Ingested
    ) -> list[tuple[str, int, str, datetime]]:
        moment = self.clock()
        config = self.config
        # Planners for this chunk only: a planner remembers every number it saw (to drop
        # a list's duplicates), which for arrivals the ledger does; kept for a whole
        # ingest, a million visitors' numbers would stay in memory.
        self._planners.clear()
        arrivals: list[Arrival] = []
        counts: dict[str, Counter[str]] = {}  # per campaign: intake counts

        def count(campaign_id: str, name: str, reason: str | None = None) -> None:
            tally = counts.setdefault(campaign_id, Counter())
            tally[name] += 1
            if reason:
                tally[f"{name}_by_reason:{reason}"] += 1

        for where, record in chunk:
            result.read += 1
            fields = record if isinstance(record, Mapping) else {}
            try:
                if isinstance(record, ArrivalRejected):  # unreadable as a row of its file
                    raise record
                arrivals.append(config.parse(fields, moment))
            except ArrivalRejected as exc:
                result.rejected[exc.reason.value] += 1
                result.rejects.append((where, exc.reason.value, exc.field, str(exc)))
                month = config.campaign_of_reject(fields, moment)
                count(month, "rows_read")
                count(month, "rejected", exc.reason.value)
        with self.runtime.engine.begin() as conn:
            fresh = take_events(conn, [a.event_id for a in arrivals])
            due: dict[str, tuple[Arrival, Welcome]] = {}  # by number: the first one wins
            for arrival in arrivals:
                campaign_id = config.campaign_id(arrival.arrived_at)
                count(campaign_id, "rows_read")
                if arrival.event_id not in fresh:
                    self._skip(result, count, campaign_id, Skipped.REPEATED_EVENT)
                    continue
                fresh.discard(arrival.event_id)  # the same id twice in one chunk: once
                resident = arrival.phone.e164 in self.residents
                decision = config.decide(arrival, resident, moment)
                if isinstance(decision, Skipped):
                    self._skip(result, count, campaign_id, decision)
                elif arrival.phone.e164 in due:
                    self._skip(result, count, campaign_id, Skipped.ALREADY_WELCOMED)
                else:
                    due[arrival.phone.e164] = (arrival, decision)
            winners = welcome_once(conn, list(due), config.rules.once_per, moment)
            groups: dict[str, dict[datetime, list[tuple[PlannedMessage, datetime]]]] = {}
            for number, (arrival, welcome) in due.items():
                campaign_id = config.campaign_id(arrival.arrived_at)
                if number not in winners:
                    self._skip(result, count, campaign_id, Skipped.ALREADY_WELCOMED)
                    continue
                area = config.rules.areas[arrival.area]
                row = ListRow(result.read, number, (welcome.language, area))
                (planned,) = self._planner(campaign_id).plan([row])
                if not isinstance(planned, PlannedMessage):  # opted out, no route
                    self._skip(result, count, campaign_id, planned.reason)
                    continue
                due_group = groups.setdefault(campaign_id, {}).setdefault(welcome.send_at, [])
                due_group.append((planned, welcome.valid_until))
                count(campaign_id, "welcomed")
                result.welcomed += 1
            made = []
            for campaign_id in sorted(counts):
                spec = self._spec(campaign_id)
                key = arrivals_campaign(conn, spec, _month_end(campaign_id) + spec.validity)
                by_due = sorted(groups.get(campaign_id, {}).items())
                made += [
                    (campaign_id, batch, provider, due)
                    for batch, provider, due in add_welcomes(
                        conn,
                        key,
                        campaign_id,
                        by_due,
                        self.runtime.settings.batch_size,
                        _intake(counts[campaign_id]),
                    )
                ]
        return made

    @staticmethod
    def _skip(result: Ingested, count: Any, campaign_id: str, reason: str) -> None:
        result.skipped[str(reason)] += 1
        count(campaign_id, "skipped", str(reason))

    def _spec(self, campaign_id: str) -> Any:
        month = campaign_id[-7:]
        return self.config.spec.model_copy(
            update={"id": campaign_id, "name": f"{self.config.spec.name} — {month[5:]}/{month[:4]}"}
        )

    def _planner(self, campaign_id: str) -> Planner:
        if campaign_id not in self._planners:
            self._planners[campaign_id] = Planner(
                self._spec(campaign_id), COLUMNS, suppressed=self.suppressed, router=self.router
            )
        return self._planners[campaign_id]


def _intake(tally: Counter[str]) -> dict[str, Any]:
    """Counts as a campaign's intake holds them (the report reads these names)."""
    out: dict[str, Any] = {}
    for name, value in tally.items():
        if ":" in name:
            group, reason = name.split(":", 1)
            out.setdefault(group, {})[reason] = value
        else:
            out[name] = value
    skipped = out.get("skipped_by_reason", {})
    # The report's words: repeats and recent welcomes are duplicates, residents suppressed.
    out["duplicates"] = skipped.get("repeated_event", 0) + skipped.get("already_welcomed", 0)
    out["suppressed_by_list"] = {
        k: v for k, v in skipped.items() if k in ("resident", "opt_out", "dnc")
    }
    out["suppressed"] = sum(out["suppressed_by_list"].values())
    return out


def _month_end(campaign_id: str) -> datetime:
    """The end of the month an arrivals campaign (``…-YYYY-MM``) covers, in Vietnam."""
    year, month = int(campaign_id[-7:-3]), int(campaign_id[-2:])
    return datetime(year + month // 12, month % 12 + 1, 1, tzinfo=VIETNAM)


def _chunks(items: Iterator[Any], size: int) -> Iterator[list[Any]]:
    while chunk := list(islice(items, size)):
        yield chunk
