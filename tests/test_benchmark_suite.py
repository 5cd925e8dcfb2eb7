"""``python -m benchmarks``: figures beside their references, one table, kept in history.

The benchmarks themselves are measured, not tested (``benchmarks/``); what is held here is
the suite's bookkeeping, through the path a run takes: a benchmark process handing in its
figures, a failing or silent one named, the history appended and read back.
"""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import pytest

import benchmarks.__main__ as suite
from benchmarks.cpu import (
    group_cpu_seconds,
)
from benchmarks.figures import FIGURES_ENV, Figure, interleaved, key, report, table
from benchmarks.machine import Machine, commit_of, cpu_model

ROOT = Path(__file__).resolve().parents[1]
# Tools beside the benchmarks, not benchmarks: they measure nothing against a reference.
TOOLS = {
    "__init__",
    "__main__",
    "figures",
    "machine",
    "cpu",
    "bare_receipts",
    "generate_list",
    "mutation",
}


def figure(measure: str = "100,000 rows", value: float = 50.0, **kw) -> Figure:
    fields = {"benchmark": "plan", "unit": "rows/s", "reference": 100.0}
    fields |= {"reference_name": "bare", "better": "higher"} | kw
    return Figure(measure=measure, value=value, **fields)


def test_a_ratio_is_the_figure_over_its_reference_judged_in_its_own_direction():
    assert figure(value=50).ratio == 0.5
    assert figure(value=50, target=0.5).verdict == "met"
    assert figure(value=49, target=0.5).verdict == "missed"
    slow = figure(value=3.0, reference=1.0, unit="s", better="lower", target=2.9)
    assert slow.ratio == 3.0 and slow.verdict == "missed"
    assert figure(value=1.0, reference=0.0).ratio != figure(value=1.0, reference=0.0).ratio
    assert figure().verdict == ""


def test_interleaved_takes_turns_starting_with_the_reference_and_returns_medians():
    calls: list[str] = []
    ours = iter([5.0, 1.0, 3.0])
    theirs = iter([10.0, 30.0, 20.0])

    def subject() -> float:
        calls.append("subject")
        return next(ours)

    def reference() -> float:
        calls.append("reference")
        return next(theirs)

    assert interleaved(subject, reference, rounds=3) == (3.0, 20.0)
    assert calls == ["reference", "subject"] * 3


def test_report_appends_json_lines_when_the_suite_asks(tmp_path, monkeypatch, capsys):
    handed = tmp_path / "figures.jsonl"
    monkeypatch.setenv(FIGURES_ENV, str(handed))
    report([figure("a"), figure("b", value=75)])
    report([figure("c")])
    read = [Figure.from_json(json.loads(line)) for line in handed.read_text().splitlines()]
    assert [f.measure for f in read] == ["a", "b", "c"]
    assert read[1] == figure("b", value=75)
    assert "| plan | b | 75.0 rows/s | 100 rows/s (bare) | 0.75 ↑ |" in capsys.readouterr().out


def test_the_table_shows_the_last_run_s_ratio_beside_this_one():
    rows = table(
        [figure("a"), figure("b"), figure("c")],
        before={key(figure("a")): 0.4, key(figure("c")): 0.0131},
    )
    assert rows[0].endswith("last run | moved |")
    assert rows[2].endswith("| 0.4 | +25 % better |") and rows[3].endswith("| | |")
    assert "| 0.0131 |" in rows[4]  # as the ratio column shows it, not 0.01
    slower = figure("t", value=3.0, reference=1.0, unit="s", better="lower")
    assert table([slower], before={key(slower): 2.0})[2].endswith("| 2.00 | +50 % worse |")
    assert table([slower], before={key(slower): 3.0})[2].endswith("| ±0 % |")


def test_an_absolute_target_is_shown_beside_the_ratio_s():
    row = table([figure(target=0.4, absolute="p99 28.6 ms, target < 20 ms: missed")])[2]
    assert "≥ 0.4: met; p99 28.6 ms, target < 20 ms: missed |" in row


STUB = """
import json, os, sys
from benchmarks.figures import Figure, report
mode = sys.argv[1]
print("a benchmark's own printout")
if mode == "fails":
    report([Figure("stub", "half done", 1.0, "s", 2.0, "floor")])
    sys.exit(3)
if mode == "works":
    report([Figure("stub", "all", 2.0, "s", 1.0, "floor", target=3)])
"""


