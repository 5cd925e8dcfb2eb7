"""``loa campaign status``: where a campaign stands, what it waits for and how long it has
left (``worker.campaign.waiting``); ``--watch`` follows it live, a progress bar and a rate per
provider, until every recipient is final (exit 0) or Ctrl-C (exit 130)
(``scripts.campaign_watch``)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import typer

from scripts import formats as fmt
from scripts.common import settings
from scripts.output import errors_as_exit_codes, out, print_json, print_json_line, summary_table

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.table import Table

    from ledger.channels.outcomes import ChannelOutcomes
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
_HANDED = ("sent", "delivered", "undelivered", "failed", "unknown", "unreachable")


def handed(counts: Mapping[str, Mapping[str, int]]) -> dict[str, int]:
    """Per provider, the messages handed to it (not those still ``queued`` or
    ``sending``, nor those that ended without it: expired, cancelled)."""
    return {
        name: sum(n for status, n in found.items() if status in _HANDED)
        for name, found in counts.items()
    }


def settled(counts: Mapping[str, Mapping[str, int]]) -> dict[str, int]:
    """Per provider, the messages no longer waiting to go (handed, expired, cancelled,
    spared): what its progress bar shows. A later channel's standing by still waits."""
    return {
        name: sum(
            n for status, n in found.items() if status not in ("queued", "sending", "standby")
        )
        for name, found in counts.items()
    }


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
        if standing.channels is not None:
            found["channels"] = standing.channels.as_dict()
        found["interval_rate_per_second"] = (
            None if self.rates is None else round(sum(self.rates.values()), 2)
        )
        found["interval_rates"] = (
            None if self.rates is None else {k: round(v, 2) for k, v in self.rates.items()}
        )
        return found


def status(campaign_id: str, watch: bool, interval: float, as_json: bool) -> None:
    """The ``loa campaign status`` command (see ``scripts.campaign.status``)."""
    from ledger.summary import summarise
    from scripts.campaign_watch import follow, watch_lines, watch_live
    from worker.campaign.waiting import explain
    from worker.runtime import Runtime

    loaded = settings()
    title = f"Chiến dịch {campaign_id}"
    headroom = loaded.rate_headroom
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
                        print_json(with_agreed(reading.as_dict(), headroom))
                    else:
                        out.print(render(reading, title, headroom=headroom))
                elif as_json:

                    def show(reading: Reading) -> None:
                        print_json_line(with_agreed(reading.as_dict(), headroom))

                    follow(read, show, interval)
                elif out.is_terminal:
                    watch_live(read, interval, title, headroom)
                else:
                    watch_lines(read, interval, title, headroom)
            finally:
                runtime.close()
    except KeyboardInterrupt:
        raise typer.Exit(INTERRUPTED) from None


def with_agreed(found: dict[str, Any], headroom: float) -> dict[str, Any]:
    """The status's JSON with, per provider, the agreed rate as configured
    (``agreed_rate_per_second``; ``rate_per_second`` is what Loa aims at, that less
    ``LOA_RATE_HEADROOM``) and the headroom itself (``rate_headroom``, a fraction)."""
    for view in found.get("providers", {}).values():
        aimed = view.get("rate_per_second")
        view["agreed_rate_per_second"] = None if aimed is None else round(aimed / (1 - headroom), 2)
    found["rate_headroom"] = headroom
    return found


#: What a provider was given (sent, then delivered or not, refused): not "đã gửi · sent",
#: the status of a message the provider took and has not reported on yet.
HANDED = "đã chuyển cho nhà cung cấp · handed"


