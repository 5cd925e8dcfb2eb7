"""Every breakdown of a report adds up to its summary, in every format: a campaign with
every outcome (delivered, undelivered, failed, unknown, expired, still sent, in flight,
still queued, a blank district) and a cancelled one, on SQLite and PostgreSQL, through
the real ``loa report`` command. Each table's rows must sum to its totals row, and the
totals row must equal the summary's count per status: what a reader checks by hand."""

from __future__ import annotations

import csv
import json
from collections import Counter
from html.parser import HTMLParser

import pytest
from openpyxl import load_workbook

from tests.ledger.report_scenes import build, spec
from tests.scripts.test_cli import loa

MIXED = {"delivered": 21, "undelivered": 6, "failed": 5, "unknown": 4, "expired": 5,
         "sent": 6, "sending": 3, "queued": 10}  # fmt: skip
CANCELLED = {"delivered": 15, "undelivered": 3, "failed": 2, "unknown": 2, "sent": 2,
             "sending": 1, "cancelled": 14}  # fmt: skip
NOT_REACHED = ("undelivered", "failed", "expired", "unknown", "cancelled")
BREAKDOWNS = ("by_column", "by_carrier", "by_provider", "by_hour")


class Tables(HTMLParser):
    """The page's tables marked ``data-breakdown``: per table, its body rows and its
    totals rows, each ``{status: count}`` from the cells marked ``data-status``."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, dict[str, list[dict[str, int]]]] = {}
        self.badges: list[tuple[str, str]] = []
        self._table = self._part = self._status = self._badge = None
        self._text = ""

    def handle_starttag(self, tag, attrs):
        found = dict(attrs)
        if tag == "table" and "data-breakdown" in found:
            self._table = self.tables.setdefault(found["data-breakdown"], {"body": [], "foot": []})
        elif self._table is not None and tag in ("tbody", "tfoot"):
            self._part = "body" if tag == "tbody" else "foot"
        elif self._table is not None and self._part and tag == "tr":
            self._table[self._part].append({})
        elif self._table is not None and tag == "td" and "data-status" in found:
            self._status, self._text = found["data-status"], ""
        elif tag == "span" and "data-state" in found:
            self._badge, self._text = found["data-state"], ""

    def handle_data(self, data):
        self._text += data

    def handle_endtag(self, tag):
        if tag == "td" and self._status is not None:
            self._table[self._part][-1][self._status] = int(self._text.replace(".", ""))
            self._status = None
        elif tag == "span" and self._badge is not None:
            self.badges.append((self._badge, self._text))
            self._badge = None
        elif tag == "table":
            self._table = self._part = None


def summed(rows: list[dict[str, int]]) -> Counter[str]:
    total: Counter[str] = Counter()
    for row in rows:
        total.update(row)
    return total


@pytest.fixture
def scenes(engine):
    mixed = spec("mixed-2026", "Nhắc lịch tiêm chủng — Ninh Thuận")
    cancelled = spec("cancelled-2026", "Cài đặt ứng dụng Bluezone — Ninh Thuận")
    made = {
        mixed.id: build(engine, mixed, MIXED, blank_districts=2, batch_size=20, unusable=3),
        cancelled.id: build(engine, cancelled, CANCELLED, seed=11, batch_size=20),
    }
    engine.dispose()  # the command opens the ledger on its own
    return made


def test_every_breakdown_adds_up_to_the_summary_in_every_format(scenes, ledger_url, tmp_path):
    env = {"LOA_DATABASE_URL": ledger_url}
    for campaign, statuses in scenes.items():
        recipients = sum(statuses.values())
        made = {}
        for fmt in ("html", "xlsx", "csv"):
            path = tmp_path / f"{campaign}.{fmt}"
            run = loa("report", campaign, "-o", str(path), "--json", cwd=tmp_path, env=env)
            assert run.returncode == 0, run.stderr
            made[fmt] = (path, json.loads(run.stdout))

        # JSON: the figures every format is made from.
        data = made["html"][1]
        assert data["statuses"] == statuses and data["recipients"] == recipients
        assert data["reached"] == statuses["delivered"]
        for key in BREAKDOWNS:
            assert summed(data[key].values()) == Counter(statuses), (campaign, key)
        assert "not_sent" in data["by_hour"]  # queued, in flight, expired, cancelled
        reasons = Counter()
        for failure in data["failures"]:
            reasons[failure["status"]] += failure["recipients"]
            assert failure["meaning"], failure  # every code says what it means
        assert reasons == Counter({s: n for s, n in statuses.items() if s in NOT_REACHED})

        # HTML: each table's rows sum to its totals row, which is the summary's.
        page = Tables()
        page.feed(made["html"][0].read_text(encoding="utf-8"))
        summary = summed(page.tables["summary"]["body"])
        assert summary == Counter({**statuses, "total": recipients}), campaign
        for key in BREAKDOWNS:
            table = page.tables[key]
            (foot,) = table["foot"]
            assert summed(table["body"]) == Counter(foot), (campaign, key)
            assert foot == {**{s: statuses[s] for s in statuses}, "total": recipients}, key
        failures = page.tables["failures"]
        assert summed(failures["body"]) == reasons
        assert failures["foot"] == [{"total": sum(reasons.values())}]
        state = "cancelled" if "cancelled" in statuses else "running"
        ((badge, text),) = page.badges
        assert badge == state and text.startswith("Trạng thái: ")
        if state == "cancelled":
            assert "Đã huỷ" in text

        # XLSX: the summary sheet, each breakdown sheet's rows and totals row, the reasons.
        book = load_workbook(made["xlsx"][0], read_only=True)
        sheets = {name: list(book[name].iter_rows(values_only=True)) for name in book.sheetnames}
        labels = sheets["Tổng hợp"]
        header = sheets["Theo nhà mạng"][0]
        names = {label: key for key, label in zip(ALL_STATES, header[1:-1], strict=True)}
        shown = {names[row[0].strip()]: row[1] for row in labels if row and row[0].strip() in names}
        assert {s: n for s, n in shown.items() if n} == statuses
        for name in ("Theo Huyện", "Theo nhà mạng", "Theo nhà cung cấp", "Theo giờ gửi"):
            head, *body, foot = sheets[name]
            assert head[1:-1] == header[1:-1] and foot[0] == "Tổng"
            assert [sum(column) for column in zip(*(row[1:] for row in body), strict=True)] == list(
                foot[1:]
            ), name
            assert dict(zip(ALL_STATES, foot[1:-1], strict=True)) == {
                s: statuses.get(s, 0) for s in ALL_STATES
            }, name
            assert foot[-1] == recipients
        head, *body, foot = sheets["Lỗi"]
        assert sum(row[3] for row in body) == foot[3] == sum(reasons.values())
        outcomes: Counter[str] = Counter()
        for row in body:
            outcomes[names[row[4]]] += row[3]
        assert outcomes == reasons
        context = {row[0]: row[1] for row in labels if row}
        assert context["Trạng thái"].startswith("Đã huỷ" if state == "cancelled" else "Đang gửi")

        # CSV: one row per recipient, in its status (named as the other tables name it).
        with made["csv"][0].open(encoding="utf-8-sig") as handle:
            named = Counter(row["Trạng thái"] for row in csv.DictReader(handle))
        assert {names[label]: n for label, n in named.items()} == statuses


ALL_STATES = ("delivered", "undelivered", "failed", "expired", "unknown", "unreachable",
              "cancelled", "unneeded", "sent", "sending", "queued", "standby")  # fmt: skip