@pytest.mark.parametrize(
    ("mode", "figures", "error"),
    [
        ("works", ["all"], None),
        ("fails", ["half done"], "exited 3"),
        ("silent", [], "handed in no figures"),
    ],
)
def test_a_benchmark_s_figures_come_back_and_a_failure_is_named(tmp_path, mode, figures, error):
    stub = tmp_path / "stub.py"
    stub.write_text(STUB)
    log = tmp_path / "logs" / "stub.log"
    got, why, seconds = suite.run_one([sys.executable, str(stub), mode], log, timeout=60)
    assert [f.measure for f in got] == figures
    assert (why is None) if error is None else (error in why and str(log) in why)
    assert "a benchmark's own printout" in log.read_text()
    assert seconds > 0


def test_a_hung_benchmark_costs_its_row_not_the_run(tmp_path):
    hung = tmp_path / "hung.py"
    hung.write_text("import time\nwhile True: time.sleep(1)\n")
    got, why, _ = suite.run_one([sys.executable, str(hung)], tmp_path / "hung.log", timeout=0.5)
    assert got == [] and why.startswith("stopped after 0.5 s")


MACHINE = Machine("2026-12-01 21:00 UTC", 2, "Test CPU", 0.5, "abc1234", "3.11.7")


def test_history_is_appended_and_each_run_compared_with_the_last_of_its_mode(tmp_path):
    results = tmp_path / "RESULTS.md"
    assert suite.last_run(results, "quick") == {}
    first = suite.section(MACHINE, "quick", 0, [figure("a", value=40)], {}, 12.0, {})
    results.write_text(suite.HEADER + "\n".join(first) + "\n")
    full = suite.section(MACHINE, "full", 2, [figure("a", value=90)], {"api": "exited 1"}, 9, {})
    with results.open("a") as out:
        out.write("<!-- run {not json -->\n" + "\n".join(full) + "\n")
    assert suite.last_run(results, "quick") == {key(figure("a")): 0.4}
    assert suite.last_run(results, "full", load=2) == {key(figure("a")): 0.9}
    assert suite.last_run(results, "full") == {}  # an idle run is not judged by a loaded one
    text = results.read_text()
    assert "2 busy processes added" in text and "**api failed**: exited 1" in text
    # A run of some benchmarks (--only) leaves the others' last ratios as they were.
    some = suite.section(MACHINE, "quick", 0, [figure("b", value=70)], {}, 3.0, {})
    with results.open("a") as out:
        out.write("\n".join(some) + "\n")
    assert suite.last_run(results, "quick") == {key(figure("a")): 0.4, key(figure("b")): 0.7}


def test_nothing_in_a_figure_closes_the_comment_that_keeps_it(tmp_path):
    sly = figure("ends here --> <b>", value=40)
    lines = suite.section(MACHINE, "quick", 0, [sly], {}, 1.0, {})
    results = tmp_path / "RESULTS.md"
    results.write_text("\n".join(lines))
    assert lines[-2].count("-->") == 1
    assert suite.last_run(results, "quick") == {key(sly): 0.4}


def test_the_whole_run_through_main_with_one_benchmark(tmp_path, monkeypatch, capsys):
    stub = tmp_path / "stub.py"
    stub.write_text(STUB)
    monkeypatch.setattr(suite, "LOGS", tmp_path / "logs")
    monkeypatch.setattr(suite, "SUITE", {"stub": "a stand-in"})
    real_run_one = suite.run_one
    monkeypatch.setattr(
        suite,
        "run_one",
        lambda command, log, timeout: real_run_one(
            [sys.executable, str(stub), "works"], log, timeout
        ),
    )
    results = tmp_path / "RESULTS.md"
    assert suite.main(["--quick", "--results", str(results)]) == 0
    out = capsys.readouterr().out
    assert "| stub | all | 2.00 s | 1.00 s (floor) | 2.00 ↓ | ≤ 3: met |" in out
    assert results.read_text().startswith("# Benchmark results")
    assert suite.main(["--quick", "--results", str(results), "--json"]) == 0
    run = json.loads(capsys.readouterr().out)
    assert run["mode"] == "quick" and run["figures"][0]["ratio"] == 2.0
    assert results.read_text().count("## ") == 2
    assert suite.main(["--quick", "--no-append", "--results", str(results)]) == 0
    assert results.read_text().count("## ") == 2
    linked = tmp_path / "linked.md"
    linked.symlink_to(results)
    assert suite.main(["--quick", "--results", str(linked)]) == 1
    assert "not appended" in capsys.readouterr().err
    assert results.read_text().count("## ") == 2


