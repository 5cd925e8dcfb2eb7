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
import contextlib
import errno
import json
import os
import signal
import stat
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

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
        epilog=(
            "Each figure is judged by its ratio to a reference measured in the same run "
            "(↑: higher is better, ↓: lower is). The table is appended to --results with "
            "the last run's ratios of the same mode and load; each benchmark's own "
            "printout is in .cache/bench/logs/. Exit status: 0 all ran, 1 one failed "
            "or the results could not be written, 2 bad arguments."
        ),
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, a few minutes")
    parser.add_argument(
        "--only", nargs="+", metavar="NAME", choices=list(SUITE),
        help=f"these benchmarks only: {', '.join(SUITE)}",
    )  # fmt: skip
    parser.add_argument("--results", type=Path, default=RESULTS, help="the history to append to")
    parser.add_argument("--no-append", action="store_true", help="print only, keep no history")
    parser.add_argument("--load", type=int, default=0, metavar="N", help="N busy processes beside")
    parser.add_argument("--json", action="store_true", help="the run as JSON on stdout")
    return parser.parse_args(argv)


#: A busy process: spins until its parent is gone, so that a suite killed with ``kill -9``
#: leaves no core spinning behind it (its parent then becomes another process).
SPINNER = (
    "import os, signal, sys\n"
    "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"  # ^C is the suite's to answer
    "parent = int(sys.argv[1])\n"
    "while os.getppid() == parent:\n"
    "    pass\n"
)


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
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | mode, 0o644)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "w", encoding="utf-8")


def _own_session_ended_with_us() -> None:
    """In the benchmark's process, before it starts: a session of its own (so that its
    servers can be stopped with it), and SIGINT when the suite dies, even by ``kill -9``
    (so that its clean-up runs: servers stopped, scratch databases dropped)."""
    os.setsid()
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGINT)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the benchmark outlives a killed suite and cleans up at its end


def supervised(command: list[str], env: dict[str, str], out: IO[str], timeout: float) -> int:
    """Run ``command``; past ``timeout`` (or on ^C) its whole session is asked to stop
    with SIGINT, as a user would, and killed 30 s later if it has not: a benchmark's
    servers and scratch databases go with it.

    Raises:
        subprocess.TimeoutExpired: it ran past ``timeout``.
    """
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        preexec_fn=_own_session_ended_with_us,  # no threads run in the suite: safe
    )  # fmt: skip
    try:
        return process.wait(timeout=timeout)
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        for sig, grace in ((signal.SIGINT, 30), (signal.SIGKILL, 10)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=grace)
                break
        raise


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
                returncode = supervised(command, env, out, timeout)
                if returncode:
                    error = f"exited {returncode}; see {shown(log)}"
            except subprocess.TimeoutExpired:
                error = f"stopped after {timeout:g} s; see {shown(log)}"
        seconds = time.perf_counter() - started
        figures = []
        for number, line in enumerate(handed.buffer.read().splitlines(), 1):
            try:
                figures.append(Figure.from_json(json.loads(line)))
            except (ValueError, RecursionError) as bad:  # JSON's errors are ValueErrors
                error = error or f"figure {number} does not read ({bad}); see {shown(log)}"
    if not figures and error is None:
        error = f"handed in no figures; see {shown(log)}"
    return figures, error, seconds


def shown(path: Path) -> str:
    """``path`` relative to the repository when it is inside it."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def last_run(results: Path, mode: str, load: int = 0) -> dict[tuple[str, str, str], float]:
    """Each figure's ratio in the last run of ``mode`` beside ``load`` busy processes
    that measured it, kept in ``results`` (by :func:`benchmarks.figures.key`): a run of
    some benchmarks (``--only``) leaves the others' last ratios as they were. Empty when
    there is none or the file cannot be read. A record that does not parse (a hand edit,
    a merge) is passed over, not fatal."""
    try:
        fd = os.open(results, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return {}  # none yet, or unreadable: said when the run is appended
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return {}  # a folder; a FIFO or a device would hang the run or fill its memory
    with os.fdopen(fd, "rb") as handle:
        text = handle.read().decode("utf-8", errors="replace")
    last: dict[tuple[str, str, str], float] = {}
    for line in text.splitlines():
        if not (line.startswith(RUN_MARK) and line.endswith("-->")):
            continue
        try:
            run = json.loads(line[len(RUN_MARK) : -len("-->")])
            if run.get("mode") == mode and run.get("load_added", 0) == load:
                last.update({key(Figure.from_json(f)): float(f["ratio"]) for f in run["figures"]})
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
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
    most = 4 * (os.cpu_count() or 1)
    if not 0 <= args.load <= most:
        print(f"--load: a number of busy processes from 0 to {most}", file=sys.stderr)
        return 2
    mode = "quick" if args.quick else "full"
    names = args.only or list(SUITE)
    machine = read_machine(ROOT)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    figures: list[Figure] = []
    failed: dict[str, str] = {}
    started = time.perf_counter()
    say = print if not args.json else lambda *a, **k: print(*a, **k, file=sys.stderr)
    say(
        f"{mode} run of {len(names)} benchmark{'s' * (len(names) != 1)} on "
        f"{machine.describe()}; logs in {shown(LOGS)}"
    )
    with busy(args.load):
        for name in names:
            say(f"  {name:<10} {SUITE[name]} …", end="", flush=True)
            log = LOGS / f"{stamp}-{os.getpid()}-{name}.log"
            command = [sys.executable, "-m", f"benchmarks.{name}", *(["--quick"] * args.quick)]
            got, error, seconds = run_one(command, log, TIMEOUT[mode])
            figures += got
            if error:
                failed[name] = error
            say(f" {seconds:.1f} s, {len(got)} figures" + (f" — FAILED: {error}" if error else ""))
    seconds = time.perf_counter() - started
    before = last_run(args.results, mode, args.load)
    lines = section(machine, mode, args.load, figures, failed, seconds, before)
    if args.json:
        print(lines[-2][len(RUN_MARK) : -len("-->")].replace("--\\u003e", "-->"))
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
