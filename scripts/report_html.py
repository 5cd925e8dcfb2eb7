"""The HTML report: one self-contained file (inline CSS and SVG, no script, no network)
that reads on a phone and prints on A4. Every value is escaped; numbers are masked before
they get here (``ledger.export.recipient_rows``)."""

from __future__ import annotations

from html import escape
from typing import Any

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;padding:12px;
color:#1b1b1b;max-width:960px;margin-inline:auto;font-size:15px;line-height:1.4}
h1{font-size:1.3em;margin:.2em 0}h2{font-size:1.1em;margin:1.2em 0 .4em;border-bottom:1px solid #ddd}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{padding:4px 6px;border-bottom:1px solid #eee;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left;white-space:normal}
tfoot td{font-weight:bold;border-top:2px solid #999}
.muted{color:#666;font-size:.9em}.ok{color:#1a7f37}.bad{color:#b42318}
svg{max-width:100%;height:auto}
@media print{body{max-width:none}.scroll{overflow:visible}}
"""


def _table(headers: list[str], rows: list[list[Any]], foot: list[Any] | None = None) -> str:
    head = "".join(f"<th>{escape(str(h))}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(_fmt(v))}</td>" for v in row) + "</tr>" for row in rows
    )
    tail = ""
    if foot is not None:
        tail = (
            "<tfoot><tr>" + "".join(f"<td>{escape(_fmt(v))}</td>" for v in foot) + "</tr></tfoot>"
        )
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody>{tail}</table></div>'


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
    bar_height, width, left = 22, 360, 130
    height = bar_height * len(items) + 10
    parts = [
        f'<svg role="img" aria-label="{escape(label)}" viewBox="0 0 {left + width + 60} {height}" '
        f'width="{left + width + 60}" height="{height}" xmlns="http://www.w3.org/2000/svg">'
    ]
    for n, (group, rate) in enumerate(items):
        y = 5 + n * bar_height
        parts.append(
            f'<text x="{left - 6}" y="{y + 15}" text-anchor="end" font-size="12">{escape(group[:20])}</text>'
            f'<rect x="{left}" y="{y + 3}" width="{width}" height="{bar_height - 8}" fill="#eee"/>'
            f'<rect class="bar" x="{left}" y="{y + 3}" width="{rate * width:.1f}" height="{bar_height - 8}" fill="#2f6fde"/>'
            f'<text x="{left + width + 6}" y="{y + 15}" font-size="12">{rate * 100:.1f}%</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def render(
    data: dict[str, Any], words: dict[str, str], states: tuple[str, ...], audit: dict[str, Any]
) -> str:
    """The whole page for a report's figures (``ledger.report.Report.as_dict``)."""
    statuses = data["statuses"]
    summary = [
        [words["rows_read"], data["rows_read"]],
        [words["rejected"], data["rejected"]],
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
    verdict = words["audit_ok"] if audit["ok"] else words["audit_broken"]
    sections += [
        f"<h2>{escape(words['audit'])}</h2>",
        f'<p class="{"ok" if audit["ok"] else "bad"}">{escape(verdict)}</p>',
        f'<p class="muted">{escape(words["audit_head"])}: <code>{escape(audit["head"])}</code> '
        f"({audit['sealed']:,} · {escape(audit['checked_at'])})</p>",
    ]
    title = f"{words['report']} — {data['name']}"
    return (
        f'<!doctype html><html lang="{escape(words["lang"])}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
        f'<h1>{escape(title)}</h1><p class="muted">{escape(data["campaign"])}</p>'
        + "".join(sections)
        + "</body></html>"
    )
