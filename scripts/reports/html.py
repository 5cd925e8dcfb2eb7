"""The HTML report: one self-contained file (inline CSS, no script, no network) that reads
on a phone and prints on A4, written for the official it is forwarded to: what was sent,
by whom, when, to whom, what became of it, and whether the log behind it holds.

Every value is escaped; numbers are masked before they get here
(``ledger.recipients_csv.recipient_rows``). Every breakdown table ends with a total equal to the
summary's (``ledger.reports.campaign``). Styles: ``report.css``; charts: ``charts``; words
and number formats: ``words``.
"""

from __future__ import annotations

from functools import cache
from html import escape
from pathlib import Path
from typing import Any

from scripts.reports.charts import rate_bars, stack_bar, swatch, timeline_chart
from scripts.reports.words import (
    LANGUAGES,
    STATE_WORDS,
    STATES,
    STATUS_NOTES,
    actions_line,
    follow_ups_line,
    group_label,
    moment,
    money,
    number,
    percent,
    reason_label,
    share,
    span,
    state_reason,
)

#: The page loads nothing and runs nothing: whoever opens a forwarded copy, the browser
#: itself refuses any request or script (the styles and drawings are inline).
POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

__all__ = ["POLICY", "audit_section", "breakdown", "page", "reason_label", "render", "scroll", "td"]


@cache
def style() -> str:
    """The report's styles (``report.css``, beside this module)."""
    return (Path(__file__).parent / "report.css").read_text(encoding="utf-8")


def td(value: Any, lang: str, css: str = "", attrs: str = "") -> str:
    """A table cell: a number written the ``lang`` way, text as it is, ``None`` as a
    dash; ``css`` its class, ``attrs`` more attributes (already escaped)."""
    text = value if isinstance(value, str) else ("–" if value is None else number(value, lang))
    cls = f' class="{css}"' if css else ""
    return f"<td{cls}{attrs}>{escape(text)}</td>"


def scroll(table: str, columns: int, words: dict[str, str]) -> str:
    """A table in its own sideways-scrolling box; wider ones say so on a phone."""
    hint = f'<p class="hint">{escape(words["scroll_hint"])}</p>' if columns > 3 else ""
    return f'{hint}<div class="scroll">{table}</div>'


def breakdown(
    key: str, rows: list[tuple[str, dict[str, int]]], shown: list[str], words: dict[str, str]
) -> str:
    """One breakdown: a row per group (its name kept in view), its total first, then a
    column per status ``shown``, and the totals row (``data-breakdown``/``data-status``
    name them for machines)."""
    lang = words["lang"]
    head = (
        f'<th class="g">{escape(words["group"])}</th><th class="sum">{escape(words["total"])}</th>'
        + "".join(f"<th>{swatch(s)}{escape(words[s])}</th>" for s in shown)
    )
    body = []
    for group, counts in rows:
        cells = [f'<td class="g">{escape(group)}</td>']
        cells.append(td(sum(counts.values()), lang, "sum", ' data-status="total"'))
        cells += [td(counts.get(s, 0), lang, "", f' data-status="{s}"') for s in shown]
        body.append("<tr>" + "".join(cells) + "</tr>")
    totals = [f'<td class="g">{escape(words["total"])}</td>']
    totals.append(td(sum(sum(c.values()) for _, c in rows), lang, "sum", ' data-status="total"'))
    totals += [
        td(sum(c.get(s, 0) for _, c in rows), lang, "", f' data-status="{s}"') for s in shown
    ]
    table = (
        f'<table data-breakdown="{escape(key)}"><thead><tr>{head}</tr></thead>'
        f'<tbody>{"".join(body)}</tbody><tfoot><tr class="total">{"".join(totals)}</tr></tfoot></table>'
    )
    return scroll(table, len(shown) + 2, words)


