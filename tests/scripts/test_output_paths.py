"""A file a command writes is never one it reads, the ledger, or another of its outputs:
``--rejects`` naming the list once replaced it with four lines of rejects, and ``loa report
--out var/loa.db`` replaced the whole ledger, audit chain included. Each is refused (exit 2)
before anything is read or written, naming what the path is."""

from __future__ import annotations

from tests.scripts.test_cli import EXAMPLE, loa, small_list


def test_outputs_that_would_replace_an_input_the_ledger_or_each_other_are_refused(tmp_path):
    listed = small_list(tmp_path)
    before = listed.read_bytes()
    cases = [
        (("campaign", "plan", str(EXAMPLE), "-r", str(listed), "--rejects", str(listed)),
         "--rejects", "what the list (--recipients) reads"),
        (("campaign", "launch", str(EXAMPLE), "-r", str(listed), "--rejects", str(EXAMPLE)),
         "--rejects", "what the campaign file reads"),
        (("recipients", "check", str(listed), "--out", str(listed)), "--out", "what the list reads"),
        (("recipients", "check", str(listed), "--out", "a.csv", "--rejects", "./a.csv"),
         "--rejects", "where --out writes too"),
        (("report", "x", "--format", "csv", "--out", "var/loa.db"), "--out", "the ledger (LOA_DATABASE_URL)"),
        (("report", "x", "--format", "csv", "--out", "var/loa.db-wal"), "--out", "the ledger (LOA_DATABASE_URL)"),
    ]  # fmt: skip
    for args, option, what in cases:
        result = loa(*args, cwd=tmp_path)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        (line,) = result.stderr.splitlines()
        assert line.startswith(f"error: {option} ") and f"is {what}:" in line, line
    assert listed.read_bytes() == before and EXAMPLE.is_file()
    assert not (tmp_path / "a.csv").exists() and not (tmp_path / "var").exists()

    # Another name, and the same command writes.
    fine = loa("recipients", "check", str(listed), "--out", "clean.csv", cwd=tmp_path)
    assert fine.returncode == 0, fine.stderr
    assert (tmp_path / "clean.csv").is_file()
