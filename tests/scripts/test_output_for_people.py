"""Every reporting ``loa`` command, on a small real campaign, prints for people and for
scripts, never Python: no ``{'…'}``, ``None``, ``True`` or ``False`` in what a person
reads; no ``"None"`` text in the JSON, counts as integers, money as numbers."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.campaigns.test_arrivals import RULES
from tests.scripts.test_cli import EXAMPLE, loa, small_list
from tests.scripts.test_status_cli import CAMPAIGN, closed_hours, spec_with

WAITING = "bluezone-waiting"
ENV = {
    "LOA_RETENTION_KEY": "036ef7caacd3fcf34f37feb77e7a8c9c99ac82dae5720e70",
    "LOA_AUDIT_SIGNING_KEY": "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=",  # 1..32
}

#: What Python prints and people should never see.
PYTHON = re.compile(r"\{'|\bNone\b|\bTrue\b|\bFalse\b")

#: Keys that always count something: integers, never floats, text or booleans.
COUNTS = {
    "rows_read", "rejected", "duplicates", "suppressed", "recipients", "parts", "final",
    "queued", "sending", "sent", "delivered", "undelivered", "failed", "expired", "unknown",
    "cancelled", "planned", "valid", "batches_enqueued", "messages", "eta_seconds", "sealed",
    "events", "added", "requeued", "parts_billed", "welcomed", "read",
}  # fmt: skip


@pytest.fixture(scope="module")
def place(tmp_path_factory) -> Path:
    """A ledger with a finished campaign, one paused outside its hours, an arrivals
    file, and the files the commands read."""
    root = tmp_path_factory.mktemp("people")
    listing = str(small_list(root))
    done = loa("campaign", "launch", str(EXAMPLE), "-r", listing, cwd=root, env=ENV)
    assert done.returncode == 0, done.stderr
    night = spec_with(root, "night.toml", hours=str(closed_hours()), new_id=WAITING)
    waiting = loa(
        "campaign", "launch", str(night), "-r", listing, "--timeout", "0", cwd=root, env=ENV
    )
    assert waiting.returncode == 1, waiting.stderr
    assert loa("campaign", "pause", WAITING, cwd=root, env=ENV).returncode == 0
    shutil.copy(RULES, root / "arrivals.toml")
    at = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    for run in ("human", "json"):  # an ingested file moves to done/: one per run
        (root / f"ferry-{run}.csv").write_text(
            f"event_id,phone,arrived_at,area,home\n{run}-1,+82100000{len(run):04d},{at},586,\n"
            f"{run}-2,x,{at},586,\n",
            encoding="utf-8",
        )
    (root / "dnc.csv").write_text("phone\n0912000111\n", encoding="utf-8")
    return root


#: (arguments, takes --json). Files a command writes are named per run ({run}).
COMMANDS: list[tuple[tuple[str, ...], bool]] = [
    (("campaign", "plan", str(EXAMPLE), "-r", "list.csv"), True),
    (("campaign", "launch", str(EXAMPLE), "-r", "list.csv"), True),  # again: adds nothing
    (("campaign", "status", CAMPAIGN), True),
    (("campaign", "status", WAITING), True),
    (("campaign", "status", CAMPAIGN, "--watch"), True),
    (("campaign", "pause", WAITING), True),  # already paused: changes nothing
    (("campaign", "list"), True),
    (("recipients", "check", "list.csv"), True),
    (("suppress", "import", "dnc.csv", "--list", "dnc"), True),
    (("suppress", "show",), True),
    (("suppress", "add", "0912000222", "--list", "dnc"), False),
    (("suppress", "remove", "0912000222", "--list", "dnc"), False),
    (("text", "check", "Xin chào “Ninh Thuận”"), True),
    (("provider", "list"), True),
    (("provider", "halts"), True),
    (("provider", "test", "sandbox"), True),
    (("audit", "seal"), True),
    (("audit", "verify"), True),
    (("audit", "checkpoint"), True),
    (("audit", "export", "-c", CAMPAIGN, "--out", "export-{run}"), True),
    (("report", CAMPAIGN, "--out", "report-{run}.html"), True),
    (("report", "--daily", "today", "--out", "daily-{run}.csv"), True),
    (("arrivals", "ingest", "ferry-{run}.csv", "--rules", "arrivals.toml"), True),
    (("finalise",), True),
    (("reap",), True),
    (("retention", "apply"), True),
    (("db", "upgrade"), True),
    (("config", "show"), True),
    (("campaign", "cancel", WAITING), False),  # last: once only
]  # fmt: skip


def strings(data: Any) -> Iterator[tuple[str, Any]]:
    """Every (key, value) pair at any depth (lists' items under their list's key)."""
    if isinstance(data, dict):
        for key, value in data.items():
            yield str(key), value
            yield from strings(value)
    elif isinstance(data, list):
        for item in data:
            yield from strings(item)


def check_json(text: str, command: str) -> None:
    documents = [json.loads(line) for line in text.splitlines()] if "--watch" in command else []
    documents = documents or [json.loads(text)]
    for document in documents:
        for key, value in strings(document):
            if isinstance(value, str):
                assert value not in ("None", "True", "False"), (command, key, value)
                assert not value.startswith("{'"), (command, key, value)
            if key in COUNTS and value is not None and not isinstance(value, dict | list):
                assert type(value) is int, (command, key, value)
            if key == "cost" and value is not None:
                assert type(value) is float, (command, key, value)


@pytest.mark.parametrize(
    ("args", "has_json"),
    COMMANDS,
    ids=[" ".join(a[:2]) + f"-{n}" for n, (a, _) in enumerate(COMMANDS)],
)
def test_every_reporting_command_prints_for_people_and_scripts(place, args, has_json):
    command = " ".join(args)
    for as_json in (False, True) if has_json else (False,):
        run = "json" if as_json else "human"
        given = [a.format(run=run) for a in args] + (["--json"] if as_json else [])
        result = loa(*given, cwd=place, env=ENV)
        assert result.returncode in (0, 1), (command, result.stderr)  # 1: not all final
        assert "Traceback" not in result.stderr, (command, result.stderr)
        if as_json:
            check_json(result.stdout, command)
            continue
        assert result.stdout.strip(), command
        said = [result.stdout] + [
            line for line in result.stderr.splitlines() if not line.startswith("{")
        ]  # the logs are JSON lines for machines
        for text in said:
            found = PYTHON.search(text)
            assert found is None, (command, text[max(0, found.start() - 80) : found.end() + 80])


def test_the_formats_are_vietnamese_and_never_python():
    from scripts import formats as fmt

    assert fmt.count(1_234_567) == "1.234.567" and fmt.percent(0.9612) == "96,1 %"
    assert fmt.money(2_540_300, "VND") == "2.540.300 ₫" and fmt.money(12.5, "USD") == "12,50 USD"
    assert fmt.money(None, "VND") == fmt.value(None) == "—"
    assert fmt.duration(3 * 3600 + 5 * 60) == "3 giờ 5 phút" and fmt.duration(45.4) == "45 giây"
    assert fmt.value(True) == "có · yes" and fmt.value({"a": 1, "b": None}) == "a: 1; b: —"
    assert fmt.setting(False) == "false" and fmt.setting(None) == "—"
    moment = datetime(2026, 11, 30, 0, 0, tzinfo=UTC)
    assert fmt.moment(moment) == "07:00 30/11/2026 giờ Việt Nam (UTC+07:00)"


def test_json_holds_numbers_and_times_not_their_reprs(capsys):
    from decimal import Decimal

    from scripts.output import print_json

    moment = datetime(2026, 11, 30, 0, 0, tzinfo=UTC)
    print_json({"parts": Decimal("12"), "cost": Decimal("2.5"), "at": moment, "none": None})
    assert json.loads(capsys.readouterr().out) == {
        "parts": 12,
        "cost": 2.5,
        "at": "2026-11-30T00:00:00+00:00",
        "none": None,
    }


def test_text_from_outside_cannot_drive_the_terminal():
    from scripts import formats as fmt

    """A campaign name holding an escape sequence (clear the screen, retitle the window)
    or a right-to-left override is printed with replacement characters."""
    name = "Bluezone\x1b[2J\x1b]0;owned\x07 \u202egnp.exe\x00"
    shown = fmt.plain(name)
    assert not any(ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0 for ch in shown)
    assert "\u202e" not in shown and shown.startswith("Bluezone\ufffd[2J")
    assert fmt.plain("Ninh Hải\tdòng 2\nxong") == "Ninh Hải\tdòng 2\nxong"


def test_why_a_campaign_waits_is_vietnamese_first_and_the_english_kept():
    """Loa's own reasons (ledger.waiting, the pause) are said in Vietnamese before the
    English; a provider's words, which Loa cannot translate, are kept as they came."""
    from ledger.waiting import WaitingFor
    from scripts import formats as fmt

    hours = "sending hours 07:00-22:00 (Vietnam time)"
    assert fmt.why_words(hours) == f"khung giờ gửi 07:00-22:00 (giờ Việt Nam) · {hours}"
    late = hours + "; the validity ends before they open: what is left will expire unsent"
    assert fmt.why_words(late).startswith("khung giờ gửi 07:00-22:00 (giờ Việt Nam); hết hiệu")
    assert fmt.why_words("paused by an operator") == (
        "tạm dừng bởi người vận hành · paused by an operator"
    )
    assert fmt.why_words("sandbox: 0x0E simulated") == "sandbox: 0x0E simulated"
    # Every fixed sentence ledger.waiting can say has its Vietnamese (read from its code,
    # so a new one without a translation fails here).
    import ast
    import inspect

    from ledger import waiting as source

    said = {
        node.value.value
        for node in ast.walk(ast.parse(inspect.getsource(source)))
        if isinstance(node, ast.keyword) and node.arg == "why"
        and isinstance(node.value, ast.Constant)
    }  # fmt: skip
    assert len(said) >= 4
    assert {why for why in said if not fmt.why_words(why).endswith(f" · {why}")} == set()
    waiting = WaitingFor("paused", why="paused by an operator").as_dict()
    assert "  vì · why: tạm dừng bởi người vận hành · paused by an operator" in (
        fmt.waiting_lines(waiting)
    )


def test_a_launched_campaign_shows_the_parts_it_will_bill_beside_those_billed():
    """On Redis a launch returns before anything is sent: "parts billed 0" alone read as
    if the plan had been lost."""
    from rich.console import Console

    from scripts.output import summary_table

    data = {
        "rows_read": 5, "rejected": 1, "rejected_by_reason": {"empty": 1}, "suppressed": 0,
        "duplicates": 0, "recipients": 4, "parts_planned": 12, "parts": 0,
        "statuses": {"queued": 4, "sent": 0, "delivered": 0, "failed": 0},
    }  # fmt: skip

    class Summary:  # what summary_table reads of a CampaignSummary
        def __init__(self, data):
            self.data = data

        def as_dict(self):
            return self.data

    console = Console(width=100, record=True)
    console.print(summary_table(Summary(data), "bluezone"))
    shown = console.export_text()
    assert "Số tin sẽ tính cước · parts to bill" in shown and "12" in shown
    assert "Số tin tính cước · parts billed" in shown
    console = Console(width=100, record=True)
    console.print(summary_table(Summary({**data, "parts_planned": None}), "arrivals"))
    assert "parts to bill" not in console.export_text()  # an arrivals campaign has no plan
