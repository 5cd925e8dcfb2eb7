"""``loa recipient history NUMBER``: every message the ledger holds for one number, across
campaigns, with each message's events (``ledger.history``).

The number is read as a list cell is (``campaigns.phones.normalise``: ``0912 345 678``,
``+84…``, ``84…``, a legacy ``01xx`` number …) and shown masked (``+8491*****78``),
never whole. Messages whose number retention replaced are found by its keyed HMAC
(``LOA_RETENTION_KEY``); without the key they cannot be, and the command says which
campaigns hold such messages.

Exit codes: 0 when the ledger answered, messages found or not ("no messages" is an
answer; ``--json`` gives ``"count": 0``), 2 for a value that is not a textable number
(with why), 1 when the ledger cannot be reached.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from scripts import formats as fmt
from scripts.common import JsonOption
from scripts.output import BAD_INPUT, LABELS, REJECT_LABELS, err, fail, out, print_json

if TYPE_CHECKING:
    from ledger.history import History, HistoryMessage, MessageEvent

app = typer.Typer(
    help="One recipient across campaigns: what the ledger holds for a number.",
    no_args_is_help=True,
)

#: What an event's source means, Vietnamese first.
SOURCES: dict[str, str] = {
    "worker": "gửi · worker",
    "receipt": "báo nhận · receipt",
    "finaliser": "chốt · finaliser",
    "operator": "người vận hành · operator",
    "reaper": "thu hồi · reaper",
    "fallback": "chuyển kênh · fallback",
    "planner": "lập kế hoạch · planner",
    "scheduler": "hẹn giờ · scheduler",
}


@app.command("history")
def history(
    number: Annotated[
        str,
        typer.Argument(
            help="The number, in any form a list may hold it: 0912 345 678, +84912345678, "
            "84912345678, a legacy 01xx number, a foreign +CC number."
        ),
    ],
    as_json: JsonOption = False,
) -> None:
    """Every message sent (or meant) to NUMBER in every campaign: the campaign, status,
    provider instance, parts, attempts, when it was created, sent and ended (Vietnam's
    time), and each of its events (claims, the provider's answers, receipts). The number
    is shown masked. After retention a message is found by the number's keyed HMAC, which
    needs LOA_RETENTION_KEY; without it those messages cannot be searched, and the command
    names the campaigns holding them. Exit 0 whether or not messages were found; exit 2
    when NUMBER is not a textable number."""
    from campaigns.phones import PhoneRejected, mask, normalise

    try:
        phone = normalise(number)
    except PhoneRejected as rejected:
        reason = rejected.reason.value
        fail(
            f"NUMBER: not a textable number: {REJECT_LABELS.get(reason, reason)} ({reason})",
            BAD_INPUT,
        )
    from scripts.common import ledger_runtime, settings
    from scripts.output import errors_as_exit_codes

    loaded = settings()
    key = loaded.retention_secret()
    from ledger.history import history as lookup

    with errors_as_exit_codes(), ledger_runtime(loaded) as runtime:
        found = lookup(runtime.engine, phone.e164, key)
    shown = mask(phone.e164)
    if as_json:
        print_json(_json(found, shown, phone.country, phone.carrier))
    else:
        _print(found, shown, phone.carrier or phone.country)
    if found.unsearchable:
        err.print(f"[yellow]cảnh báo · warning:[/] {_unsearchable(found)}", soft_wrap=True)


def _unsearchable(found: History) -> str:
    listed = ", ".join(found.unsearchable[:5]) + (" …" if len(found.unsearchable) > 5 else "")
    return (
        f"{len(found.unsearchable)} campaign(s) hold messages whose numbers retention "
        f"replaced by a keyed HMAC ({listed}); they cannot be searched without "
        "LOA_RETENTION_KEY, so this history may be incomplete"
    )


def _json(found: History, shown: str, country: str, carrier: str | None) -> dict[str, Any]:
    return {
        "number": shown,
        "country": country,
        "carrier": carrier,
        "count": len(found.messages),
        "messages": [message.as_dict() for message in found.messages],
        "searched_hmac": found.searched_hmac,
        "complete": found.complete,
        "unsearchable_campaigns": found.unsearchable,
    }


def _print(found: History, shown: str, network: str) -> None:
    head = f"Số điện thoại · number [bold]{shown}[/] ({network})"
    if not found.messages:
        out.print(f"{head}: không có tin nhắn nào · no messages in the ledger", soft_wrap=True)
        return
    out.print(
        f"{head}: {fmt.count(len(found.messages))} tin nhắn · messages (giờ Việt Nam · Vietnam time)"
    )
    for n, message in enumerate(found.messages, start=1):
        out.print(_message_table(n, message))
        if message.events:
            out.print(_events_table(message.events))
        else:
            out.print("  [dim]chưa có sự kiện · no events yet[/]")


def _message_table(n: int, message: HistoryMessage) -> Any:
    from rich.table import Table
    from rich.text import Text

    from scripts.campaign_list import when

    table = Table(
        title=Text(fmt.plain(f"{n}. {message.campaign_id} — {message.campaign_name}")),
        title_justify="left",
        show_header=False,
    )
    table.add_column("", style="bold")
    table.add_column("")
    matched = (
        "HMAC (sau thời hạn lưu giữ · after retention)"
        if message.matched_by == "hmac"
        else "số điện thoại · number"
    )
    rows = [
        ("Trạng thái · status", LABELS.get(message.status, message.status)),
        ("Nhà cung cấp · provider", message.provider),
        ("Số tin · parts", fmt.count(message.parts)),
        ("Lần gửi · attempts", fmt.count(message.attempts)),
        (
            "Tạo lúc · created",
            # A welcome joins its arrivals campaign when the visitor arrives and keeps no
            # time of its own: its events below say when each thing happened.
            when(message.created_at)
            if message.created_at is not None
            else "— (lời chào khách đến: xem các sự kiện · a welcome: see its events)",
        ),
        ("Gửi lúc · sent", when(message.sent_at)),
        ("Kết thúc · final", when(message.final_at)),
        ("Mã lỗi · error code", message.error_code or fmt.NOTHING),
        ("Mã tin của nhà cung cấp · provider id", message.provider_message_id or fmt.NOTHING),
        ("Tìm theo · matched by", matched),
    ]
    for label, value in rows:
        table.add_row(label, Text(value))
    return table


def _events_table(events: list[MessageEvent]) -> Any:
    from rich.table import Table
    from rich.text import Text

    from scripts.campaign_list import when

    table = Table(title="  Sự kiện · events", title_justify="left")
    table.add_column("Lúc\nat", no_wrap=True)
    table.add_column("Nguồn\nsource")
    table.add_column("Chuyển\nmove")
    table.add_column("Mã\ncode")
    table.add_column("Chi tiết\ndetail", overflow="fold", ratio=1)
    for event in events:
        move = f"{event.from_status or fmt.NOTHING} → {event.to_status or fmt.NOTHING}"
        table.add_row(
            when(event.at, seconds=True),
            SOURCES.get(event.source, event.source),
            move,
            Text(event.code or fmt.NOTHING),
            Text(_detail(event.detail)),
        )
    return table


def _detail(detail: dict[str, Any] | None) -> str:
    """An event's detail in a few words: the serving network and the receipt's arrival
    (Vietnam's time), then any other key as ``key=value``."""
    from scripts.campaign_list import when

    if not detail:
        return ""
    said = []
    for name, value in detail.items():
        if name == "network":
            said.append(f"mạng · network: {value}")
        elif name == "received_at" and isinstance(value, str):
            try:
                moment = datetime.fromisoformat(value)
            except ValueError:
                said.append(f"received_at={value}")
            else:
                said.append(f"nhận lúc · received {when(moment, seconds=True)}")
        else:
            said.append(f"{name}={value}")
    return "; ".join(said)
