"""The arrivals inbox's processed files go after the retention period, with their
receipts and rejects, and nothing is followed through a link while deleting."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path

from worker.upkeep.retention import remove_old_files
from worker.upkeep.scheduler import Plan, jobs

PERIOD = timedelta(days=90)
DAY = 86400.0


def write(path: Path, text: str, days_old: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    then = time.time() - days_old * DAY
    os.utime(path, (then, then), follow_symlinks=False)
    return path


def taken(inbox: Path, name: str, days_old: float, folder: str = "done") -> list[Path]:
    """A file as ``worker.arrivals.inbox`` leaves it: the original (the carrier's time)
    with its receipt and rejects (the time it was taken)."""
    return [
        write(inbox / folder / name, "event_id,phone\nE1,+84912345678\n", days_old + 2),
        write(inbox / folder / f"{name}.receipt.json", '{"read": 1}\n', days_old),
        write(inbox / folder / f"{name}.rejects.csv", "line,reason\n", days_old),
    ]


def test_processed_files_go_after_the_period_and_stay_before_it(tmp_path):
    inbox = tmp_path / "inbox"
    old = taken(inbox, "vt-2026-08-01.csv", days_old=120)
    failed = write(inbox / "failed" / "broken.csv", "\xff", days_old=95)
    failed_receipt = write(inbox / "failed" / "broken.csv.receipt.json", "{}", days_old=95)
    recent = taken(inbox, "vt-2026-11-20.csv", days_old=10)
    # Taken 89 days ago from a file the carrier wrote 91 days ago: kept, as a group.
    edge = taken(inbox, "vt-edge.csv", days_old=89)
    waiting = write(inbox / "vt-new.csv", "event_id,phone\n", days_old=200)  # not taken yet

    result = remove_old_files([inbox], PERIOD)

    assert result.removed == 5 and result.kept == 6 and result.skipped == []
    assert not any(p.exists() for p in [*old, failed, failed_receipt])
    assert all(p.exists() for p in [*recent, *edge, waiting])
    assert remove_old_files([inbox], PERIOD).removed == 0  # done once
    assert remove_old_files([tmp_path / "elsewhere"], PERIOD).removed == 0  # nothing there


def test_links_are_never_followed(tmp_path):
    inbox, outside = tmp_path / "inbox", tmp_path / "outside"
    precious = write(outside / "precious.csv", "keep me\n", days_old=400)
    (inbox / "done").mkdir(parents=True)
    link = inbox / "done" / "link.csv"
    link.symlink_to(precious)
    os.utime(link, (time.time() - 400 * DAY,) * 2, follow_symlinks=False)
    # failed/ itself replaced by a link to a folder of old files
    (inbox / "failed").symlink_to(outside, target_is_directory=True)

    result = remove_old_files([inbox], PERIOD)

    assert precious.read_text(encoding="utf-8") == "keep me\n"  # neither target touched
    assert link.is_symlink() and result.removed == 0
    assert sorted(Path(s.split(" (")[0]).name for s in result.skipped) == ["failed", "link.csv"]


def test_the_scheduler_removes_them_on_its_own(tmp_path):
    inbox = tmp_path / "inbox"
    old = taken(inbox, "vt-old.csv", days_old=120)
    recent = taken(inbox, "vt-recent.csv", days_old=1)
    plan = Plan(inbox=inbox, rules=tmp_path / "rules.toml", keep_files=PERIOD)
    found = {name: (function, trigger) for name, function, trigger in jobs(None, plan)}  # type: ignore[arg-type]
    function, trigger = found["inbox-retention"]
    assert trigger["trigger"] == "interval" and trigger["hours"] == 24
    assert "next_run_time" in trigger  # also as soon as it leads
    function()
    assert not any(p.exists() for p in old) and all(p.exists() for p in recent)
    assert "inbox-retention" not in {n for n, _, _ in jobs(None, Plan())}  # type: ignore[arg-type]
