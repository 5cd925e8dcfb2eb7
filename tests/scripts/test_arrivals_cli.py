"""``loa arrivals ingest`` as a scheduler runs it on an inbox folder: files taken once,
receipts and rejects beside them, half-written and unreadable files left alone or set
aside, a replayed file welcoming nobody, bad rules named with exit code 2."""

from __future__ import annotations

import json
import os
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from campaigns.hours import VIETNAM
from tests.campaigns.test_arrivals import RULES
from tests.scripts.test_cli import loa


def lately() -> datetime:
    """When a test's visitors arrived: five minutes ago, one instant for all of them, so
    that they never fall in two months, and the month's campaign is the arrival's."""
    return datetime.now(UTC) - timedelta(minutes=5)


def month_campaign(arrived: datetime) -> str:
    """The arrivals campaign of the month the visitors arrived in, in Vietnam."""
    return f"arrivals-ninh-thuan-{arrived.astimezone(VIETNAM):%Y-%m}"


def write_csv(path: Path, count: int, first: int = 0, arrived: datetime | None = None) -> None:
    at = (arrived or lately()).isoformat()
    lines = ["event_id,phone,arrived_at,area,home"]
    lines += [f"csv-{i},+8210{i:08d},{at},586," for i in range(first, first + count)]
    lines += [f"csv-bad,chưa có,{at},586,", f"csv-area,+821099999999,{at},999,"]
    lines += [f"csv-home,0912345678,{at},582,1"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


#: The settle time the test asks for: far longer than the command takes to start on a
#: loaded machine, so a file written just before it is always "still being copied".
SETTLE = "600"


def settled(path: Path) -> None:
    """As if copied an hour ago."""
    then = time.time() - 3600
    os.utime(path, (then, then))


def test_an_inbox_is_taken_once(tmp_path):
    shutil.copy(RULES, tmp_path / "arrivals.toml")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    arrived = lately()
    write_csv(inbox / "ferry.csv", 20, arrived=arrived)
    at = arrived.isoformat()
    (inbox / "bus.jsonl").write_text(
        "\n".join(
            json.dumps(
                {"event_id": f"j-{i}", "phone": f"+7916{i:07d}", "arrived_at": at, "area": "585"}
            )
            for i in range(5)
        )
        + "\nnot json\n",
        encoding="utf-8",
    )
    (inbox / "broken.csv").write_bytes(b"event_id,phone,arrived_at,area\n\xff\xfe,1,2,3\n")
    (inbox / "copying.csv.part").write_text("event_id,phone\n", encoding="utf-8")
    for name in ("ferry.csv", "bus.jsonl", "broken.csv", "copying.csv.part"):
        settled(inbox / name)
    # Still being written, perhaps.
    write_csv(inbox / "just-arrived.csv", 3, first=100, arrived=arrived)

    run = loa("arrivals", "ingest", "inbox", "--settle", SETTLE, "--json", cwd=tmp_path)
    assert run.returncode == 1, run.stderr  # rows were refused: see the rejects
    answer = json.loads(run.stdout)
    files = {f["file"]: f for f in answer["files"]}
    assert set(files) == {"ferry.csv", "bus.jsonl", "broken.csv"}
    assert answer["settling"] == ["just-arrived.csv"]  # said, and left for the next run
    ferry, bus = files["ferry.csv"], files["bus.jsonl"]
    assert (ferry["read"], ferry["welcomed"], ferry["skipped_by_reason"]) == (
        23,
        20,
        {"resident": 1},
    )
    assert ferry["rejected_by_reason"] == {"bad_number": 1, "unknown_area": 1}
    assert (bus["read"], bus["welcomed"], bus["rejected_by_reason"]) == (
        6,
        5,
        {"unreadable_row": 1},
    )
    assert "not UTF-8" in files["broken.csv"]["problem"]
    assert sorted(p.name for p in (inbox / "done").iterdir()) == [
        "bus.jsonl", "bus.jsonl.receipt.json", "bus.jsonl.rejects.csv",
        "ferry.csv", "ferry.csv.receipt.json", "ferry.csv.rejects.csv",
    ]  # fmt: skip
    assert (inbox / "failed" / "broken.csv").exists()
    assert {p.name for p in inbox.iterdir() if p.is_file()} == {
        "copying.csv.part",
        "just-arrived.csv",
    }
    rejects = (inbox / "done" / "ferry.csv.rejects.csv").read_text(encoding="utf-8-sig")
    assert "bad_number,phone" in rejects and "unknown_area,area" in rejects
    receipt = json.loads((inbox / "done" / "ferry.csv.receipt.json").read_text(encoding="utf-8"))
    assert receipt["welcomed"] == 20

    # The same file dropped again: every event was taken, nobody is welcomed twice.
    shutil.copy(inbox / "done" / "ferry.csv", inbox / "ferry-again.csv")
    settled(inbox / "ferry-again.csv")
    settled(inbox / "just-arrived.csv")
    again = loa("arrivals", "ingest", "inbox", "--settle", SETTLE, "--json", cwd=tmp_path)
    files = {f["file"]: f for f in json.loads(again.stdout)["files"]}
    assert files["ferry-again.csv"]["welcomed"] == 0
    assert files["ferry-again.csv"]["skipped_by_reason"] == {"repeated_event": 21}
    assert files["just-arrived.csv"]["welcomed"] == 3

    status = loa("campaign", "status", month_campaign(arrived), "--json", cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["recipients"] == 28  # 20 + 5 + 3 welcomes


def test_bad_rules_and_paths_are_named_with_exit_2(tmp_path):
    (tmp_path / "a.csv").write_text("event_id,phone\n", encoding="utf-8")
    bad = tmp_path / "bad.toml"
    bad.write_text(RULES.read_text(encoding="utf-8").replace('"586" = "Ninh Hải"\n', "").replace(
        "once_per_days = 30", "once_per_days = -1"), encoding="utf-8")  # fmt: skip
    cases = {
        ("arrivals", "ingest", "nowhere", "-r", str(RULES)): "nowhere: no such file or folder",
        ("arrivals", "ingest", "a.csv", "-r", "missing.toml"): "missing.toml: cannot read",
        ("arrivals", "ingest", "a.csv", "-r", str(bad)): "arrivals.once_per_days",
        ("arrivals", "ingest", "a.csv", "-r", str(RULES)): "the header lacks area, arrived_at",
    }
    for args, needle in cases.items():
        result = loa(*args, cwd=tmp_path)
        assert result.returncode == 2 and needle in result.stderr, (args, result.stderr)
    assert (tmp_path / "a.csv").exists()  # a file refused whole is left where it was


def test_hostile_rows_are_refused_alone_and_never_block_the_inbox(tmp_path):
    """A time in year 0 once crashed the ingest with a traceback, and the file, left in
    the inbox, stopped every later run; so did a CSV field over 128 KB or JSON nested past
    Python's limit. Each is now a rejected row, and the rows after it are taken."""
    shutil.copy(RULES, tmp_path / "arrivals.toml")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    at = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    header = "event_id,phone,arrived_at,area\n"
    (inbox / "a-times.csv").write_text(
        header + "t1,+821020000001,0001-01-01T00:00:00+14:00,586\n"
        "t2,+821020000002,1970-01-01T00:00:00Z,586\n"
        f"t3,+821020000003,{at},586\n",
        encoding="utf-8",
    )
    (inbox / "b-huge.csv").write_text(
        header + f"h1,+821020000004,{at},{'x' * 200_000}\nh2,+821020000005,{at},586\n",
        encoding="utf-8",
    )
    good = {"event_id": "j1", "phone": "+821020000006", "arrived_at": at, "area": "586"}
    (inbox / "c-deep.jsonl").write_text(
        "[" * 100_000 + "]" * 100_000 + "\n" + json.dumps(good) + "\n", encoding="utf-8"
    )
    for path in inbox.iterdir():
        settled(path)

    run = loa("arrivals", "ingest", "inbox", "--settle", SETTLE, "--json", cwd=tmp_path)
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    files = {f["file"]: f for f in json.loads(run.stdout)["files"]}
    assert files["a-times.csv"]["rejected_by_reason"] == {"bad_time": 1, "old_time": 1}
    assert files["b-huge.csv"]["rejected_by_reason"] == {"unreadable_row": 1}
    assert files["c-deep.jsonl"]["rejected_by_reason"] == {"unreadable_row": 1}
    assert [f["welcomed"] for f in files.values()] == [1, 1, 1]
    assert not [p for p in inbox.iterdir() if p.is_file()]  # nothing left to block the inbox
    rejects = (inbox / "done" / "a-times.csv.rejects.csv").read_text(encoding="utf-8-sig")
    assert "2,bad_time,arrived_at" in rejects and "3,old_time,arrived_at" in rejects
    for month in ("0001-01", "1970-01"):  # no campaign was opened for those months
        opened = loa("campaign", "status", f"arrivals-ninh-thuan-{month}", cwd=tmp_path)
        assert opened.returncode == 2 and "no campaign" in opened.stderr


def test_status_and_report_count_an_arrivals_campaigns_parts_alike(tmp_path):
    """`loa campaign status` showed 0 parts for an arrivals campaign (a planned total its
    welcomes never have) while the report showed the parts billed: both now read the
    parts the provider took from the messages."""
    rules = RULES.read_text(encoding="utf-8").replace('sending_hours = "07:00-22:00"', "")
    (tmp_path / "arrivals.toml").write_text(rules, encoding="utf-8")  # sent whatever the hour
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    arrived = lately()
    write_csv(inbox / "ferry.csv", 4, arrived=arrived)
    settled(inbox / "ferry.csv")
    assert loa("arrivals", "ingest", "inbox", "--settle", SETTLE, cwd=tmp_path).returncode == 1

    status = loa("campaign", "status", month_campaign(arrived), "--json", cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    made = loa("report", month_campaign(arrived), "-o", "r.csv", "--json", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    shown, reported = json.loads(status.stdout), json.loads(made.stdout)
    took = sum(shown["statuses"][s] for s in ("sent", "delivered", "undelivered", "unknown"))
    assert took > 0 and shown["recipients"] == 4  # welcomes the sandbox took: billed
    assert shown["parts"] == reported["parts_billed"] >= took