def render(
    reading: Reading,
    title: str,
    compact: bool = False,
    headroom: float = 0.0,
    console: Console | None = None,
) -> RenderableType:
    """The status as people read it: the counts (``compact``, for a screen redrawn in
    place: the recipients per status on one line, without the intake), a line per
    provider with its progress bar (``_providers``; ``headroom``: ``LOA_RATE_HEADROOM``,
    to show the agreed rate as configured), then the state, what it waits for, the rate
    and the time left. The provider table fits ``console``'s width (default: ``out``'s),
    leaving out the progress bar, then the agreed and the measured rates, rather than
    cut a value (``scripts.tables.fit``)."""
    from rich.console import Group
    from rich.text import Text

    from scripts.tables import fit, left_out_note

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
    providers, left_out = fit(
        lambda hidden: _providers(reading, headroom, hidden), ("bar", "agreed", "rate"), console
    )
    parts: list[RenderableType] = [counts, providers]
    if standing.channels is not None and not compact:
        currency = summary.campaign.spec.prices.currency if summary.campaign.spec.prices else None
        parts.insert(1, channels_table(standing.channels, currency))
    note = left_out_note([_COLUMNS[key] for key in left_out])
    if note:
        parts.append(Text.from_markup(note))
    state = summary.progress_state
    lines = [f"[bold]{fmt.EXTRAS['state']}:[/] {fmt.STATES.get(state, state)}"]
    if summary.state_reason and summary.waiting_for is None:
        lines.append(f"  vì · why: {_escape(fmt.why_words(summary.state_reason))}")
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


#: Why a recipient's next channel went (``ledger.channels.outcomes``).
FELL_BACK = {
    "unreachable": "kênh trước không tới được · the channel before cannot reach them",
    "late": "chưa báo đến kịp lúc · not delivered in time",
    "failed": "kênh trước thất bại · the channel before failed",
    "undelivered": "kênh trước không đến máy · undelivered on the channel before",
    "expired": "kênh trước hết hạn · expired on the channel before",
    "halted": "kênh trước bị dừng (hết hạn mức …) · the channel before halted (quota …)",
}


def channels_table(found: ChannelOutcomes, currency: str | None) -> RenderableType:
    """A multi-channel campaign per recipient: reached by each channel, not reached (by
    the last status tried), who fell back and why, the doubles, and the money against
    SMS for everyone. Reached and not reached add up to the recipients."""
    from rich.table import Table

    from scripts.output import LABELS

    table = Table(title="Theo người nhận · per recipient, across channels", show_header=False,
                  title_justify="left")  # fmt: skip
    table.add_column("", style="bold")
    table.add_column("", justify="right")
    table.add_row(LABELS["recipients"], fmt.count(found.recipients))
    for name in found.channels:
        if found.reached.get(name):
            table.add_row(f"Đã đến qua · reached by {name}", fmt.count(found.reached[name]))
    for status, number in sorted(found.not_reached.items()):
        table.add_row(f"Chưa đến · not reached: {LABELS.get(status, status)}", fmt.count(number))
    table.add_section()
    for why, number in sorted(found.fell_back.items()):
        table.add_row(f"Chuyển sang kênh sau · fell back: {FELL_BACK.get(why, why)}",
                      fmt.count(number))  # fmt: skip
    table.add_row("Nhận hai lần (báo đến sau khi kênh sau đã gửi) · doubles (a late "
                  "delivery after the next went)", fmt.count(found.doubles))  # fmt: skip
    table.add_section()
    table.add_row("Chi phí đến nay · spent so far", fmt.money(found.spent, currency))
    table.add_row("SMS cho tất cả · SMS for everyone", fmt.money(found.sms_for_everyone, currency))
    table.add_row("Tiết kiệm · saved", fmt.money(found.saved, currency))
    for name in found.silent:
        table.add_row(
            f"[yellow]Chưa có báo đến nào từ kênh {name}: webhook có nhận được sự kiện không "
            f"(loa webhook đang chạy? khoá bí mật của kênh đúng chưa?) · no delivery reported on "
            f"{name} yet: does the webhook get its events (running, the channel's secret right)?[/]",
            "",
        )
    return table


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
    standing = reading.standing
    counted = standing.rate_seconds
    if counted < 60:  # it began sending less than a minute ago: since then
        over = (
            f"{fmt.duration(counted)} từ lúc bắt đầu gửi · "
            f"over the {fmt.decimal(counted, 0)} s since sending began"
        )
    else:
        over = "1 phút qua · over the last minute"
    return f"[bold]Tốc độ · rate:[/] {fmt.rate(standing.rate_per_second)} ({over})"


def _time_left_line(standing: Standing) -> str:
    estimate, waiting = standing.estimate, standing.summary.waiting_for
    label = "[bold]Còn lại · time left:[/]"
    if standing.summary.done:
        return f"{label} 0 giây · all final"
    if estimate.resumes_at is not None:
        return f"{label} — (gửi tiếp lúc · resumes at {fmt.moment(estimate.resumes_at)})"
    if waiting is not None and waiting.reason == "paused":
        return f"{label} — (tạm dừng · paused)"
    if waiting is not None and waiting.reason == "fallback":
        until = f" đến · until {fmt.moment(waiting.until)}" if waiting.until else ""
        return f"{label} — (kênh sau chờ kênh trước · the next channel waits{until})"
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