def _breakdowns(data: dict[str, Any], words: dict[str, str]) -> list[str]:
    named = []
    if data["by"]:
        named.append(("by_column", f"{words['by_column']} {data['by']}", data["by_column"]))
    named += [
        ("by_carrier", words["by_carrier"], data["by_carrier"]),
        ("by_provider", words["by_provider"], data["by_provider"]),
        ("by_hour", f"{words['by_hour']} ({words['zone']})", data["by_hour"]),
    ]
    shown = [s for s in STATES if data["statuses"].get(s)]
    sections = []
    for key, title, groups in named:
        if (
            key == "by_hour"
        ):  # in the hours' order, the never-sent last (as ledger.reports.campaign)
            rows = [(group_label(key, g, words), c) for g, c in groups.items()]
        else:
            rows = [  # by name, the blank group last
                (group_label(key, str(g), words), c)
                for g, c in sorted(
                    groups.items(), key=lambda item: (not item[0], str(item[0]).casefold())
                )
            ]
        sections += [f"<h2>{escape(title)}</h2>"]
        if key == "by_column":
            sections.append(rate_bars(rows, words))
        sections.append(breakdown(key, rows, shown, words))
        note = words["hour_note"] if key == "by_hour" else words["breakdown_note"]
        sections.append(f'<p class="note">{escape(note)}</p>')
    return sections


