"""Every benchmark in one run: one table of figures, references and ratios, kept in history.

    uv run python -m benchmarks --quick          # a few minutes: small sizes, few rounds
    uv run python -m benchmarks                  # the full sizes (about an hour)
    uv run python -m benchmarks --only plan receipts
    uv run python -m benchmarks --quick --load 2 # the same with two busy processes beside it

Each benchmark runs as a process of its own (``python -m benchmarks.NAME [--quick]``) and
hands in its figures through ``$LOA_BENCH_FIGURES`` (``benchmarks/figures.py``); its own
printout goes to a log under ``.cache/bench/logs/``. The table is printed with the machine
(cores, model, load at the start) and the commit, and appended to ``benchmarks/RESULTS.md``
(``--results``), with each figure's ratio beside the last run's of the same mode, so that
progress and regressions show in ``git log -p benchmarks/RESULTS.md``.

Read the ratios: absolute figures on these shared machines move by a factor of three from
one day to the next; a ratio to a reference measured in the same run does not (issue 25).
``--load N`` starts N busy processes for the length of the run: a loaded machine on demand,
to see the ratios hold while the absolutes fall.

Exit status: 0 when every benchmark ran, 1 when any failed (its row says where its log is),
2 for bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.figures import FIGURES_ENV, Figure, key, number, table
from benchmarks.machine import Machine, read_machine

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
LOGS = ROOT / ".cache" / "bench" / "logs"

# The suite, in the order it runs: cheap and steady first. Each is a module of this package
# that takes --quick and ends with figures.report().
SUITE: dict[str, str] = {
    "cli_start": "how fast `loa` answers, as whole processes",
    "plan": "planning a messy list into the ledger",
    "arrivals": "tourist arrivals into the ledger",
    "receipts": "delivery receipts persisted by `loa webhook`",
    "report": "campaign reports in each format",
    "outcomes": "a goal's outcomes imported and its section",
    "fallback": "Zalo-then-SMS fallback decisions",
    "audit": "the audit log sealed, checkpointed and verified",
    "api": "the HTTP API's status and history",
    "dispatch": "sending through `loa worker`, rate and throttling",
    "smpp": "sending over SMPP to a carrier's SMSC",
}
# A benchmark that runs longer is stopped: a hang should cost one row, not the run.
TIMEOUT = {"quick": 600, "full": 3 * 3600}
RUN_MARK = "<!-- run "


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Run every benchmark; print and keep one table of figures and ratios.",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, a few minutes")
    parser.add_argument("--only", nargs="+", metavar="NAME", choices=list(SUITE))
    parser.add_argument("--results", type=Path, default=RESULTS, help="the history to append to")
    parser.add_argument("--no-append", action="store_true", help="print only, keep no history")
    parser.add_argument("--load", type=int, default=0, metavar="N", help="N busy processes beside")
    parser.add_argument("--json", action="store_true", help="the run as JSON on stdout")
    return parser.parse_args(argv)


#: A busy process: spins until its parent is gone, so that a suite killed with ``kill -9``
#: leaves no core spinning behind it (its parent then becomes another process).
SPINNER = "import os, sys\nparent = int(sys.argv[1])\nwhile os.getppid() == parent:\n    pass\n"


@contextmanager
def busy(processes: int):
    """``processes`` processes spinning a core each, for the length of the block."""
    spinners = [
        subprocess.Popen([sys.executable, "-c", SPINNER, str(os.getpid())])
        for _ in range(processes)
    ]
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


def written(path: Path, mode: int):
    """``path`` opened for writing (``os.O_APPEND`` or ``os.O_TRUNC``), created if need be,
    never through a symbolic link: a link planted where the suite writes is refused
    (``OSError``), not followed to whatever it names."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | mode, 0o644)
    return os.fdopen(fd, "w", encoding="utf-8")


