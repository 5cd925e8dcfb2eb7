"""``loa campaign status``: where a campaign stands, what it waits for and how long it has
left (``worker.campaign.waiting``); ``--watch`` follows it live, a progress bar and a rate per
provider, until every recipient is final (exit 0) or Ctrl-C (exit 130)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import typer

from scripts import formats as fmt
from scripts.common import settings
from scripts.output import errors_as_exit_codes, out, print_json, print_json_line, summary_table

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.table import Table

    from ledger.waiting import ProviderView
    from worker.campaign.waiting import Standing

#: The exit code of a watch stopped with Ctrl-C (128 + SIGINT, as shells report it).
INTERRUPTED = 130

#: A provider's state while the whole campaign waits, by ``WaitingFor.reason``.
_HELD = {
    "scheduled": "chưa bắt đầu · not started",
    "paused": "tạm dừng · paused",
    "sending_hours": "ngoài giờ · off hours",
    "validity": "hết hiệu lực · validity over",
}

#: Statuses of a message the provider took (or refused): what a send rate counts.
_HANDED = ("sent", "delivered", "undelivered", "failed", "unknown")


def handed(counts: Mapping[str, Mapping[str, int]]) -> dict[str, int]:
    """Per provider, the messages handed to it (not those still ``queued`` or
    ``sending``, nor those that ended without it: expired, cancelled)."""
    return {
        name: sum(n for status, n in found.items() if status in _HANDED)
        for name, found in counts.items()
    }


def settled(counts: Mapping[str, Mapping[str, int]]) -> dict[str, int]:
    """Per provider, the messages no longer waiting to go (handed, expired, cancelled):
    what its progress bar shows."""
    return {
        name: sum(n for status, n in found.items() if status not in ("queued", "sending"))
        for name, found in counts.items()
    }


def interval_rates(
    before: Mapping[str, int], after: Mapping[str, int], seconds: float
) -> dict[str, float]:
    """Messages a second per provider between two readings of ``handed`` taken
    ``seconds`` apart (never below zero: a claim given back lowers the count). Zero for
    every provider when no time passed."""
    if seconds <= 0:
        return dict.fromkeys(after, 0.0)
    return {name: max(0, n - before.get(name, 0)) / seconds for name, n in after.items()}


@dataclass(frozen=True)
class Reading:
    """One look at the campaign: its standing, when it was taken (``time.monotonic``),
    and the rates since the look before (``None`` for the first)."""

    standing: Standing
    at: float
    rates: dict[str, float] | None = None
    seconds: float | None = None  # since the look before

    def as_dict(self) -> dict[str, Any]:
        """The status's JSON: the summary, its standing and, when watching, the rate
        over the last interval (null on the first line)."""
        standing = self.standing
        found = {**standing.summary.as_dict(), **standing.as_dict()}
        found["interval_rate_per_second"] = (
            None if self.rates is None else round(sum(self.rates.values()), 2)
        )
        found["interval_rates"] = (
            None if self.rates is None else {k: round(v, 2) for k, v in self.rates.items()}
        )
        return found


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


def status(campaign_id: str, watch: bool, interval: float, as_json: bool) -> None:
    """The ``loa campaign status`` command (see ``scripts.campaign.status``)."""
    from ledger.summary import summarise
    from worker.campaign.waiting import explain
    from worker.runtime import Runtime

    loaded = settings()
    title = f"Chiến dịch {campaign_id}"
    try:
        with errors_as_exit_codes():
            runtime = Runtime(loaded)
            try:
                runtime.ensure_schema()

                def read() -> Standing:
                    return explain(runtime, summarise(runtime.engine, campaign_id))

                if not watch:
                    reading = Reading(read(), time.monotonic())
                    if as_json:
                        print_json(reading.as_dict())
                    else:
                        out.print(render(reading, title))
                elif as_json:
                    follow(read, lambda r: print_json_line(r.as_dict()), interval)
                else:
                    _watch_live(read, interval, title)
            finally:
                runtime.close()
    except KeyboardInterrupt:
        raise typer.Exit(INTERRUPTED) from None


def _watch_live(read: Callable[[], Standing], interval: float, title: str) -> None:
    """Redraw the status in place on a terminal (elsewhere: the last one, at the end)."""
    from rich.live import Live

    console = getattr(out, "console", out)  # the rich Console behind ``out``
    try:
        with Live(console=console, auto_refresh=False, transient=False) as live:
            follow(
                read, lambda r: live.update(render(r, title, compact=True), refresh=True), interval
            )
    finally:
        if not console.is_terminal:  # Live ends its last picture without a newline there
            console.line()


def render(reading: Reading, title: str, compact: bool = False) -> RenderableType:
    """The status as people read it: the counts (``compact``, for a screen redrawn in
    place: the recipients per status on one line, without the intake), a line per
    provider with its progress bar, then the state, what it waits for, the rate and the
    time left."""
    from rich.console import Group
    from rich.text import Text

    standing = reading.standing
    summary = standing.summary
    counts: RenderableType = summary_table(summary, title)
    if compact:
        from scripts.output import LABELS

        shown = [
            f"{LABELS[status.value]} {fmt.count(n)}" for status, n in summary.statuses.items() if n
        ]
        counts = Text.from_markup(
            f"[bold]{_escape(title)}[/]: {LABELS['recipients']} {fmt.count(summary.recipients)}"
            + "".join(f"; {item}" for item in shown)
        )
    parts: list[RenderableType] = [counts, _providers(reading)]
    state = summary.progress_state
    lines = [f"[bold]{fmt.EXTRAS['state']}:[/] {fmt.STATES.get(state, state)}"]
    if summary.state_reason and summary.waiting_for is None:
        lines.append(f"  vì · why: {_escape(summary.state_reason)}")
    waiting = summary.waiting_for
    lines += fmt.waiting_lines(None if waiting is None else waiting.as_dict(), _now())
    if not standing.cooldowns_visible and any(v.remaining for v in standing.providers.values()):
        lines.append(
            "[dim]Nghỉ của nhà cung cấp · provider cooldowns: chỉ tiến trình đang gửi biết "
            "(không có Redis) · known only to the sending process (no Redis)[/]"
        )
    lines.append(_rate_line(reading))
    lines.append(_time_left_line(standing))
    parts += [Text.from_markup(line) for line in lines]
    return Group(*parts)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _now() -> datetime:
    return datetime.now(UTC)


def _rate_line(reading: Reading) -> str:
    if reading.rates is not None and reading.seconds:
        seconds = fmt.decimal(reading.seconds)
        over = f"{seconds} giây qua · over the last {seconds} s"
        return f"[bold]Tốc độ · rate:[/] {fmt.rate(sum(reading.rates.values()))} ({over})"
    measured = reading.standing.rate_per_second
    return f"[bold]Tốc độ · rate:[/] {fmt.rate(measured)} (1 phút qua · over the last minute)"


def _time_left_line(standing: Standing) -> str:
    estimate, waiting = standing.estimate, standing.summary.waiting_for
    label = "[bold]Còn lại · time left:[/]"
    if standing.summary.done:
        return f"{label} 0 giây · all final"
    if estimate.resumes_at is not None:
        return f"{label} — (gửi tiếp lúc · resumes at {fmt.moment(estimate.resumes_at)})"
    if waiting is not None and waiting.reason == "paused":
        return f"{label} — (tạm dừng · paused)"
    if estimate.seconds is None:
        return f"{label} — (không ước tính được · cannot tell)"
    if estimate.seconds == 0:
        return f"{label} 0 giây · nothing left to send"
    line = f"{label} ~{fmt.duration(estimate.seconds)}"
    if estimate.finishes_at is not None:
        line += f", xong khoảng · done about {fmt.moment(estimate.finishes_at)}"
    line += " [dim](theo tốc độ thoả thuận · at the agreed rate)[/]"
    if estimate.after_validity:
        valid = fmt.moment(standing.summary.campaign.valid_until)
        line += (
            f"\n  [yellow]hiệu lực hết trước đó, lúc {valid}: phần còn lại sẽ hết hạn · "
            "the validity ends first: the rest would expire[/]"
        )
    return line


def _providers(reading: Reading) -> Table:
    """A line per provider: its progress bar (handed over / its recipients), the rate
    over the last interval (watching), its agreed rate, its time left and its state."""
    from rich.progress_bar import ProgressBar
    from rich.table import Table

    standing = reading.standing
    table = Table(title="Theo nhà cung cấp · by provider", title_justify="left")
    table.add_column("nhà cung cấp\nprovider")
    table.add_column("tiến độ\nprogress", min_width=12)
    table.add_column("đã gửi\nhanded", justify="right")
    if reading.rates is not None:
        table.add_column("tốc độ\nrate", justify="right")
    table.add_column("giới hạn\nagreed", justify="right")
    table.add_column("còn lại\nleft", justify="right")
    table.add_column("tình trạng\nstate")
    done = settled(standing.counts)
    per_provider = standing.estimate.per_provider or {}
    for name, counts in standing.counts.items():
        total = sum(counts.values())
        view = standing.providers[name]
        row: list[RenderableType] = [
            name,
            ProgressBar(total=max(total, 1), completed=done[name], width=16),
            f"{fmt.count(done[name])}/{fmt.count(total)}",
        ]
        if reading.rates is not None:
            row.append(fmt.rate(reading.rates.get(name, 0.0)))
        unit = "phần" if view.rate_unit == "parts" else "tin"
        row.append(fmt.rate(view.rate, unit) if view.rate is not None else "không · none")
        row.append(fmt.duration(per_provider.get(name)) if view.remaining else "0 giây")
        row.append(_provider_state(view, counts, standing))
        table.add_row(*row)
    return table


def _provider_state(view: ProviderView, counts: Mapping[str, int], standing: Standing) -> str:
    waiting = standing.summary.waiting_for
    if view.halted is not None:
        return "[red]bị dừng · halted[/]"
    if view.cooldown_seconds:
        return f"[yellow]nghỉ · cooling down {fmt.duration(view.cooldown_seconds)}[/]"
    if not view.remaining:
        return "chờ báo cáo · receipts" if counts.get("sent") else "[green]xong · done[/]"
    if waiting is not None and waiting.reason in _HELD:
        return f"[yellow]{_HELD[waiting.reason]}[/]"
    return "[green]đang gửi · sending[/]"
