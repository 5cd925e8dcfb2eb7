"""What a campaign waits for and how long it has left, with what only a running Loa knows:
the ledger's side (``ledger.waiting``) plus each provider's cooldown and rate, read
through the objects the workers themselves use (``Runtime.cooldown``; the rate the
worker's bucket is given, ``Runtime.bucket``), so that ``loa campaign status`` and the
workers cannot disagree.

Where a cooldown lives: with Redis, in one hash per provider instance that every worker
reads (``worker.sending.cooldown.RedisCooldown``), so any process can tell how long is left.
Embedded (no Redis), it is in the memory of the process that sends (``LocalCooldown``):
another process cannot see it and says so (``cooldown_seconds`` ``None``); the sending
process itself (``loa campaign launch``, ``resume``) can (``cooldowns_here``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from ledger.channels.outcomes import ChannelOutcomes
from ledger.schema import now
from ledger.summary import CampaignSummary
from ledger.tally import tally
from ledger.waiting import (
    Estimate,
    ProviderView,
    decide,
    estimate,
    facts,
    vietnam_time,
)
from worker.runtime import Runtime


@dataclass(frozen=True)
class Standing:
    """A campaign's summary with what it waits for, each provider's share and an
    estimate of the time left.

    Attributes:
        summary: the summary, its ``waiting_for`` filled in.
        providers: per provider instance of the campaign, what it holds and its limits.
        counts: per provider, recipients per status (every status, zeros included).
        estimate: the time left (``ledger.waiting.Estimate``).
        rate_per_second: messages handed over a second, over the last minute, or since
            the first was when that is shorter (measured: ``ledger.tally.Tally.rate``).
        cooldowns_visible: whether this process can see the providers' cooldowns.
        rate_seconds: the seconds ``rate_per_second`` was counted over.
        channels: for a campaign with several channels, who each reached, who fell back
            and why, the doubles and the money (``ledger.channels.outcomes``).
    """

    summary: CampaignSummary
    providers: dict[str, ProviderView]
    counts: dict[str, dict[str, int]]
    estimate: Estimate
    rate_per_second: float
    cooldowns_visible: bool
    rate_seconds: float = 60.0
    #: With several channels: the recipients across them (``ledger.channels.outcomes``).
    channels: ChannelOutcomes | None = None

    def as_dict(self) -> dict[str, Any]:
        """What ``loa campaign status --json`` adds to the summary: stable keys, times in
        ISO 8601 (Vietnam's), seconds as integers, rates as numbers (null: unknown)."""
        per_provider = self.estimate.per_provider or {}
        found: dict[str, Any] = {
            "rate_per_second": round(self.rate_per_second, 2),
            "rate_window_seconds": round(self.rate_seconds, 1),
            "eta_seconds": self.estimate.seconds,
            "finishes_at": vietnam_time(self.estimate.finishes_at),
            "resumes_at": vietnam_time(self.estimate.resumes_at),
            "finishes_after_validity": self.estimate.after_validity,
            "by_provider": self.counts,
            "providers": {
                name: {
                    "queued": view.queued,
                    "sending": view.sending,
                    "parts_left": view.parts,
                    "halted": None
                    if view.halted is None
                    else {"why": view.halted[0], "since": vietnam_time(view.halted[1])},
                    "cooldown_seconds": None
                    if view.cooldown_seconds is None
                    else round(view.cooldown_seconds, 1),
                    "rate_per_second": None if view.rate is None else round(view.rate, 2),
                    "rate_unit": view.rate_unit,
                    "eta_seconds": per_provider.get(name),
                }
                for name, view in sorted(self.providers.items())
            },
        }
        if self.cooldowns_visible:
            # After 5xx or 429 every worker pauses the provider: the longest such pause
            # among the campaign's providers (kept from before ``providers``).
            found["provider_cooldown_seconds"] = round(
                max((v.cooldown_seconds or 0.0 for v in self.providers.values()), default=0.0), 1
            )
        return found


def _limits(runtime: Runtime, name: str) -> tuple[float | None, str, timedelta]:
    """``(rate, unit, receipt window)`` of provider instance ``name`` as the worker uses
    them: the agreed rate (a sender's own, the same for every sender, when lower) less
    ``LOA_RATE_HEADROOM``, as the bucket is given it; no rate for an instance no longer
    configured, or unusable."""
    from providers import ProviderConfigError, validate_config

    raw = runtime.settings.providers.get(name)
    if raw is None:
        return None, "messages", timedelta(hours=72)
    try:
        _, config = validate_config(name, raw.model_dump())
    except ProviderConfigError:
        return None, "messages", timedelta(hours=72)
    agreed = [r for r in (config.rate_per_second, config.sender_rate_per_second) if r]
    rate = min(agreed) * (1 - runtime.settings.rate_headroom) if agreed else None
    return rate, config.rate_unit, timedelta(hours=config.receipt_window_hours)


def _cooldown(runtime: Runtime, name: str, visible: bool) -> float | None:
    """Seconds left in ``name``'s cooldown; ``None`` when it cannot be seen from here (or
    Redis does not answer: the status still shows the rest)."""
    if not visible:
        return None
    try:
        return runtime.cooldown(name).left()
    except Exception as exc:
        import redis

        if isinstance(exc, redis.RedisError):
            return None
        raise


def explain(
    runtime: Runtime,
    summary: CampaignSummary,
    *,
    cooldowns_here: bool = False,
    moment: datetime | None = None,
) -> Standing:
    """What ``summary``'s campaign waits for and how long it has left, at ``moment``
    (default: now). ``cooldowns_here``: this process is the one that sends (embedded), so
    its in-memory cooldowns are the real ones."""
    moment = moment or now()
    campaign = summary.campaign
    engine = runtime.engine
    visible = runtime.settings.redis_url is not None or cooldowns_here
    # The summary's one pass over the messages, or a fresh one (``ledger.tally``).
    counted = summary.tally if summary.tally is not None else tally(engine, campaign.id)
    counts = counted.by_provider()
    left = counted.remaining()
    from ledger.halts import halts_since

    halts = halts_since(engine)
    views: dict[str, ProviderView] = {}
    for name in sorted(counts.keys() | left.keys()):
        queued, sending, parts = left.get(name, (0, 0, 0))
        rate, unit, window = _limits(runtime, name)
        views[name] = ProviderView(
            name,
            queued=queued,
            sending=sending,
            parts=parts,
            halted=halts.get(name),
            cooldown_seconds=_cooldown(runtime, name, visible) if queued + sending else 0.0,
            rate=rate,
            rate_unit=unit,
            receipt_window=window,
        )
    progress = facts(engine, campaign.id, campaign.state, counted.last_sent())
    waiting = decide(campaign, summary.statuses, views, moment, progress)
    measured, counted_over = counted.rate()
    statuses = [s.value for s in summary.statuses]
    full_counts = {
        name: {status: found.get(status, 0) for status in statuses}
        for name, found in sorted(counts.items())
    }
    channels = None
    if campaign.spec.channels is not None:
        from ledger.channels.outcomes import outcomes

        channels = outcomes(engine, campaign.id, campaign.spec, campaign.intake.get("cost"))
    return Standing(
        replace(summary, waiting_for=waiting),
        views,
        full_counts,
        estimate(campaign, views, waiting, moment, measured),
        measured,
        visible,
        counted_over,
        channels,
    )


def explained(
    runtime: Runtime, summary: CampaignSummary, *, cooldowns_here: bool = False
) -> CampaignSummary:
    """``summary`` with what it waits for (``explain``)."""
    return explain(runtime, summary, cooldowns_here=cooldowns_here).summary