def run_one(
    command: list[str], log: Path, timeout: float
) -> tuple[list[Figure], str | None, float]:
    """Run one benchmark's ``command`` with its output to ``log``.

    Returns its figures, why it failed (``None`` when it did not: a non-zero exit, a
    timeout and no figures handed in are failures) and the seconds it took.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("r", suffix=".jsonl", encoding="utf-8") as handed:
        env = {**os.environ, FIGURES_ENV: handed.name, "PYTHONUNBUFFERED": "1"}
        started = time.perf_counter()
        error = None
        with written(log, os.O_TRUNC) as out:
            try:
                done = subprocess.run(
                    command,
                    cwd=ROOT,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    timeout=timeout,
                    check=False,
                )
                if done.returncode:
                    error = f"exited {done.returncode}; see {shown(log)}"
            except subprocess.TimeoutExpired:
                error = f"stopped after {timeout:g} s; see {shown(log)}"
        seconds = time.perf_counter() - started
        figures = [Figure.from_json(json.loads(line)) for line in handed if line.strip()]
    if not figures and error is None:
        error = f"handed in no figures; see {shown(log)}"
    return figures, error, seconds


def shown(path: Path) -> str:
    """``path`` relative to the repository when it is inside it."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def last_run(results: Path, mode: str) -> dict[tuple[str, str, str], float]:
    """Each figure's ratio in the last run of ``mode`` kept in ``results`` (by
    :func:`benchmarks.figures.key`); empty when there is none or the file cannot be read.
    A record that does not parse (a hand edit, a merge) is passed over, not fatal."""
    try:
        text = results.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}  # none yet, or unreadable: said when the run is appended
    last: dict[tuple[str, str, str], float] = {}
    for line in text.splitlines():
        if not (line.startswith(RUN_MARK) and line.endswith("-->")):
            continue
        try:
            run = json.loads(line[len(RUN_MARK) : -len("-->")])
            if run.get("mode") == mode:
                last = {key(Figure.from_json(f)): float(f["ratio"]) for f in run["figures"]}
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
    return last


def section(
    machine: Machine,
    mode: str,
    load: int,
    figures: list[Figure],
    failed: dict[str, str],
    seconds: float,
    before: dict[tuple[str, str, str], float],
) -> list[str]:
    """The run as Markdown: a heading, the machine, the table, failures, a JSON record."""
    lines = [
        f"## {machine.started} · {mode} · {machine.commit}",
        "",
        f"{machine.cores} cores, {machine.model}; load at the start {machine.load:.2f}"
        + (f", {load} busy processes added" if load else "")
        + f"; Python {machine.python}; {number(seconds)} s in all.",
        "",
        *table(figures, before or None),
    ]
    if failed:
        lines += ["", *(f"- **{name} failed**: {why}" for name, why in failed.items())]
    record = {
        "mode": mode,
        "machine": machine.as_json(),
        "load_added": load,
        "figures": [f.as_json() for f in figures],
        "failed": failed,
    }
    # Inside an HTML comment: nothing in it may close the comment early.
    kept = json.dumps(record, ensure_ascii=False).replace("-->", "--\\u003e")
    return [*lines, "", RUN_MARK + kept + "-->", ""]


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    if args.load < 0:
        print("--load: a number of processes, 0 or more", file=sys.stderr)
        return 2
    mode = "quick" if args.quick else "full"
    names = args.only or list(SUITE)
    machine = read_machine(ROOT)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    figures: list[Figure] = []
    failed: dict[str, str] = {}
    started = time.perf_counter()
    say = print if not args.json else lambda *a, **k: print(*a, **k, file=sys.stderr)
    say(f"{mode} run of {len(names)} benchmarks on {machine.describe()}")
    with busy(args.load):
        for name in names:
            say(f"  {name:<10} {SUITE[name]} …", end="", flush=True)
            log = LOGS / f"{stamp}-{name}.log"
            command = [sys.executable, "-m", f"benchmarks.{name}", *(["--quick"] * args.quick)]
            got, error, seconds = run_one(command, log, TIMEOUT[mode])
            figures += got
            if error:
                failed[name] = error
            say(f" {seconds:.1f} s, {len(got)} figures" + (f" — FAILED: {error}" if error else ""))
    seconds = time.perf_counter() - started
    before = last_run(args.results, mode)
    lines = section(machine, mode, args.load, figures, failed, seconds, before)
    if args.json:
        print(lines[-2][len(RUN_MARK) : -len("-->")])
    else:
        print("\n".join(lines[:-2]))
    if not args.no_append:
        fresh = not args.results.exists()
        try:
            with written(args.results, os.O_APPEND) as out:
                if fresh:
                    out.write(HEADER)
                out.write("\n".join(lines) + "\n")
        except OSError as error:
            # The table is printed above: nothing measured is lost, but say so.
            print(f"{args.results}: not appended ({error.strerror})", file=sys.stderr)
            return 1
        say(f"appended to {args.results}")
    return 1 if failed else 0


HEADER = """# Benchmark results

Appended by `uv run python -m benchmarks [--quick]`, newest last. Compare ratios, not
absolutes: each figure's reference is measured in the same run on the same machine (see
each benchmark's docstring for what it is), and absolutes on these shared machines move by
a factor of three from one day to the next.

"""


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        # The busy processes are gone (busy's finally); the benchmark got the same ^C.
        print("\ninterrupted: nothing appended", file=sys.stderr)
        sys.exit(130)