def _summary(data: dict[str, Any], words: dict[str, str]) -> list[str]:
    # With several channels the statuses are of messages (``all_channels``), one per
    # recipient per channel; their shares are of those.
    lang, statuses = words["lang"], data["statuses"]
    recipients = data.get("all_channels", data["recipients"])

    def row(label: str, value: Any, rate: str = "", css: str = "", attrs: str = "") -> str:
        first = f'<td class="g {css}">{label}</td>'
        return f"<tr>{first}{td(value, lang, '', attrs)}<td>{escape(rate)}</td></tr>"

    rows = [row(escape(words["rows_read"]), data["rows_read"])]
    rows.append(row(escape(words["rejected"]), data["rejected"]))
    rows += [
        row(escape(f"— {reason_label(r, lang)}"), n, css="sub")
        for r, n in data["rejected_by_reason"].items()
    ]
    rows.append(row(escape(words["duplicates"]), data["duplicates"]))
    rows.append(row(escape(words["suppressed"]), data["suppressed"]))
    rows += [
        row(escape(f"— {reason_label(r, lang)}"), n, css="sub")
        for r, n in data.get("suppressed_by_list", {}).items()
    ]
    rows.append(
        '<tr class="total">'
        # With several channels the statuses are of messages, one per recipient per
        # channel (the recipients are in the section above).
        + f'<td class="g">{escape(words["messages" if data.get("channels") else "recipients"])}</td>'
        + td(recipients, lang, "", ' data-status="total"')
        + f"<td>{escape(percent(recipients, recipients, lang))}</td></tr>"
    )
    rows += [
        row(
            swatch(s) + escape(words[s]),
            statuses[s],
            percent(statuses[s], recipients, lang),
            "sub",
            f' data-status="{s}"',
        )
        for s in STATES
        if statuses.get(s)
    ]
    rows.append(row(escape(words["parts_billed"]), data["parts_billed"]))
    cost = "–" if data["cost"] is None else money(data["cost"], data["currency"], lang)
    rows.append(row(escape(words["cost"]), cost))
    rate = data["delivery_rate"]
    rows.append(row(escape(words["delivery_rate"]), "–" if rate is None else share(rate, lang)))
    head = "".join(f"<th>{escape(words[k])}</th>" for k in ("count", "share"))
    table = (
        f'<table class="summary" data-breakdown="summary"><thead><tr><th class="g">'
        f"{escape(words['item'])}</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
    delivered, known = (
        statuses.get("delivered", 0),
        statuses.get("delivered", 0) + statuses.get("undelivered", 0),
    )
    notes = [
        words["outcomes_note"],
        words["delivery_rate_note"].format(
            delivered=number(delivered, lang), known=number(known, lang)
        ),
    ]
    glossary = "".join(
        f"<li><b>{escape(words[s])}</b>: {escape(STATUS_NOTES[lang][s])}</li>"
        for s in STATES
        if statuses.get(s)
    )
    return [
        f"<h2>{escape(words['summary'])}</h2>",
        scroll(table, 3, words),
        *(f'<p class="note">{escape(n)}</p>' for n in notes),
        f'<h3>{escape(words["statuses_explained"])}</h3><ul class="glossary">{glossary}</ul>',
    ]


def _state_badge(data: dict[str, Any], words: dict[str, str]) -> str:
    lang, state = words["lang"], data["state"]
    text = f"{words['state']}: {STATE_WORDS[lang].get(state, state)}"
    if data.get("state_since"):
        text += f" · {words['since']} {moment(data['state_since'], lang)}"
    alarm = " alarm" if state in ("halted", "paused") else ""
    reason = data.get("state_reason")
    reason = state_reason(reason, lang) if reason else None
    why = f'<p class="muted">{escape(reason)}</p>' if reason and state != "completed" else ""
    return (
        f'<p><span class="state{alarm}" data-state="{escape(state)}">{escape(text)}</span></p>{why}'
    )


def _stopped(data: dict[str, Any], words: dict[str, str]) -> str:
    """What a cancelled campaign left unsent, said where the reader looks first."""
    left = data["statuses"].get("cancelled", 0)
    if data["state"] != "cancelled" or not left:
        return ""
    text = words["cancelled_note"].format(count=number(left, words["lang"]))
    return f'<p class="stopped">{swatch("cancelled")}{escape(text)}</p>'


def sending_hours(data: dict[str, Any], words: dict[str, str]) -> str:
    """The hours the worker applied (``ledger.reports.campaign``: the campaign's own, advertising's
    Decree 91 default, or any hour), said for a reader: ``07:00–22:00 hằng ngày (giờ
    Việt Nam, UTC+7) — mặc định của Nghị định 91/2020 cho tin quảng cáo``."""
    hours = data["sending_hours"]
    if not hours:
        return words["any_hour"]
    said = f"{hours.replace('-', '–')} {words['every_day']} ({words['zone']})"
    return said + (
        f" — {words['decree_91']}" if data.get("sending_hours_from") == "decree_91" else ""
    )


def _texts(data: dict[str, Any], words: dict[str, str]) -> str:
    """Each message text as the phones got it, its language named when there are
    several, and ``(không dấu)`` beside one sent without diacritics."""
    texts, stripped = data["messages"], set(data.get("khong_dau") or ())
    names = LANGUAGES[words["lang"]]
    shown = []
    for code, text in texts.items():
        tags = [names.get(code, code)] if len(texts) > 1 else []
        tags += [words["khong_dau"]] if code in stripped else []
        if tags:
            shown.append(
                f'<span class="lang" data-lang="{escape(code)}">{escape(" ".join(tags))}</span>'
            )
        shown.append(f"<blockquote>{escape(text)}</blockquote>")
    if stripped:
        shown.append(f'<p class="muted">{escape(words["khong_dau_note"])}</p>')
    return "".join(shown)


def _facts(data: dict[str, Any], words: dict[str, str]) -> list[str]:
    lang, zone = words["lang"], f"({words['zone']})"
    window = sending_hours(data, words)
    if data["first_sent"]:
        sent = f"{span(data['first_sent'], data['last_sent'], lang)} {zone}"
    else:
        sent = words["nothing_sent"]
    facts = [
        ("campaign_id", f"<code>{escape(data['campaign'])}</code>"),
        ("category", escape(words.get(data["category"], data["category"]))),
        ("brandname", f"<b>{escape(data['brandname'])}</b>"),
        ("message_text", _texts(data, words)),
        ("launched", escape(f"{moment(data['created_at'], lang)} {zone}")),
        ("launched_by", escape(data["launched_by"] or words["launched_by_unknown"])),
    ]
    if follow_ups_line(data.get("follow_ups"), words):
        facts.append(("follow_ups", escape(follow_ups_line(data["follow_ups"], words) or "")))
    if actions_line(data.get("actions", []), words):
        facts.append(("actions", escape(actions_line(data["actions"], words) or "")))
    if data.get("start_at"):
        facts.append(("start_at", escape(f"{moment(data['start_at'], lang)} {zone}")))
    facts += [
        ("sending_hours", escape(window)),
        ("sent_between", escape(sent)),
        ("valid_until", escape(f"{moment(data['valid_until'], lang)} {zone}")),
        ("list_file", escape(data["list_name"] or "–")),
        ("provider", escape(", ".join(sorted(data["by_provider"])))),
    ]
    items = "".join(f"<dt>{escape(words[key])}</dt><dd>{value}</dd>" for key, value in facts)
    return [f"<h2>{escape(words['facts'])}</h2>", f'<dl class="facts">{items}</dl>']


def _failures(data: dict[str, Any], words: dict[str, str]) -> list[str]:
    """Why the others were not reached: a row per outcome and reason code, its meaning
    and provider under it (two columns: it fits a phone), and the total."""
    lang, rows = words["lang"], data["failures"]
    if not rows:
        return []
    head = f'<th class="g">{escape(words["reason"])}</th><th>{escape(words["count"])}</th>'
    body = []
    for failure in rows:
        status, code = failure["status"], failure["code"] or words["no_code"]
        explained = (
            f"{failure.get('meaning') or '–'} · {words['provider'].lower()} {failure['provider']}"
        )
        body.append(
            f'<tr><td class="g">{swatch(status)}<b>{escape(words[status])}</b> · '
            f'<code>{escape(code)}</code><br><span class="muted">{escape(explained)}</span></td>'
            + td(failure["recipients"], lang, "", f' data-status="{escape(status)}"')
            + "</tr>"
        )
    total = sum(f["recipients"] for f in rows)
    marked = td(total, lang, "", ' data-status="total"')
    foot = f'<tr class="total"><td class="g">{escape(words["total"])}</td>{marked}</tr>'
    table = (
        f'<table class="reasons" data-breakdown="failures"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody><tfoot>{foot}</tfoot></table>"
    )
    return [
        f"<h2>{escape(words['why_not'])}</h2>",
        scroll(table, 2, words),
        f'<p class="note">{escape(words["failures_note"])}</p>',
    ]


def audit_section(audit: dict[str, Any], words: dict[str, str]) -> list[str]:
    """Whether the log behind the figures holds, said for a reader (``ledger.chain
    .audit_status``, with ``verified_now`` when this report verified it first): the
    verdict, when and how it was reached, and what was recorded after it. Red only
    for a broken chain."""
    lang, verified = words["lang"], audit["verified"]
    lines = [
        f"<h2>{escape(words['audit'])}</h2>",
        f'<p class="note">{escape(words["audit_explain"])}</p>',
    ]
    if verified is None:
        lines.append(f"<p>{escape(words['audit_never'])}</p>")
    else:
        verdict = words["audit_ok"] if verified["ok"] else words["audit_broken"]
        lines.append(f'<p class="{"" if verified["ok"] else "bad"}"><b>{escape(verdict)}</b></p>')
        how = words["audit_now"] if audit.get("verified_now") else words["audit_before"]
        lines.append(
            f"<p>{escape(words['audit_verified_at'])} {escape(moment(verified['at'], lang))} "
            f"({escape(words['zone'])}), {escape(how)}: {escape(number(verified['sealed'], lang))} "
            f"{escape(words['audit_links'])}.</p>"
        )
        broken = verified.get("broken") or {}
        if broken.get("seq") is not None:
            lines.append(
                f'<p class="bad">#{escape(str(broken.get("seq")))}: {escape(str(broken.get("reason")))}</p>'
            )
        problems = broken.get("problems") or []
        for problem in problems[:10]:  # what was altered, as verify named it
            lines.append(f'<p class="bad">{escape(str(problem))}</p>')
        if len(problems) > 10:
            lines.append(f'<p class="bad">… {escape(number(len(problems) - 10, lang))}</p>')
    later = [
        f"{number(audit['sealed_since_verified'], lang)} {words['audit_since']}"
        if verified is not None and audit["sealed_since_verified"]
        else "",
        f"{number(audit['unsealed'], lang)} {words['audit_unsealed']}" if audit["unsealed"] else "",
    ]
    if any(later):
        lines.append(f'<p class="muted">{escape("; ".join(t for t in later if t))}.</p>')
    if audit.get("checkpoint"):
        lines.append(f'<p class="muted">{escape(words["audit_checkpoint"])}</p>')
        lines.append(f"<pre>{escape(audit['checkpoint'])}</pre>")
    elif not audit.get("signed", True):
        lines.append(f'<p class="bad">{escape(words["audit_unsigned"])}</p>')
    if not audit["head_seq"]:  # the chain's start, all zeros: no seal to compare with
        lines.append(f'<p class="muted">{escape(words["audit_no_seal"])}</p>')
        return lines
    lines.append(
        f'<p class="muted">{escape(words["audit_head"])} #{escape(number(audit["head_seq"], lang))}: '
        f"<code>{escape(audit['head'])}</code></p>"
    )
    return lines


def page(title: str, kicker: str, sections: list[str], words: dict[str, str], made: str) -> str:
    """The document around the sections; ``made``: when the report was made (ISO)."""
    footer = f"{words['generated']} {moment(made, words['lang'])} ({words['zone']}) · Loa"
    # Text from a list or a provider could carry bidirectional overrides ("gnp.exe" shown
    # as "exe.png") or control characters: the terminal's rule (``formats.plain``) holds
    # for the page too.
    from scripts.formats import plain

    return plain(_page(title, kicker, sections, words, footer))


def _page(title: str, kicker: str, sections: list[str], words: dict[str, str], footer: str) -> str:
    return (
        f'<!doctype html><html lang="{escape(words["lang"])}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f'<meta http-equiv="Content-Security-Policy" content="{POLICY}">'
        f"<title>{escape(title)}</title><style>{style()}</style></head><body>"
        f'<p class="kicker">{escape(kicker)}</p><h1>{escape(title)}</h1>'
        + "".join(sections)
        + f"<footer>{escape(footer)}</footer></body></html>"
    )


def render(
    data: dict[str, Any], words: dict[str, str], states: tuple[str, ...], audit: dict[str, Any]
) -> str:
    """The whole page for a report's figures (``ledger.reports.campaign.Report.as_dict``, with the
    failures' ``meaning`` and ``generated_at`` added by ``scripts.reports.command``). ``states``
    is kept for callers; the order is ``words.STATES``."""
    lang = words["lang"]
    channels = data.get("channels")
    # With several channels, a recipient is reached by whichever channel delivered first
    # (``scripts.reports.command`` counts them so).
    reached, recipients = data["reached"], data["recipients"]
    headline = words["headline"].format(
        reached=f"<b>{escape(number(reached, lang))}</b>",
        recipients=escape(number(recipients, lang)),
        share=escape(percent(reached, recipients, lang)),
    )
    sections = [
        _state_badge(data, words),
        f'<section class="headline"><p class="big">{headline}</p>'
        f"{stack_bar(data['statuses'], words)}"
        f'<p class="note">{escape(words["headline_note"])}</p>{_stopped(data, words)}</section>',
        *_facts(data, words),
    ]
    if channels:
        from scripts.reports.channels import html_section

        sections += html_section(channels, words, data.get("currency"))
    if data.get("goal"):  # the outcome against the goal, district by district
        from scripts.reports.goal import html_section as goal_section

        sections += goal_section(data["goal"], words)
    sections += _summary(data, words)
    if data.get("timeline"):
        sections += [
            f"<h2>{escape(words['timeline'])}</h2>",
            timeline_chart(data["timeline"], words),
        ]
    sections += _breakdowns(data, words)
    sections += _failures(data, words)
    sections += audit_section(audit, words)
    return page(data["name"], words["report"], sections, words, data["generated_at"])
