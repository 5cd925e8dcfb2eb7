"""The HTML report: one self-contained file (inline CSS and SVG, no script, no network)
that reads on a phone and prints on A4. Every value is escaped; numbers are masked before
they get here (``ledger.export.recipient_rows``)."""

from __future__ import annotations

from datetime import datetime, timedelta
from html import escape
from itertools import accumulate
from typing import Any

from campaigns.hours import VIETNAM


def reason_label(reason: str, lang: str) -> str:
    """A reject reason in the report's language (the command line's labels are both)."""
    from scripts.output import REJECT_LABELS

    label = REJECT_LABELS.get(reason)
    if label is None:
        return reason
    vi, _, en = label.partition(" · ")
    return vi if lang == "vi" else (en or vi)


SENT_COLOUR, DELIVERED_COLOUR = "#8a8f98", "#1a7f37"

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;padding:12px;
color:#1b1b1b;max-width:960px;margin-inline:auto;font-size:15px;line-height:1.4}
h1{font-size:1.3em;margin:.2em 0}h2{font-size:1.1em;margin:1.2em 0 .4em;border-bottom:1px solid #ddd}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{padding:4px 6px;border-bottom:1px solid #eee;text-align:right;white-space:nowrap}
th:first-child,td:first-child,td.t{text-align:left;white-space:normal}
code{word-break:break-all}
tfoot td{font-weight:bold;border-top:2px solid #999}
.muted{color:#666;font-size:.9em}.ok{color:#1a7f37}.bad{color:#b42318}
svg{max-width:100%;height:auto}
@media print{body{max-width:none}.scroll{overflow:visible}}
"""

#: The page loads nothing and runs nothing: whoever opens a forwarded copy, the browser
#: itself refuses any request or script (the styles and drawings are inline).
POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def _table(headers: list[str], rows: list[list[Any]], foot: list[Any] | None = None) -> str:
    head = "".join(f"<th>{escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    tail = ""
    if foot is not None:
        tail = (
            "<tfoot><tr>" + "".join(f"<td>{escape(_fmt(v))}</td>" for v in foot) + "</tr></tfoot>"
        )
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody>{tail}</table></div>'


def _cell(value: Any) -> str:
    """A cell: figures stay on one line, right-aligned; text (a code's meaning) wraps."""
    if isinstance(value, str) and len(value) > 12:
        return f'<td class="t">{escape(value)}</td>'
    return f"<td>{escape(_fmt(value))}</td>"


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "-" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}".replace(",", ".")  # Vietnamese thousands separator
    if isinstance(value, float):
        return f"{value:,.2f}".replace(",", " ").replace(".", ",").replace(" ", ".")
    return str(value)


def rate_bars(rows: dict[str, dict[str, int]], label: str) -> str:
    """A horizontal bar per group: delivered among delivered + undelivered."""
    items = []
    for group, counts in sorted(rows.items(), key=lambda item: str(item[0])):
        known = counts.get("delivered", 0) + counts.get("undelivered", 0)
        if known:
            items.append((str(group) or "-", counts.get("delivered", 0) / known))
    if not items:
        return ""
    # Drawn at a phone's width (about 360 px), so the labels keep their size there.
    bar_height, width, left = 22, 160, 145
    height = bar_height * len(items) + 10
    parts = [
        f'<svg class="rates" role="img" aria-label="{escape(label)}" viewBox="0 0 {left + width + 60} {height}" '
        f'width="{left + width + 60}" height="{height}" xmlns="http://www.w3.org/2000/svg">'
    ]
    for n, (group, rate) in enumerate(items):
        y = 5 + n * bar_height
        parts.append(
            f'<text x="{left - 6}" y="{y + 15}" text-anchor="end" font-size="12">{escape(group[:22])}</text>'
            f'<rect x="{left}" y="{y + 3}" width="{width}" height="{bar_height - 8}" fill="#eee"/>'
            f'<rect class="bar" x="{left}" y="{y + 3}" width="{rate * width:.1f}" height="{bar_height - 8}" fill="#2f6fde"/>'
            f'<text x="{left + width + 6}" y="{y + 15}" font-size="12">{rate * 100:.1f}%</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def line_chart(series: list[tuple[str, str, list[int]]], ends: tuple[str, str], label: str) -> str:
    """Lines over time in one SVG (``(name, colour, values)`` each, all the same length),
    the first and last times under the axis, the highest value beside it, a legend."""
    size = max(len(values) for _, _, values in series)
    top = max(1, *(max(values, default=0) for _, _, values in series))
    left, width, height, legend = 44, 300, 150, 24  # about a phone's width, like the bars
    parts = [
        f'<svg class="timeline" role="img" aria-label="{escape(label)}" viewBox="0 0 {left + width + 16} '
        f'{height + 40 + legend}" width="{left + width + 16}" height="{height + 40 + legend}" '
        'xmlns="http://www.w3.org/2000/svg">',
        f'<line x1="{left}" y1="{10 + height}" x2="{left + width}" y2="{10 + height}" stroke="#999"/>',
        f'<line x1="{left}" y1="10" x2="{left}" y2="{10 + height}" stroke="#999"/>',
        f'<text x="{left - 4}" y="18" text-anchor="end" font-size="11">{escape(_fmt(top))}</text>',
        f'<text x="{left - 4}" y="{10 + height}" text-anchor="end" font-size="11">0</text>',
        f'<text x="{left}" y="{28 + height}" font-size="11">{escape(ends[0])}</text>',
        f'<text x="{left + width}" y="{28 + height}" text-anchor="end" font-size="11">{escape(ends[1])}</text>',
    ]
    for n, (name, colour, values) in enumerate(series):
        step = width / max(1, size - 1)
        points = " ".join(
            f"{left + i * step:.1f},{10 + height - v / top * height:.1f}"
            for i, v in enumerate(values)
        )
        if size == 1:  # one point: a short flat line, so it shows
            points += f" {left + width:.1f},{10 + height - values[0] / top * height:.1f}"
        x = left + n * 150
        parts.append(
            f'<polyline class="series" points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>'
            f'<rect x="{x}" y="{height + 44}" width="12" height="12" fill="{colour}"/>'
            f'<text x="{x + 16}" y="{height + 54}" font-size="12">{escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _moment(at: datetime, same_day: bool) -> str:
    local = at.astimezone(VIETNAM)
    return local.strftime("%H:%M:%S" if same_day else "%d/%m %H:%M")


def timeline_chart(timeline: dict[str, Any] | None, words: dict[str, str]) -> str:
    """The campaign's sends and deliveries, cumulative, in Vietnam's time."""
    if not timeline:
        return ""
    start = datetime.fromisoformat(timeline["start"])
    end = start + timedelta(seconds=timeline["step_seconds"] * len(timeline["sent"]))
    same_day = start.astimezone(VIETNAM).date() == end.astimezone(VIETNAM).date()
    series = [
        (words["sent"], SENT_COLOUR, list(accumulate(timeline["sent"]))),
        (words["delivered"], DELIVERED_COLOUR, list(accumulate(timeline["delivered"]))),
    ]
    ends = (_moment(start, same_day), _moment(end, same_day))
    return line_chart(series, ends, words["timeline"])


def page(title: str, subtitle: str, sections: list[str], words: dict[str, str]) -> str:
    """The document around the sections."""
    return (
        f'<!doctype html><html lang="{escape(words["lang"])}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f'<meta http-equiv="Content-Security-Policy" content="{POLICY}">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
        f'<h1>{escape(title)}</h1><p class="muted">{escape(subtitle)}</p>'
        + "".join(sections)
        + "</body></html>"
    )


def audit_section(audit: dict[str, Any], words: dict[str, str]) -> list[str]:
    """The chain's head now and its last whole verification (``ledger.chain.audit_status``)."""
    verified = audit["verified"]
    if verified is None:
        verdict, tone = words["audit_never"], "bad"
    else:
        verdict = words["audit_ok"] if verified["ok"] else words["audit_broken"]
        tone = "ok" if verified["ok"] else "bad"
    lines = [
        f"<h2>{escape(words['audit'])}</h2>",
        f'<p class="{tone}">{escape(verdict)}</p>',
    ]
    if verified is not None:
        lines.append(
            f'<p class="muted">{escape(words["audit_verified_at"])} {escape(verified["at"])} · '
            f"{escape(_fmt(verified['sealed']))} {escape(words['audit_links'])}</p>"
        )
    lines.append(
        f'<p class="muted">{escape(words["audit_head"])} #{escape(_fmt(audit["head_seq"]))}: '
        f"<code>{escape(audit['head'])}</code> · {escape(_fmt(audit['sealed_since_verified']))} "
        f"{escape(words['audit_since'])} · {escape(_fmt(audit['unsealed']))} "
        f"{escape(words['audit_unsealed'])}</p>"
    )
    return lines


def render(
    data: dict[str, Any], words: dict[str, str], states: tuple[str, ...], audit: dict[str, Any]
) -> str:
    """The whole page for a report's figures (``ledger.report.Report.as_dict``)."""
    statuses = data["statuses"]
    summary = [
        [words["rows_read"], data["rows_read"]],
        [words["rejected"], data["rejected"]],
        *[
            [f"— {reason_label(r, words['lang'])}", n]
            for r, n in data["rejected_by_reason"].items()
        ],
        [words["duplicates"], data["duplicates"]],
        [words["suppressed"], data["suppressed"]],
        [words["recipients"], data["recipients"]],
        *[[f"— {words[s]}", statuses.get(s, 0)] for s in states if statuses.get(s, 0)],
        [words["parts_billed"], data["parts_billed"]],
        [words["cost"], data["cost"]],
        [
            words["delivery_rate"],
            None if data["delivery_rate"] is None else f"{data['delivery_rate'] * 100:.1f}%",
        ],
    ]
    sections = [
        f"<h2>{escape(words['summary'])}</h2>",
        _table([words["item"], words["count"]], summary),
    ]
    if data.get("timeline"):
        sections += [
            f"<h2>{escape(words['timeline'])}</h2>",
            timeline_chart(data["timeline"], words),
        ]
    breakdowns = []
    if data["by"]:
        breakdowns.append((f"{words['by_column']} {data['by']}", data["by_column"]))
    breakdowns += [
        (words["by_carrier"], data["by_carrier"]),
        (words["by_provider"], data["by_provider"]),
        (words["by_hour"], data["by_hour"]),
    ]
    shown = [s for s in states if any(c.get(s) for _, rows in breakdowns for c in rows.values())]
    for title, rows in breakdowns:
        body = [
            [str(group) or "-", *(counts.get(s, 0) for s in shown), sum(counts.values())]
            for group, counts in sorted(rows.items(), key=lambda item: str(item[0]))
        ]
        totals = [
            words["total"],
            *(sum(r[i + 1] for r in body) for i in range(len(shown))),
            sum(r[-1] for r in body),
        ]
        sections += [
            f"<h2>{escape(title)}</h2>",
            _table([words["group"], *(words[s] for s in shown), words["total"]], body, totals),
        ]
        if rows is data["by_column"]:
            sections.append(rate_bars(rows, f"{words['delivery_rate']} — {title}"))
    if data["failures"]:
        sections += [
            f"<h2>{escape(words['failures'])}</h2>",
            _table(
                [words["provider"], words["code"], words["meaning"], words["count"]],
                [
                    [f["provider"], f["code"], f.get("meaning", ""), f["recipients"]]
                    for f in data["failures"]
                ],
            ),
        ]
    sections += audit_section(audit, words)
    title = f"{words['report']} — {data['name']}"
    return page(title, data["campaign"], sections, words)


def render_daily(data: dict[str, Any], words: dict[str, str], audit: dict[str, Any]) -> str:
    """The daily update's page (``ledger.daily.Daily.as_dict``)."""
    from ledger.daily import REPORTED as shown  # the moves a daily update counts

    rows = [
        [c["name"], *(c["that_day"].get(s, 0) for s in shown), c["recipients"]]
        for c in data["campaigns"]
    ]
    totals = [words["total"], *(data["that_day"].get(s, 0) for s in shown)]
    totals.append(sum(c["recipients"] for c in data["campaigns"]))
    sections = [f"<h2>{escape(words['that_day'])}</h2>"]
    if not rows:
        sections.append(f"<p>{escape(words['no_activity'])}</p>")
    else:
        headers = [words["campaign"], *(words[s] for s in shown), words["recipients"]]
        sections.append(_table(headers, rows, totals))
        hours = [data["by_hour"].get(str(h), {}) for h in range(24)]
        series = [
            (words["sent"], SENT_COLOUR, [h.get("sent", 0) for h in hours]),
            (words["delivered"], DELIVERED_COLOUR, [h.get("delivered", 0) for h in hours]),
        ]
        sections += [
            f"<h2>{escape(words['by_hour_day'])}</h2>",
            line_chart(series, ("00:00", "23:00"), words["by_hour_day"]),
        ]
        for campaign in data["campaigns"]:
            standing = campaign["standing"]
            sections += [
                f"<h2>{escape(campaign['name'])}</h2>",
                f'<p class="muted">{escape(campaign["campaign"])} · {escape(campaign["state"])}</p>',
                _table(
                    [words["item"], words["count"]],
                    [[words[s], standing[s]] for s in STATES_ORDER if standing.get(s)],
                    [words["recipients"], campaign["recipients"]],
                ),
            ]
    sections += audit_section(audit, words)
    return page(f"{words['daily']} — {data['day']}", words["report"], sections, words)


STATES_ORDER = ("delivered", "undelivered", "failed", "expired", "unknown", "cancelled", "sent",
                "sending", "queued")  # fmt: skip
