"""The goal section of a campaign's report (issue #24): how far the outcome is from the
goal, district by district, for the Department that reports it (``ledger.goals.section``
makes the figures; every row adds up to the totals under it).

The areas behind the pace come first, marked; the chart draws the share of the
population reached by the outcome day by day, against the pace that meets the target by
the deadline and the target itself.
"""

from __future__ import annotations

from datetime import date, timedelta
from html import escape
from typing import Any

from scripts.reports.charts import HEIGHT, WIDTH, _figure
from scripts.reports.words import number, share

GOAL_COLOUR, PACE_COLOUR, TARGET_COLOUR = "#0b7a3b", "#8a6d00", "#b3261e"

WORDS = {
    "vi": {
        "title": "Mục tiêu",
        "line": "{name}: {target} dân số mỗi khu vực trước {deadline}",
        "left": "còn {days} ngày",
        "over": "đã quá hạn {days} ngày",
        "whole": "Toàn tỉnh: {outcomes} / {population} ({share}); tiến độ cần đạt hôm nay {pace}.",
        "area": "Khu vực", "population": "Dân số", "recipients": "Người nhận",
        "reached": "Đã đến", "outcomes": "Kết quả", "acted": "Người nhận đã thực hiện",
        "share": "Tỷ lệ", "behind": "Chậm tiến độ", "ahead": "Đạt tiến độ",
        "elsewhere": "Ngoài các khu vực của mục tiêu", "total": "Tổng",
        "measured_counts": "Kết quả: số liệu nhập theo khu vực và ngày (loa outcomes import).",
        "measured_acted": "Kết quả: người nhận có trong danh sách đã thực hiện, đối chiếu bằng HMAC.",
        "measured_none": "Chưa có kết quả nào được nhập (loa outcomes import).",
        "for_campaign": "Người nhận, đã đến: của chiến dịch đầu tiên phục vụ mục tiêu, {campaign} (các chiến dịch nhắc lại: trong báo cáo của nó).",
        "other_key": "Không đối chiếu được người nhận đã thực hiện: danh sách số đã thực hiện được lưu bằng một LOA_RETENTION_KEY khác.",
        "chart": "Tỷ lệ đạt theo ngày", "pace": "Tiến độ cần đạt", "target": "Mục tiêu",
        "achieved": "Đã đạt", "target_share": "Tỷ lệ mục tiêu", "deadline": "Hạn chót",
        "standing": "Tiến độ", "day": "Ngày",
    },
    "en": {
        "title": "Goal",
        "line": "{name}: {target} of each area's population by {deadline}",
        "left": "{days} days left",
        "over": "{days} days past the deadline",
        "whole": "Province: {outcomes} / {population} ({share}); the pace asks {pace} today.",
        "area": "Area", "population": "Population", "recipients": "Recipients",
        "reached": "Reached", "outcomes": "Outcome", "acted": "Recipients who acted",
        "share": "Share", "behind": "Behind the pace", "ahead": "On pace",
        "elsewhere": "Outside the goal's areas", "total": "Total",
        "measured_counts": "Outcome: counts imported per area and day (loa outcomes import).",
        "measured_acted": "Outcome: recipients among the numbers that acted, matched by HMAC.",
        "measured_none": "No outcome imported yet (loa outcomes import).",
        "for_campaign": "Recipients and reached: the goal's first campaign's, {campaign} (its follow-ups: in its report).",
        "other_key": "Recipients who acted not matched: the numbers that acted were kept under another LOA_RETENTION_KEY.",
        "chart": "Share reached, day by day", "pace": "Pace", "target": "Target",
        "achieved": "Reached", "target_share": "Target share", "deadline": "Deadline",
        "standing": "Standing", "day": "Day",
    },
}  # fmt: skip


def _said(words: dict[str, str]) -> dict[str, str]:
    return WORDS[words["lang"] if words["lang"] in WORDS else "en"]


def _day(text: str, lang: str) -> str:
    day = date.fromisoformat(text)
    return day.strftime("%d/%m/%Y") if lang == "vi" else day.isoformat()


