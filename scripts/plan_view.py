"""``loa campaign plan``'s tables: the counts, the routing result, and recipients, parts
and cost per provider and carrier, fitted to the terminal (``scripts.tables``)."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from scripts import formats as fmt
from scripts.output import counts_table
from scripts.tables import fit, left_out_note

if TYPE_CHECKING:
    from rich.table import Table


def plan_tables(data: dict[str, Any], title: str) -> list[Table]:
    """A dry run: the counts, then recipients, parts and cost per provider and carrier."""
    from rich.table import Table

    # Nothing is billed by a plan: its parts are those a launch would bill (status counts
    # the parts billed so far, 0 until the first send).
    counts = counts_table(
        {**data, "parts_planned": data["parts"]}, title,
        ("rows_read", "rejected", "suppressed", "duplicates", "legacy_converted", "planned", "parts_planned"),
        ("rejected", "suppressed"),
    )  # fmt: skip
    # A narrow terminal leaves out the encoding, then the provider (when there is one),
    # then the parts, a note saying so, rather than cut a carrier's name ("vietnamob…")
    # or a cost.
    single = len({line["provider"] for line in data["by_provider"]}) == 1
    lines, left_out = fit(
        lambda hidden: _lines_table(data, hidden),
        ("encoding", "provider", "parts") if single else ("encoding", "parts"),
    )
    tables: list[Table] = [counts, lines]
    if len(data.get("routing") or ()) > 1:
        tables.insert(1, fit(lambda _: routing_table(data))[0])
    narrow = left_out_note([_LINE_COLUMNS[key] for key in left_out])
    if narrow:
        said = Table(show_header=False, box=None)
        said.add_row(narrow)
        tables.append(said)
    if data.get("channels"):
        tables.insert(1, channels_table(data))
    if data.get("goal"):
        tables.append(goal_note(data["goal"]))
    if data.get("khong_dau"):
        note = Table(show_header=False, box=None)
        note.add_row(
            f"[yellow]Không dấu[/] (diacritics removed) for: {', '.join(data['khong_dau'])}"
        )
        tables.append(note)
    return tables


def channels_table(data: dict[str, Any]) -> Table:
    """Per channel, in the order each recipient is tried: what it sends and costs; then the
    worst case (nobody reached before the SMS), the expected case (``--reach``) and what
    it saves against SMS for everyone."""
    from rich.table import Table

    plan, currency = data["channels"], data.get("currency")
    table = Table(title="Theo kênh · by channel (in order)", title_justify="left")
    for title in ("kênh\nchannel", "nhà cung cấp\nprovider", "người nhận\nrecipients",
                  "tin\nmessages / parts", "chi phí tối đa\nat most"):  # fmt: skip
        table.add_column(title, justify="left" if "kênh" in title or "cung" in title else "right")
    for row in plan["channels"]:
        if row["kind"] == "template":
            provider = f"{row['provider']} (mẫu · template; chờ · waits {row['deliver_within']})"
            if row.get("beyond_quota") and row["when_halted"] == "next":
                provider += (
                    f"\nhạn mức · quota {fmt.count(row['daily_quota'])}/ngày · day: "
                    f"{fmt.count(row['beyond_quota'])} sang kênh sau · go by the next channel"
                )
            elif (row.get("days") or 0) > 1:
                provider += (
                    f"\nhạn mức · quota {fmt.count(row['daily_quota'])}/ngày · day: "
                    f"{fmt.count(row['days'])} ngày · days (when_halted = wait)"
                )
            sent = fmt.count(row["messages"])
        else:
            provider, sent = "SMS (định tuyến · routing)", fmt.count(row["parts"])
        table.add_row(
            row["name"], provider, fmt.count(row["recipients"]), sent,
            fmt.money(row["cost"], currency),
        )  # fmt: skip
    table.add_section()
    said = [
        ("Tệ nhất: mọi người nhận SMS · worst case: everyone on SMS", plan["worst"]),
        (
            "… và mọi tin mẫu đến quá muộn (nhận hai lần) · and every template delivered "
            "too late (doubles)",
            plan["worst_with_doubles"],
        ),
        (
            "SMS cho tất cả, không kênh nào khác · SMS for everyone, no other channel",
            plan["sms_for_everyone"],
        ),
    ]
    if plan.get("reach") is not None:
        share = fmt.percent(plan["reach"])
        said.insert(
            0,
            (
                f"Dự kiến ({share} đến trước SMS) · expected ({share} reached before SMS)",
                plan["expected"],
            ),
        )
        said.append(("Tiết kiệm dự kiến · expected saving", plan["saved"]))
    for label, amount in said:
        table.add_row(label, "", "", "", fmt.money(amount, currency), style="bold")
    return table


_LINE_COLUMNS = {
    "provider": "nhà cung cấp\nprovider",
    "carrier": "nhà mạng\ncarrier",
    "encoding": "mã hoá\nencoding",
    "recipients": "người nhận\nrecipients",
    "parts": "số tin\nparts",
    "cost": "chi phí\ncost",
}


def _lines_table(data: dict[str, Any], hidden: frozenset[str] = frozenset()) -> Table:
    """A dry run's recipients, parts and cost per provider, carrier and encoding, with
    their totals; without the columns in ``hidden`` (keys of ``_LINE_COLUMNS``)."""
    from rich.table import Table

    lines = Table(title="Theo nhà mạng · by provider and carrier", title_justify="left")
    shown = [key for key in _LINE_COLUMNS if key not in hidden]
    for key in shown:
        right = key in ("recipients", "parts", "cost")
        lines.add_column(_LINE_COLUMNS[key], justify="right" if right else "left")
    currency = data.get("currency")
    for line in data["by_provider"]:
        cells = {
            "recipients": fmt.count(line["recipients"]),
            "parts": fmt.count(line["parts"]),
            "cost": fmt.money(line["cost"], currency),
        }
        lines.add_row(*(cells.get(key, line.get(key, "")) for key in shown))
    lines.add_section()
    totals = {
        "recipients": fmt.count(data["planned"]),
        "parts": fmt.count(data["parts"]),
        "cost": fmt.money(data.get("cost"), currency),
    }
    lines.add_row(*(totals.get(key, "") for key in shown), style="bold")
    return lines


_RULES = {
    "carrier": "nhà mạng · carrier {}",
    "country": "quốc gia · country {}",
    "other_countries": "nước khác · other countries",
    "default": "mặc định · default",
    "fallback": "dự phòng {} · fallback (halt)",
}


def routing_table(data: dict[str, Any]) -> Table:
    """The routing result: each provider, the rules that send it numbers, and its share."""
    from rich.table import Table

    table = Table(title="Định tuyến · routing", title_justify="left")
    table.add_column("nhà cung cấp\nprovider")
    table.add_column("quy tắc\nrules")
    table.add_column("người nhận\nrecipients", justify="right")
    table.add_column("số tin\nparts", justify="right")
    rules: dict[str, list[str]] = {}
    for rule in data["routing"]:
        said = _RULES[rule["rule"]].format(rule["value"])
        rules.setdefault(rule["provider"], []).append(said)
    shares = data.get("providers") or {}
    for provider in sorted(rules.keys() | shares.keys()):
        share = shares.get(provider, {"recipients": 0, "parts": 0})
        table.add_row(
            provider,
            "\n".join(rules.get(provider, ())),
            fmt.count(share["recipients"]),
            fmt.count(share["parts"]),
        )
    return table


def goal_note(goal: dict[str, Any]) -> Table:
    """The goal the campaign serves, in a line; its deadline passed said in yellow."""
    from rich.markup import escape
    from rich.table import Table

    left = goal["days_left"]
    when = (f"còn {fmt.count(left)} ngày · {fmt.count(left)} days left" if left >= 0
            else f"[yellow]đã quá hạn {fmt.count(-left)} ngày · the deadline has passed[/]")  # fmt: skip
    note = Table(show_header=False, box=None)
    note.add_row(
        f"Mục tiêu · goal: {escape(goal['name'])}: {fmt.percent(goal['target'])} của "
        f"{fmt.count(goal['population'])} người ở {fmt.count(goal['areas'])} khu vực · "
        f"of the population of {fmt.count(goal['areas'])} areas, trước · by "
        f"{date.fromisoformat(goal['deadline']):%d/%m/%Y} ({when})"
    )
    return note


def follow_up_table(chosen: dict[str, Any]) -> Table:
    """Who a follow-up texts, by why, and who it leaves out: the rows add up to the first
    campaign's recipients."""
    from rich.table import Table

    table = Table(title="Chọn · chosen (by why)", title_justify="left")
    table.add_column("lý do · why", justify="left")
    table.add_column("người nhận · recipients", justify="right")
    for why, count in chosen["by_reason"].items():
        table.add_row(WHY.get(why, why), fmt.count(count))
    table.add_row("không chọn · not chosen (reached, acted, another why)", fmt.count(
        chosen["left_out"] - chosen["retained"]))  # fmt: skip
    table.add_row("số đã ẩn danh · number replaced by retention", fmt.count(chosen["retained"]))
    table.add_row("[b]tổng · total[/]", "[b]" + fmt.count(
        sum(chosen["by_reason"].values()) + chosen["left_out"]) + "[/]")  # fmt: skip
    return table


WHY = {
    "undelivered": "không đến máy · undelivered",
    "failed": "thất bại · failed",
    "unknown": "không rõ · unknown",
    "expired": "hết hạn · expired",
    "unreachable": "không liên lạc được · unreachable",
    "cancelled": "đã hủy · cancelled",
    "not-acted": "chưa thực hiện · not acted",
}