#: The provider table's columns a narrow terminal may leave out, by key.
_COLUMNS = {
    "bar": "tiến độ\nprogress",
    "rate": "tốc độ\nrate",
    "agreed": "giới hạn\nagreed",
}


def _per_second(rate: float, unit: str = "tin") -> str:
    """``20 tin/giây`` for a whole rate, ``0,48 tin/giây`` otherwise."""
    if abs(rate - round(rate)) < 1e-6:
        return f"{fmt.count(rate)} {unit}/giây"
    return fmt.rate(rate, unit)


def _agreed(view: ProviderView, headroom: float) -> str:
    """The agreed rate as configured and, when the headroom lowers it, what Loa aims at:
    ``20 tin/giây (Loa dùng 19 để chừa 5 %)``."""
    if view.rate is None:
        return "không · none"
    unit = "phần" if view.rate_unit == "parts" else "tin"
    agreed = view.rate / (1 - headroom)
    if not headroom:
        return _per_second(agreed, unit)
    aimed = _per_second(view.rate, unit).rsplit(" ", 1)[0]
    return f"{_per_second(agreed, unit)}\n(Loa dùng {aimed} để chừa {fmt.percent(headroom, 0)})"


def _providers(
    reading: Reading, headroom: float = 0.0, hidden: frozenset[str] = frozenset()
) -> Table:
    """A line per provider: its progress bar (settled / its recipients), what was handed
    to it, the rate over the last interval (watching), its agreed rate, its time left and
    its state; without the columns in ``hidden`` (keys of ``_COLUMNS``)."""
    from rich.progress_bar import ProgressBar
    from rich.table import Table

    standing = reading.standing
    show = {
        "bar": "bar" not in hidden,
        "rate": reading.rates is not None and "rate" not in hidden,
        "agreed": "agreed" not in hidden,
    }
    table = Table(title="Theo nhà cung cấp · by provider", title_justify="left")
    table.add_column("nhà cung cấp\nprovider", overflow="fold", min_width=8)
    if show["bar"]:
        table.add_column(_COLUMNS["bar"], min_width=12)
    table.add_column("đã chuyển cho\nnhà cung cấp\nhanded", justify="right")
    if show["rate"]:
        table.add_column(_COLUMNS["rate"], justify="right")
    if show["agreed"]:
        table.add_column(_COLUMNS["agreed"], justify="right")
    table.add_column("còn lại\nleft", justify="right")
    table.add_column("tình trạng\nstate")
    done = settled(standing.counts)
    given = handed(standing.counts)
    per_provider = standing.estimate.per_provider or {}
    for name, counts in standing.counts.items():
        total = sum(counts.values())
        view = standing.providers[name]
        row: list[RenderableType] = [name]
        if show["bar"]:
            row.append(ProgressBar(total=max(total, 1), completed=done[name], width=12))
        cell = f"{fmt.count(given[name])}/{fmt.count(total)}"
        spared = counts.get("unneeded", 0)
        if spared:  # a later channel's, never sent: the one before reached them
            cell += f"\n+{fmt.count(spared)} không cần · unneeded"
        if done[name] - spared > given[name]:  # ended without being handed over
            ended = done[name] - spared - given[name]
            cell += f"\n+{fmt.count(ended)} huỷ/hết hạn · cancelled/expired"
        if counts.get("standby"):
            cell += f"\n{fmt.count(counts['standby'])} chờ kênh trước · standing by"
        row.append(cell)
        if show["rate"]:
            row.append(fmt.rate((reading.rates or {}).get(name, 0.0)))
        if show["agreed"]:
            row.append(_agreed(view, headroom))
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
        if counts.get("standby"):
            return "[yellow]chờ kênh trước · waits for the channel before[/]"
        return "chờ báo cáo · receipts" if counts.get("sent") else "[green]xong · done[/]"
    if waiting is not None and waiting.reason in _HELD:
        return f"[yellow]{_HELD[waiting.reason]}[/]"
    return "[green]đang gửi · sending[/]"