def html_section(goal: dict[str, Any], words: dict[str, str], daily: bool = False) -> list[str]:
    """The section: the goal in a line, the province's standing, a row per area (behind
    first, marked), the recipients outside the goal's areas, the totals, the chart."""
    lang, said = words["lang"], _said(words)
    days = goal["days_left"]
    when = said["left" if days >= 0 else "over"].format(days=number(abs(days), lang))
    line = said["line"].format(name=goal["goal"], target=share(goal["target"], lang),
                               deadline=_day(goal["deadline"], lang))  # fmt: skip
    whole = said["whole"].format(
        outcomes=number(goal["outcomes"], lang), population=number(goal["population"], lang),
        share=share(goal["share"], lang), pace=share(goal["pace"], lang),
    )  # fmt: skip
    acted = _acted_shown(goal)
    # The share first after the area: what a phone shows without scrolling the table.
    heads = ["area", "share", "outcomes", "population", "recipients", "reached",
             *(["acted"] if acted else [])]  # fmt: skip
    head = "".join(f"<th{' class=g' if h == 'area' else ''}>{escape(said[h])}</th>"
                   for h in heads)  # fmt: skip

    def row(name: str, rate: float | None, cells: list[Any], kind: str = "") -> str:
        shown = escape(share(rate, lang)) if rate is not None else ""
        numbers = "".join(
            f'<td class="n">{escape(number(c, lang)) if c is not None else ""}</td>' for c in cells
        )
        return (f'<tr{f" class={kind}" if kind else ""}><th scope="row" class="g">{name}</th>'
                f'<td class="n sum">{shown}</td>{numbers}</tr>')  # fmt: skip

    body = []
    for area in goal["areas"]:
        kind = "behind" if area["behind"] else "ahead"
        name = (f'<span class="name">{escape(area["area"])}</span>'
                f"<br><small>{escape(said[kind])}</small>")  # fmt: skip
        body.append(row(name, area["share"], [area["outcomes"], area["population"],
                        area["recipients"], area["reached"],
                        *([area["acted"]] if acted else [])], kind))  # fmt: skip
    if goal["elsewhere"]:
        body.append(row(escape(said["elsewhere"]), None, [None, None, goal["elsewhere"],
                        goal.get("elsewhere_reached", 0),
                        *([goal.get("elsewhere_acted")] if acted else [])]))  # fmt: skip
    foot = row(escape(said["total"]), goal["share"], [goal["outcomes"], goal["population"],
               goal["recipients"], goal["reached"],
               *([goal.get("acted")] if acted else [])], "total")  # fmt: skip
    return [
        f"<h2>{escape(said['title'])}</h2>",
        f'<p class="big">{escape(line)} · {escape(when)}</p>',
        f"<p>{escape(whole)}</p>",
        *(
            [
                f'<p class="note">{escape(said["for_campaign"].format(campaign=goal["campaign"]))}</p>'
            ]
            if daily and goal.get("campaign")
            else []
        ),
        f'<div class="scroll"><table class="goal"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody><tfoot>{foot}</tfoot></table></div>",
        f'<p class="note">{escape(said["measured_" + goal["measured_by"]])}</p>',
        *(
            [f'<p class="note">{escape(said["other_key"])}</p>']
            if goal.get("acted_under_another_key")
            else []
        ),
        goal_chart(goal, words),
    ]


def _acted_shown(goal: dict[str, Any]) -> bool:
    """A column of the recipients who acted: when they are known and the outcome is the
    imported counts (measured by them, they are the outcome column already)."""
    return goal["measured_by"] == "counts" and any(a["acted"] is not None for a in goal["areas"])


def series(goal: dict[str, Any]) -> tuple[list[float], list[float], list[float], date, date]:
    """Day by day from the goal's first campaign (or its first outcome, if earlier) to
    the report's day, or the deadline once it has passed (or the last outcome, if later):
    the share reached, the pace (``ledger.goals.section.pace_on``, as the report's line
    says it), and the target; with the first and last days."""
    from ledger.goals.section import pace_on

    known = {date.fromisoformat(d["day"]): d["share"] for d in goal["by_day"]}
    pace_from = date.fromisoformat(goal["start"])
    deadline = date.fromisoformat(goal["deadline"])
    start = min([pace_from, *known])
    end = min(date.fromisoformat(goal["day"]), max([deadline, *known]))
    end = max(end, start)
    reached, pace, last = [], [], 0.0
    for step in range((end - start).days + 1):
        day = start + timedelta(days=step)
        last = known.get(day, last)
        reached.append(last)
        pace.append(pace_on(goal["target"], pace_from, deadline, day))
    return reached, pace, [goal["target"]] * len(reached), start, end


def goal_chart(goal: dict[str, Any], words: dict[str, str]) -> str:
    """The share reached day by day against the pace and the target (no script)."""
    lang, said = words["lang"], _said(words)
    reached, pace, target, start, end = series(goal)
    top = max(goal["target"], *reached, 0.01)
    step = WIDTH / max(1, len(reached) - 1)
    drawn = []
    for values, colour, dashed in ((target, TARGET_COLOUR, True), (pace, PACE_COLOUR, True),
                                   (reached, GOAL_COLOUR, False)):  # fmt: skip
        points = " ".join(
            f"{i * step:.1f},{HEIGHT - v / top * (HEIGHT - 4):.1f}" for i, v in enumerate(values)
        )
        if len(values) == 1:
            points += f" {WIDTH},{HEIGHT - values[0] / top * (HEIGHT - 4):.1f}"
        dash = ' stroke-dasharray="6 4"' if dashed else ""
        drawn.append(
            f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2.5"'
            f'{dash} vector-effect="non-scaling-stroke"/>'
        )
    named = [(said["achieved"], GOAL_COLOUR, reached), (said["pace"], PACE_COLOUR, pace),
             (said["target"], TARGET_COLOUR, target)]  # fmt: skip
    ticks = [(0.0, _day(start.isoformat(), lang)), (1.0, _day(end.isoformat(), lang))]
    return _figure(named, drawn, top, ticks, said["chart"], said["chart"], lang,
                   [values[-1] for _, _, values in named],
                   say=lambda value: share(value, lang))  # fmt: skip