def test_every_benchmark_is_in_the_suite_takes_quick_and_hands_in_figures():
    modules = {p.stem for p in (ROOT / "benchmarks").glob("*.py")} - TOOLS
    assert modules == set(suite.SUITE)
    for name in modules:
        tree = ast.parse((ROOT / "benchmarks" / f"{name}.py").read_text())
        strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)}
        calls = [n.func for n in ast.walk(tree) if isinstance(n, ast.Call)]
        called = {f.id for f in calls if isinstance(f, ast.Name)}
        called |= {f.attr for f in calls if isinstance(f, ast.Attribute)}
        assert "--quick" in strings, name
        assert "report" in called, name


def test_the_machine_is_read_from_linux_and_git(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: AMD   EPYC 7B13\nflags\t: x\n")
    assert cpu_model(info) == "AMD EPYC 7B13"
    assert cpu_model(tmp_path / "missing")
    assert commit_of(tmp_path) == "unknown"
    assert commit_of(ROOT).split("+")[0].isalnum()


def test_a_process_group_s_cpu_is_read_from_proc(tmp_path):
    import os

    ticks = os.sysconf("SC_CLK_TCK")
    for pid, group, utime, stime in [(10, 7, ticks, ticks), (11, 7, 2 * ticks, 0), (12, 8, 99, 1)]:
        (tmp_path / str(pid)).mkdir()
        rest = " ".join(["0"] * 8)
        # a name with a space and ")" in it, as a process can choose its own
        (tmp_path / str(pid) / "stat").write_text(
            f"{pid} (a b) c) S 1 {group} {rest} {utime} {stime} 0 0 20 0 1 0\n"
        )
    (tmp_path / "self").mkdir()
    assert group_cpu_seconds(7, tmp_path) == 4.0
    assert group_cpu_seconds(9, tmp_path) == 0.0


def test_autorange_repeats_a_short_call_to_fill_its_time():
    import benchmarks.figures as figures

    ticks = iter(i * 0.25 for i in range(100))
    calls = []
    took = figures.autorange(lambda: calls.append(1), at_least=1.0, clock=lambda: next(ticks))
    assert took == 0.25 and len(calls) == 4


def test_a_link_where_the_suite_writes_is_refused_and_the_table_still_printed(tmp_path, capsys):
    elsewhere = tmp_path / "elsewhere.md"
    elsewhere.write_text("someone else's file\n")
    results = tmp_path / "RESULTS.md"
    results.symlink_to(elsewhere)
    lines = suite.section(MACHINE, "quick", 0, [figure("a")], {}, 1.0, {})
    with pytest.raises(OSError):
        suite.written(results, suite.os.O_APPEND)
    assert elsewhere.read_text() == "someone else's file\n"
    assert lines[0].startswith("## ")


def test_history_that_does_not_parse_is_passed_over(tmp_path):
    results = tmp_path / "RESULTS.md"
    results.write_text(
        '<!-- run {"mode": "quick", "figures": [{"benchmark": 1}]}-->\n'
        '<!-- run {"mode": "quick", "figures": "none"}-->\n'
        "<!-- run []-->\n"
    )
    assert suite.last_run(results, "quick") == {}
    assert suite.last_run(tmp_path, "quick") == {}  # a directory, not a file


def test_only_the_watched_database_s_backends_are_counted(tmp_path, monkeypatch):
    import benchmarks.cpu as cpu

    titles = {
        20: b"postgres: 15/main: postgres loa_bench_1 127.0.0.1(4242) idle\0",
        21: b"postgres: postgres loa_bench_2 127.0.0.1(4243) SELECT\0",
        22: b"postgres: 15/main: checkpointer \0",
        23: b"python\0-m\0loa_bench_1\0",
    }
    for pid, title in titles.items():
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "cmdline").write_bytes(title)
    seen = {pid for pid in titles if cpu._serves_database(pid, "loa_bench_1", tmp_path)}
    assert seen == {20}
    assert cpu._serves_database(21, "loa_bench_2", tmp_path)
    assert not cpu._serves_database(99, "loa_bench_1", tmp_path)
    monkeypatch.setattr(cpu, "_DATABASE", None)
    cpu.watch_database("postgresql+psycopg://postgres@127.0.0.1:5432/loa_bench_1?x=1")
    assert cpu._DATABASE == "loa_bench_1"


