"""The HTML report's charts, in the page's whole width on a phone as on a desk: the lines
are an SVG stretched to the width (its strokes keep their thickness), the labels are page
text beside it, so they keep their size whatever the width. Nothing is scripted."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from html import escape
from itertools import accumulate
from typing import Any

from scripts.reports.words import COLOURS, DELIVERED_COLOUR, SENT_COLOUR, STATES, number, share

#: The drawing's own coordinates (stretched to the page's width and 170 px high).
WIDTH, HEIGHT = 1000, 170


def _swatch(colour: str) -> str:
    return f'<i class="swatch" style="background:{colour}"></i>'


def line_chart(
    series: list[tuple[str, str, list[int]]],
    ticks: list[tuple[float, str]],
    label: str,
    caption: str,
    lang: str,
) -> str:
    """Lines over time in one figure: ``series`` as ``(name, colour, values)``, all the
    same length; ``ticks`` as ``(fraction of the span, text)`` under the axis; the
    highest value and its half beside it; a legend with each series' last value, and
    ``caption`` (what the axis counts in, the time zone) after it."""
    size = max(len(values) for _, _, values in series)
    top = max(1, *(max(values, default=0) for _, _, values in series))
    step = WIDTH / max(1, size - 1)
    lines = []
    for _, colour, values in series:
        points = " ".join(
            f"{i * step:.1f},{HEIGHT - v / top * (HEIGHT - 4):.1f}" for i, v in enumerate(values)
        )
        if size == 1:  # one point: a flat line across, so it shows
            points += f" {WIDTH},{HEIGHT - values[0] / top * (HEIGHT - 4):.1f}"
        lines.append(
            f'<polyline class="series" points="{points}" fill="none" stroke="{colour}" '
            'stroke-width="2.5" stroke-linejoin="round" vector-effect="non-scaling-stroke"/>'
        )
    return _figure(series, lines, top, ticks, label, caption, lang, [v[-1] for _, _, v in series])


def _figure(
    series: list[tuple[str, str, list[Any]]],
    drawn: list[str],
    top: float,
    ticks: list[tuple[float, str]],
    label: str,
    caption: str,
    lang: str,
    shown: list[Any],
    say: Callable[[float], str] | None = None,
) -> str:
    """The drawing ``drawn`` with its value axis (0 to ``top``), its time axis, and a
    legend giving each series' figure ``shown``; values said by ``say`` (default: as
    numbers, in ``lang``)."""
    said = say or (lambda value: number(value, lang))
    grid = "".join(
        f'<line x1="0" y1="{HEIGHT * f:.0f}" x2="{WIDTH}" y2="{HEIGHT * f:.0f}" '
        'stroke="#e6e8eb" vector-effect="non-scaling-stroke"/>'
        for f in (0.0, 0.25, 0.5, 0.75)
    )
    axis = []
    for at, text in ticks:  # centred on their moment, but never past either end
        place = "first" if at < 0.06 else "last" if at > 0.94 else ""
        axis.append(f'<span class="{place}" style="left:{at * 100:.2f}%">{escape(text)}</span>')
    legend = "".join(
        f"<span>{_swatch(colour)}{escape(name)}: {escape(said(figure))}</span>"
        for (name, colour, _), figure in zip(series, shown, strict=True)
    )
    return (
        "<figure>"
        '<div class="chart">'
        f'<span class="y" style="top:-.55em">{escape(said(top))}</span>'
        f'<span class="y" style="top:calc(50% - .6em)">{escape(said(top / 2))}</span>'
        '<span class="y" style="bottom:-.55em">0</span>'
        f'<svg class="timeline" role="img" aria-label="{escape(label)}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'preserveAspectRatio="none" xmlns="http://www.w3.org/2000/svg">{grid}{"".join(drawn)}</svg>'
        "</div>"
        f'<div class="axis">{"".join(axis)}</div>'
        f'<figcaption>{legend}<span class="zone">{escape(caption)}</span></figcaption>'
        "</figure>"
    )


def timeline_chart(timeline: dict[str, Any] | None, words: dict[str, str]) -> str:
    """The campaign's sends and deliveries, cumulative, against Vietnam's time (the axis
    says the zone)."""
    from campaigns.hours import VIETNAM

    if not timeline:
        return ""
    start = datetime.fromisoformat(timeline["start"])
    span = timedelta(seconds=timeline["step_seconds"] * len(timeline["sent"]))
    end = start + span
    same_day = start.astimezone(VIETNAM).date() == end.astimezone(VIETNAM).date()
    ticks = time_ticks(start, end, same_day)
    series = [
        (words["sent_count"], SENT_COLOUR, list(accumulate(timeline["sent"]))),
        (words["delivered"], DELIVERED_COLOUR, list(accumulate(timeline["delivered"]))),
    ]
    day = "" if not same_day else start.astimezone(VIETNAM).strftime("%d/%m/%Y") + " · "
    caption = day + words["zone"]
    return line_chart(series, ticks, words["timeline"], caption, words["lang"])


#: Steps between the times under a timeline (seconds): the shortest giving few enough.
TICK_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600,
              43200, 86400, 172800, 604800)  # fmt: skip


def time_ticks(start: datetime, end: datetime, same_day: bool) -> list[tuple[float, str]]:
    """Round times of Vietnam's clock between ``start`` and ``end`` (``09:00``, ``09:30``
    …; with seconds for a span of seconds, the date for one of days), as ``(fraction of
    the span, text)``: at most five, three when the texts are long, so that they never
    run into each other on a phone; the start too when there is room before the first.
    The first and last moments when no round time falls in between."""
    from campaigns.hours import VIETNAM

    span = max(1.0, (end - start).total_seconds())
    offset = 7 * 3600  # Vietnam: UTC+7 all year
    for step in TICK_STEPS:
        long = step < 60 or (not same_day and step < 86400)
        if span / step <= (3 if long else 5):
            break
    shape = "%H:%M:%S" if step < 60 else "%H:%M" if same_day else "%d/%m %H:%M"
    if step >= 86400:
        shape = "%d/%m"
    local = start.timestamp() + offset
    ticks = []
    moment = -(-local // step) * step  # the first round time at or after the start
    while moment <= local + span:
        at = datetime.fromtimestamp(moment - offset, VIETNAM)
        ticks.append(((moment - local) / span, at.strftime(shape)))
        moment += step
    first, last = start.astimezone(VIETNAM).strftime(shape), end.astimezone(VIETNAM).strftime(shape)
    if len(ticks) < 2:
        return [(0.0, first), (1.0, last)]
    if ticks[0][0] > 0.2 and len(ticks) < 5:  # room for the start itself
        ticks.insert(0, (0.0, first))
    return ticks


def hours_chart(by_hour: dict[str, dict[str, int]], words: dict[str, str]) -> str:
    """A day's sends and deliveries per hour (not cumulative): two bars an hour, 00:00
    to 24:00, the legend giving the day's totals."""
    hours = [by_hour.get(str(h), {}) for h in range(24)]
    series = [
        (words["sent_count"], SENT_COLOUR, [h.get("sent", 0) for h in hours]),
        (words["delivered"], DELIVERED_COLOUR, [h.get("delivered", 0) for h in hours]),
    ]
    top = max(1, *(max(values) for _, _, values in series))
    slot = WIDTH / 24
    bars = [
        f'<rect class="series" x="{h * slot + slot * (0.12 + 0.38 * n):.1f}" '
        f'y="{HEIGHT - v / top * (HEIGHT - 4):.1f}" width="{slot * 0.36:.1f}" '
        f'height="{v / top * (HEIGHT - 4):.1f}" fill="{colour}"/>'
        for n, (_, colour, values) in enumerate(series)
        for h, v in enumerate(values)
        if v
    ]
    ticks = [(h / 24, f"{h:02d}:00") for h in (0, 6, 12, 18)] + [(1.0, "24:00")]
    caption = words["per_hour"].format(zone=words["zone"])
    totals = [sum(values) for _, _, values in series]
    return _figure(series, bars, top, ticks, words["by_hour_day"], caption, words["lang"], totals)