def xlsx_sheets(book: Any, goal: dict[str, Any], words: dict[str, str], suffix: str = "") -> None:
    """The goal's two sheets in ``book`` (write-only openpyxl): the goal, a row per area
    and the totals (numbers as numbers, shares as percentages, the deadline a date); and
    the share day by day against the pace. ``suffix`` tells apart several goals' sheets."""
    from campaigns.files import xlsx_append
    from scripts.reports.xlsx import _number_cell, _sheet_title

    said = _said(words)
    sheet = book.create_sheet(_sheet_title(said["title"] + suffix))

    def pct(value: float | None) -> Any:
        return _number_cell(sheet, value, "0.0%") if value is not None else None

    acted = _acted_shown(goal)
    xlsx_append(sheet, [said["title"], goal["goal"]])
    xlsx_append(sheet, [said["target_share"], pct(goal["target"])])
    xlsx_append(sheet, [said["deadline"], _number_cell(sheet, date.fromisoformat(
        goal["deadline"]), "dd/mm/yyyy")])  # fmt: skip
    xlsx_append(sheet, [said["pace"], pct(goal["pace"])])
    xlsx_append(sheet, [])
    heads = ["area", "population", "recipients", "reached", *(["acted"] if acted else []),
             "outcomes", "share", "standing"]  # fmt: skip
    xlsx_append(sheet, [said[h] for h in heads])
    for area in goal["areas"]:
        xlsx_append(sheet, [area["area"], area["population"], area["recipients"], area["reached"],
                            *([area["acted"]] if acted else []), area["outcomes"],
                            pct(area["share"]),
                            said["behind" if area["behind"] else "ahead"]])  # fmt: skip
    if goal["elsewhere"]:
        xlsx_append(sheet, [said["elsewhere"], None, goal["elsewhere"],
                            goal.get("elsewhere_reached", 0),
                            *([goal.get("elsewhere_acted")] if acted else []),
                            None, None, None])  # fmt: skip
    xlsx_append(sheet, [said["total"], goal["population"], goal["recipients"], goal["reached"],
                        *([goal.get("acted")] if acted else []),
                        goal["outcomes"], pct(goal["share"]), None])  # fmt: skip
    days = book.create_sheet(_sheet_title(said["chart"] + suffix))
    xlsx_append(days, [said["day"], said["outcomes"], said["share"], said["pace"]])
    for row in goal["by_day"]:
        xlsx_append(days, [_number_cell(days, date.fromisoformat(row["day"]), "dd/mm/yyyy"),
                           row["outcomes"], _number_cell(days, row["share"], "0.0%"),
                           _number_cell(days, row["pace"], "0.0%")])  # fmt: skip


def csv_rows(goal: dict[str, Any], words: dict[str, str]) -> list[list[Any]]:
    """The goal's table as CSV rows (``loa report --goal``): a header, a row per area
    (behind the pace first), those outside the goal's areas, the total; each row names
    its goal (a daily file holds several). Shares are fractions (``0.2415``)."""
    said = _said(words)
    heads = ["title", "area", "share", "outcomes", "population", "recipients", "reached",
             "acted", "standing", "pace", "deadline"]  # fmt: skip
    rows: list[list[Any]] = [[said[h] for h in heads]]
    for area in goal["areas"]:
        rows.append([goal["goal"], area["area"], area["share"], area["outcomes"],
                     area["population"], area["recipients"], area["reached"], area["acted"],
                     said["behind" if area["behind"] else "ahead"], goal["pace"],
                     goal["deadline"]])  # fmt: skip
    if goal["elsewhere"]:
        rows.append([goal["goal"], said["elsewhere"], None, None, None, goal["elsewhere"],
                     goal.get("elsewhere_reached", 0), goal.get("elsewhere_acted"), None, None,
                     None])  # fmt: skip
    rows.append([goal["goal"], said["total"], goal["share"], goal["outcomes"],
                 goal["population"], goal["recipients"], goal["reached"],
                 goal.get("acted"), None, goal["pace"], goal["deadline"]])  # fmt: skip
    return rows