def test_a_busy_process_spins_only_while_its_parent_lives():
    import subprocess
    import time

    # A stand-in suite: starts a spinner for itself, prints its pid and ends (as after
    # ``kill -9``: nothing of the suite's own clean-up runs).
    code = (
        "import os, subprocess, sys\n"
        "from benchmarks.__main__ import SPINNER\n"
        "spinner = subprocess.Popen([sys.executable, '-c', SPINNER, str(os.getpid())])\n"
        "print(spinner.pid)\n"
    )
    parent = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    stat = Path(f"/proc/{int(parent.stdout)}/stat")

    def spinning() -> bool:
        try:
            return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except (OSError, IndexError):
            return False  # gone, reaped by its new parent

    deadline = time.monotonic() + 30  # only catches a spinner that never stops
    while spinning() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not spinning()


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("{not json", "does not read"),
        ('["a list"]', "a JSON object"),
        ('{"benchmark": "s", "measure": "m", "unit": "s", "reference": 1, '
         '"reference_name": "r"}', "value"),
        ('{"benchmark": "s", "measure": "m", "value": "abc", "unit": "s", "reference": 1, '
         '"reference_name": "r"}', "value: a number"),
        ('{"benchmark": "s", "measure": "m", "value": NaN, "unit": "s", "reference": 1, '
         '"reference_name": "r"}', "finite"),
        ('{"benchmark": "s", "measure": "m", "value": 1, "unit": "s", "reference": 1, '
         '"reference_name": "r", "target": "x"}', "target"),
        ('{"benchmark": "s", "measure": "m", "value": 1, "unit": "s", "reference": 1, '
         '"reference_name": "r", "better": "up"}', "better"),
    ],
)  # fmt: skip
def test_a_figure_that_does_not_read_is_named_and_the_others_kept(tmp_path, line, why):
    stub = tmp_path / "stub.py"
    stub.write_text(
        "import os\n"
        "from benchmarks.figures import Figure, report\n"
        "report([Figure('stub', 'good', 1.0, 's', 2.0, 'floor')])\n"
        f"open(os.environ['LOA_BENCH_FIGURES'], 'a').write({line!r} + '\\n')\n"
    )
    got, error, _ = suite.run_one([sys.executable, str(stub)], tmp_path / "s.log", timeout=60)
    assert [f.measure for f in got] == ["good"]
    assert error.startswith("figure 2 does not read") and why in error


def test_a_results_file_that_is_not_a_regular_file_is_neither_read_nor_written(tmp_path):
    import os

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert suite.last_run(fifo, "quick") == {}  # returns at once, does not wait for a writer
    with pytest.raises(OSError):
        suite.written(fifo, os.O_APPEND)
    deep = tmp_path / "deep.md"
    deep.write_text("<!-- run " + "[" * 100_000 + "-->\n")
    assert suite.last_run(deep, "quick") == {}


def test_a_zero_reference_is_kept_as_plain_json(tmp_path):
    zero = figure(reference=0.0)
    assert zero.as_json()["ratio"] is None
    line = suite.section(MACHINE, "quick", 0, [zero], {}, 1.0, {})[-2]
    assert "NaN" not in line and "Infinity" not in line
    assert "| – ↑ |" in "\n".join(suite.section(MACHINE, "quick", 0, [zero], {}, 1.0, {}))


def test_a_benchmark_stopped_for_its_time_takes_its_servers_with_it(tmp_path):
    import time

    stub = tmp_path / "server.py"
    pid_file = tmp_path / "server.pid"
    stub.write_text(
        "import subprocess, sys, time\n"
        "server = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(server.pid))\n"
        "time.sleep(300)\n"
    )
    got, why, _ = suite.run_one([sys.executable, str(stub)], tmp_path / "s.log", timeout=8)
    assert got == [] and why.startswith("stopped after 8 s")
    stat = Path(f"/proc/{int(pid_file.read_text())}/stat")
    deadline = time.monotonic() + 30  # only catches a server left running

    def running() -> bool:
        try:
            return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except (OSError, IndexError):
            return False

    while running() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not running()