def rate_bars(rows: list[tuple[str, dict[str, int]]], words: dict[str, str]) -> str:
    """A bar per group: the share of its recipients reached (``delivered`` of all)."""
    items = []
    for group, counts in rows:
        total = sum(counts.values())
        if total:
            rate = counts.get("delivered", 0) / total
            items.append(
                f'<span class="l">{escape(group)}</span>'
                f'<span class="track"><span class="bar" style="width:{rate * 100:.1f}%"></span></span>'
                f'<span class="v">{escape(share(rate, words["lang"]))}</span>'
            )
    if not items:
        return ""
    return (
        f'<p class="note">{escape(words["rates_caption"])}</p>'
        f'<div class="rates" role="img" aria-label="{escape(words["rates_caption"])}">'
        + "".join(items)
        + "</div>"
    )


def stack_bar(statuses: dict[str, int], words: dict[str, str]) -> str:
    """One bar for every recipient, a segment per status in the report's colours."""
    total = sum(statuses.values())
    if not total:
        return ""
    parts = []
    for state in STATES:
        count = statuses.get(state, 0)
        if count:
            title = f"{words[state]}: {number(count, words['lang'])}"
            parts.append(
                f'<span title="{escape(title)}" style="width:{count / total * 100:.3f}%;'
                f'background:{COLOURS[state]}"></span>'
            )
    label = ", ".join(
        f"{words[s]} {number(statuses[s], words['lang'])}" for s in STATES if statuses.get(s)
    )
    return f'<div class="stack" role="img" aria-label="{escape(label)}">{"".join(parts)}</div>'


def swatch(state: str) -> str:
    """The little square of a status's colour, as in the charts."""
    return _swatch(COLOURS[state])
