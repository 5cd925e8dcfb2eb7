"""How fast the ``loa`` command answers: whole processes, as an operator's shell runs them.

Timed, each several times, round after round (the median is printed, and the fastest):
``loa --help``,
``loa text check``, ``loa campaign status`` on a SQLite and on a PostgreSQL ledger holding
a campaign of 10,000 recipients. Beside them, measured in the same run: ``python -c pass``
(the floor: starting Python) and ``dramatiq --help`` (a small CLI of the same stack); each
figure is also printed as a ratio to ``dramatiq --help``, which moves with the machine as
Loa does, so that runs on a loaded and an idle machine can be compared.

Two ways of running: with bytecode (what ``make`` and the image install) and without it
(``PYTHONDONTWRITEBYTECODE`` and an empty ``PYTHONPYCACHEPREFIX``: every module compiled
from source in every process, as where nothing was compiled at install).

Targets (issue #18), with bytecode: ``loa --help`` ≤ 0.25 s, ``loa campaign status`` ≤ 0.6 s
(absolutes, judged on a quiet machine). The figures handed in (``benchmarks/figures.py``):
each ``loa`` command's median against ``dramatiq --help``'s, and ``loa --help`` against
``python -c pass``.

    uv run python -m benchmarks.cli_start                 # 7 runs of each
    uv run python -m benchmarks.cli_start --quick         # 5 runs, with bytecode and SQLite only
    uv run python -m benchmarks.cli_start --runs 15 --no-postgres
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from itertools import product
from pathlib import Path

from benchmarks.figures import Figure, report

ROOT = Path(__file__).resolve().parents[1]
POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
CAMPAIGN = "bench-cli"
TARGETS = {"loa --help": 0.25, "loa campaign status (SQLite)": 0.6}


def seed(url: str, recipients: int) -> None:
    """A campaign of ``recipients`` numbers in a migrated ledger at ``url``."""
    from campaigns.recipients import ListRow
    from campaigns.spec import CampaignSpec, load_spec
    from ledger.db import make_engine
    from ledger.migrate import upgrade
    from tests.helpers import record

    engine = make_engine(url)
    try:
        upgrade(engine)
        base = load_spec(ROOT / "examples" / "bluezone.toml").model_dump(mode="json")
        spec = CampaignSpec.model_validate({**base, "id": CAMPAIGN, "provider": "sandbox"})
        rows = [ListRow(i + 2, f"09{i % 10}{i:07d}", ()) for i in range(recipients)]
        record(engine, spec, rows, batch_size=500)
    finally:
        engine.dispose()


def timed_once(command: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Wall-clock and CPU seconds (user + system) of one run of ``command``; a run that
    fails stops the benchmark (a fast failure is not a fast command)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, check=False)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(
            f"{' '.join(command)} exited {done.returncode}: {done.stderr.decode()[-500:]}"
        )
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return seconds, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, help="runs of each command (7; quick: 5)")
    parser.add_argument(
        "--quick", action="store_true", help="with bytecode and SQLite only, 5 runs"
    )
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--postgres", default=POSTGRES_URL, help="admin URL of a server")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args()
    args.runs = args.runs or (5 if args.quick else 7)
    args.no_postgres = args.no_postgres or args.quick

    bin_dir = Path(sys.executable).parent
    loa = (
        [str(bin_dir / "loa")] if (bin_dir / "loa").exists() else [sys.executable, "-m", "scripts"]
    )
    dramatiq = [str(bin_dir / "dramatiq")]
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "campaigns", "ledger", "providers", "scripts", "worker"],
        cwd=ROOT, check=True, capture_output=True,
    )  # fmt: skip

    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="loa-cli-")))
        ledgers = {"SQLite": f"sqlite:///{work / 'ledger.db'}"}
        if not args.no_postgres:
            from tests.rig import scratch_database

            ledgers["PostgreSQL"] = stack.enter_context(scratch_database(args.postgres))
        for url in ledgers.values():
            seed(url, args.recipients)

        base = {k: v for k, v in os.environ.items() if not k.startswith(("LOA_", "PYTHON"))}
        commands: dict[str, tuple[list[str], dict[str, str]]] = {
            "python -c pass": ([sys.executable, "-c", "pass"], {}),
            "dramatiq --help": ([*dramatiq, "--help"], {}),
            "loa --help": ([*loa, "--help"], {}),
            "loa text check": ([*loa, "text", "check", "Cài Bluezone để phòng COVID-19"], {}),
        }
        for backend, url in ledgers.items():
            commands[f"loa campaign status ({backend})"] = (
                [*loa, "campaign", "status", CAMPAIGN],
                {"LOA_DATABASE_URL": url},
            )
        uncompiled = work / "no-bytecode"
        modes = {
            "bytecode": {},
            "no bytecode": {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": str(uncompiled)},
        }
        if args.quick:
            del modes["no bytecode"]
        results: dict[tuple[str, str], list[float]] = {key: [] for key in product(commands, modes)}
        cpu: dict[tuple[str, str], list[float]] = {key: [] for key in results}
        # Round after round, every command once each: a load that comes and goes falls on
        # the references and on Loa alike, where a command's runs back to back would take
        # all of it or none.
        for _ in range(args.runs):
            for (name, mode), seconds in results.items():
                command, env = commands[name]
                uncompiled.mkdir(exist_ok=True)  # stays empty: nothing is written there
                wall, used = timed_once(command, {**base, **env, **modes[mode]}, work)
                seconds.append(wall)
                cpu[name, mode].append(used)

    cores = os.cpu_count()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"CLI start, {args.runs} runs each; {cores} cores, load {load}")
    print(
        f"{'command':32} {'mode':12} {'median s':>9} {'fastest':>8} {'CPU s':>6} "
        f"{'× dramatiq':>11} target"
    )
    for (name, mode), seconds in results.items():
        median = statistics.median(seconds)
        reference = statistics.median(results["dramatiq --help", mode])
        target = TARGETS.get(name) if mode == "bytecode" else None
        verdict = "" if target is None else f"≤ {target} {'ok' if median <= target else 'MISSED'}"
        print(
            f"{name:32} {mode:12} {median:9.3f} {min(seconds):8.3f} "
            f"{statistics.median(cpu[name, mode]):6.3f} {median / reference:11.2f} {verdict}"
        )
    print()
    report(handed_in(cpu))


def handed_in(cpu: dict[tuple[str, str], list[float]]) -> list[Figure]:
    """Each ``loa`` command's median CPU time against ``dramatiq --help``'s (a CLI of the
    same stack: what is above it is Loa's own), and ``loa --help`` against ``python -c
    pass`` too (the floor: starting Python at all).

    CPU time (user + system), not wall-clock: on a loaded machine a process of 0.1 s is
    often done within its first time slice while one of 0.5 s waits for several, so the
    ratio of wall-clock times moved with the load (2× idle, 22× under a load of 10 for
    ``loa --help`` against ``python -c pass``); the work each does is what stays put. The
    wall-clock medians are in the table above."""
    figures = []
    for (name, mode), seconds in cpu.items():
        if not name.startswith("loa "):
            continue
        suffix = "" if mode == "bytecode" else f", {mode}"
        median = statistics.median(seconds)
        pairs = [("dramatiq --help", "dramatiq --help")]
        if name == "loa --help":
            pairs.append(("python -c pass", "python -c pass"))
        for reference, label in pairs:
            figures.append(
                Figure(
                    benchmark="cli_start",
                    measure=f"{name}{suffix}",
                    value=median,
                    unit="CPU s",
                    reference=statistics.median(cpu[reference, mode]),
                    reference_name=label,
                )
            )
    return figures


if __name__ == "__main__":
    main()
