"""``loa campaign status --watch``: look again every interval until every recipient is
final; on a terminal the status is redrawn in place, elsewhere (a pipe, a log, cron) one
plain line a look, then the whole status (``--json``: one JSON document a look)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from scripts import formats as fmt
from scripts.campaign_status import HANDED, Reading, handed, render
from scripts.output import out

if TYPE_CHECKING:
    from worker.campaign.waiting import Standing


def interval_rates(
    before: Mapping[str, int], after: Mapping[str, int], seconds: float
) -> dict[str, float]:
    """Messages a second per provider between two readings of ``handed`` taken
    ``seconds`` apart (never below zero: a claim given back lowers the count). Zero for
    every provider when no time passed."""
    if seconds <= 0:
        return dict.fromkeys(after, 0.0)
    return {name: max(0, n - before.get(name, 0)) / seconds for name, n in after.items()}


def follow(
    read: Callable[[], Standing],
    show: Callable[[Reading], None],
    interval: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    wait: Callable[[float], None] = time.sleep,
) -> Reading:
    """Read the campaign, show it, wait ``interval`` seconds, again, until every
    recipient is final; returns the last reading. Ctrl-C (KeyboardInterrupt) goes
    through to the caller."""
    last: Reading | None = None
    while True:
        standing = read()
        at = clock()
        reading = Reading(standing, at)
        if last is not None:
            seconds = at - last.at
            rates = interval_rates(handed(last.standing.counts), handed(standing.counts), seconds)
            reading = Reading(standing, at, rates, seconds)
        show(reading)
        if standing.summary.done:
            return reading
        last = reading
        wait(interval)


def watch_live(read: Callable[[], Standing], interval: float, title: str, headroom: float) -> None:
    """Redraw the status in place on a terminal."""
    from rich.live import Live

    with Live(console=out.console, auto_refresh=False, transient=False) as live:
        follow(
            read,
            lambda r: live.update(render(r, title, compact=True, headroom=headroom), refresh=True),
            interval,
        )


def watch_lines(read: Callable[[], Standing], interval: float, title: str, headroom: float) -> None:
    """Not on a terminal (a pipe, a log, cron): one plain line per look, as it comes,
    then the whole status once every recipient is final."""
    last = follow(
        read,
        lambda r: out.print(look_line(r, _now()), markup=False, soft_wrap=True, highlight=False),
        interval,
    )
    out.print(render(last, title, headroom=headroom))


def look_line(reading: Reading, now: datetime) -> str:
    """One look as a line of plain text, for a log: the time (Vietnam's), the campaign,
    its state, what was handed to the providers out of its recipients, its recipients per
    status, the rate (over the last interval, or as measured) and the time left."""
    from campaigns.hours import VIETNAM
    from scripts.output import LABELS

    standing = reading.standing
    summary = standing.summary
    state = summary.progress_state
    given = sum(handed(standing.counts).values())
    parts = [
        f"{now.astimezone(VIETNAM):%H:%M:%S} {summary.campaign.id}: {fmt.STATES.get(state, state)}",
        f"{HANDED} {fmt.count(given)}/{fmt.count(summary.recipients)}",
        *(f"{LABELS[s.value]} {fmt.count(n)}" for s, n in summary.statuses.items() if n),
    ]
    if reading.rates is not None:
        parts.append(f"tốc độ · rate {fmt.rate(sum(reading.rates.values()))}")
    else:
        parts.append(f"tốc độ · rate {fmt.rate(standing.rate_per_second)}")
    if not summary.done and standing.estimate.seconds is not None:
        parts.append(f"còn lại · left ~{fmt.duration(standing.estimate.seconds)}")
    return "; ".join(parts)


def _now() -> datetime:
    from datetime import UTC

    return datetime.now(UTC)
