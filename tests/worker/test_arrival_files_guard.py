"""A file that makes Loa itself fail is set aside, not left to block the inbox; a ledger
that is away leaves the file where it is for the next look."""

from __future__ import annotations

import os

import pytest
import sqlalchemy as sa

from worker.arrivals.inbox import take
from worker.arrivals.ingest import Ingested

HEADER = "event_id,phone,arrived_at,area\n"


class Failing:
    """An ingest that raises ``error`` for the files it reads."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def run(self, records):
        list(records)
        raise self.error


class Taking:
    def run(self, records):
        return Ingested(read=len(list(records)))


def inbox_with(tmp_path, *names: str):
    for name in names:
        (tmp_path / name).write_text(HEADER + "e1,+821020000001,2026-11-30T08:00:00Z,586\n")
    return [tmp_path / name for name in names]


def test_a_fault_of_loa_sets_the_file_aside_and_the_next_is_taken(tmp_path):
    first, second = inbox_with(tmp_path, "a.csv", "b.csv")
    refused = take(Failing(KeyError("a bug")), first)
    assert refused.problem and "KeyError" in refused.problem and "put it back" in refused.problem
    assert refused.moved_to == tmp_path / "failed" / "a.csv" and not first.exists()
    taken = take(Taking(), second)
    assert taken.problem is None and taken.moved_to == tmp_path / "done" / "b.csv"


def test_a_ledger_away_leaves_the_file_for_the_next_look(tmp_path):
    (path,) = inbox_with(tmp_path, "a.csv")
    away = sa.exc.OperationalError("SELECT 1", {}, ConnectionRefusedError())
    with pytest.raises(sa.exc.OperationalError):
        take(Failing(away), path)
    assert path.exists() and not (tmp_path / "failed").exists()


def test_settling_files_are_left_but_one_stamped_far_ahead_is_taken(tmp_path):
    """A file copied with a skewed clock's time (2099) once sat in the inbox for ever."""
    from worker.arrivals.inbox import scan

    now = 1_800_000_000.0
    young, future, old = inbox_with(tmp_path, "young.csv", "future.csv", "old.csv")
    os.utime(young, (now - 2, now - 2))
    os.utime(future, (now + 86400 * 365, now + 86400 * 365))
    os.utime(old, (now - 600, now - 600))
    os.mkfifo(tmp_path / "pipe.csv")  # would block a reader for ever
    looked = scan(tmp_path, settle=5, clock=lambda: now)
    assert looked.settling == [young]
    assert set(looked.files) == {future, old}
    assert looked.others == [tmp_path / "pipe.csv"]  # not read, and said


def test_a_done_folder_swapped_for_a_link_mid_move_sends_nothing_elsewhere(tmp_path, monkeypatch):
    """A loop swapping done/ for a link once put a visitor file outside the inbox: the
    check ran first, the writes went by path. Now they go through the folder opened once."""
    import worker.arrivals.inbox as files

    (path,) = inbox_with(tmp_path, "a.csv")
    elsewhere = tmp_path.parent / f"{tmp_path.name}-elsewhere"
    elsewhere.mkdir()
    real_names = files._names

    def swapped(source):  # the attacker's move, between the check and the writes
        (tmp_path / "done").rename(tmp_path / "done-real")
        (tmp_path / "done").symlink_to(elsewhere)
        yield from real_names(source)

    monkeypatch.setattr(files, "_names", swapped)
    taken = take(Taking(), path)
    assert list(elsewhere.iterdir()) == []
    assert sorted(p.name for p in (tmp_path / "done-real").iterdir()) == [
        "a.csv",
        "a.csv.receipt.json",
    ]
    assert taken.problem is None
