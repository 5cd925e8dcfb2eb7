"""How fast the ``loa`` command answers: whole processes, as an operator's shell runs them.

Timed, each several times (the median is printed, and the fastest): ``loa --help``,
``loa text check``, ``loa campaign status`` on a SQLite and on a PostgreSQL ledger holding
a campaign of 10,000 recipients. Beside them, measured in the same run: ``python -c pass``
(the floor: starting Python) and ``dramatiq --help`` (a small CLI of the same stack); each
figure is also printed as a ratio to ``dramatiq --help``, which moves with the machine as
Loa does, so that runs on a loaded and an idle machine can be compared.

Two ways of running: with bytecode (what ``make`` and the image install) and without it
(``PYTHONDONTWRITEBYTECODE`` and an empty ``PYTHONPYCACHEPREFIX``: every module compiled
from source in every process, as where nothing was compiled at install).

Targets (issue #18), with bytecode: ``loa --help`` ≤ 0.25 s, ``loa campaign status`` ≤ 0.6 s.

    uv run python -m benchmarks.cli_start                 # 7 runs of each
    uv run python -m benchmarks.cli_start --runs 15 --no-postgres
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

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


def timed(command: list[str], env: dict[str, str], cwd: Path, runs: int) -> list[float]:
    """Wall-clock seconds of ``runs`` runs of ``command``; a run that fails stops the
    benchmark (a fast failure is not a fast command)."""
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, check=False)
        seconds.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise SystemExit(
                f"{' '.join(command)} exited {done.returncode}: {done.stderr.decode()[-500:]}"
            )
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="runs of each command")
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--postgres", default=POSTGRES_URL, help="admin URL of a server")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args()

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
        results: dict[tuple[str, str], list[float]] = {}
        for mode, mode_env in modes.items():
            for name, (command, env) in commands.items():
                uncompiled.mkdir(exist_ok=True)  # stays empty: nothing is written there
                results[name, mode] = timed(command, {**base, **env, **mode_env}, work, args.runs)

    cores = os.cpu_count()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"CLI start, {args.runs} runs each; {cores} cores, load {load}")
    print(f"{'command':32} {'mode':12} {'median s':>9} {'fastest':>8} {'× dramatiq':>11} target")
    for (name, mode), seconds in results.items():
        median = statistics.median(seconds)
        reference = statistics.median(results["dramatiq --help", mode])
        target = TARGETS.get(name) if mode == "bytecode" else None
        verdict = "" if target is None else f"≤ {target} {'ok' if median <= target else 'MISSED'}"
        print(
            f"{name:32} {mode:12} {median:9.3f} {min(seconds):8.3f} "
            f"{median / reference:11.2f} {verdict}"
        )


if __name__ == "__main__":
    main()
