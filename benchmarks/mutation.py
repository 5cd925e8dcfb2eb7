"""Mutation testing of the modules that hold Loa's rules: would the tests notice a rule
breaking?

mutmut (3.x, configured under ``[tool.mutmut]`` in pyproject.toml) copies the code into
``mutants/``, makes every small change it knows inside each function of the modules listed
there (a ``<`` for a ``<=``, a constant off by one, a call's argument dropped …) and runs,
for each change, the in-process tests that reach the changed function. A change no test
notices *survives*: either a test is missing, or the change cannot alter behaviour (an
equivalent mutant), which the line says with ``# pragma: no mutate`` and a comment why.

mutmut mutates inside functions only: module-level tables (the 2018 number conversion,
carrier prefixes, the status moves, the GSM-7 alphabet) are tested entry by entry against
their sources instead (tests/campaigns/test_tables_from_reference.py, tests/campaigns/
test_status.py).

Prints, per module: mutants, killed (a test failed, or the mutant hung past its timeout),
survived, not reached by any test, the score ``killed / (mutants - skipped)``, and the
run's duration; exit 1 when a module scores under ``--minimum`` (90 %).

    make mutation                                   # the whole run, then the table
    uv run python -m benchmarks.mutation --report   # the table of the last run only
    uv run python -m benchmarks.mutation --survivors   # and each survivor's name
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import tomllib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MUTANTS = ROOT / "mutants"

# mutmut's exit codes per mutant (mutmut/stats.py): what each means for the score.
TIMEOUT = {36, 24, -24, 152, 255}  # it hung past mutmut's timeout (SIGXCPU …)
KILLED = {1, 3} | TIMEOUT  # a test failed, pytest broke, or it hung
SURVIVED = {0}
NO_TESTS = {5, 33}
SKIPPED = {34}


@dataclass(frozen=True)
class ModuleScore:
    """One module's mutants by outcome."""

    module: str
    mutants: int
    killed: int
    #: Of the killed, those that hung past their timeout rather than failing a test.
    hung: int
    survived: int
    no_tests: int
    skipped: int
    unchecked: int

    @property
    def score(self) -> float | None:
        """Killed over the mutants that ran (skipped ones aside); None when none did."""
        judged = self.mutants - self.skipped - self.unchecked
        return self.killed / judged if judged else None


def rule_modules() -> list[str]:
    """The modules ``[tool.mutmut] only_mutate`` names, in its order."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    return list(config["tool"]["mutmut"]["only_mutate"])


def score(module: str) -> ModuleScore:
    """The outcome of each of ``module``'s mutants, from mutmut's ``.meta`` file.

    Raises:
        FileNotFoundError: mutmut has not run on this module.
    """
    meta = json.loads((MUTANTS / f"{module}.meta").read_text("utf-8"))
    codes = Counter(meta["exit_code_by_key"].values())
    total = sum(codes.values())

    def of(kind: set[int]) -> int:
        return sum(n for code, n in codes.items() if code in kind)

    return ModuleScore(
        module=module,
        mutants=total,
        killed=of(KILLED),
        hung=of(TIMEOUT),
        survived=of(SURVIVED),
        no_tests=of(NO_TESTS),
        skipped=of(SKIPPED),
        unchecked=codes.get(None, 0),
    )


def survivors(module: str) -> list[str]:
    """The names of ``module``'s surviving and unreached mutants (``mutmut show NAME``)."""
    meta = json.loads((MUTANTS / f"{module}.meta").read_text("utf-8"))
    return sorted(
        name
        for name, code in meta["exit_code_by_key"].items()
        if code in SURVIVED or code in NO_TESTS
    )


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f} %"


def table(scores: list[ModuleScore]) -> str:
    header = ("module", "mutants", "killed", "of them hung", "survived", "no test", "score")
    rows = [
        (
            s.module,
            *(str(n) for n in (s.mutants, s.killed, s.hung, s.survived, s.no_tests)),
            percent(s.score),
        )
        for s in scores
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells))
    return "\n".join(lines)


def run(children: int) -> float:
    """``mutmut run``; returns its duration in seconds.

    Raises:
        SystemExit: mutmut failed before judging the mutants (its stats run failed).
    """
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "mutmut", "run", "--max-children", str(children)],
        cwd=ROOT,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"mutmut run failed (exit {done.returncode})")
    return time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Mutation testing of Loa's rule modules (mutmut): each module's score."
    )
    parser.add_argument("--report", action="store_true", help="the last run's table only")
    parser.add_argument("--survivors", action="store_true", help="list each survivor")
    parser.add_argument("--minimum", type=float, default=90.0, help="percent (default 90)")
    parser.add_argument("--children", type=int, default=os.cpu_count() or 2)
    options = parser.parse_args(argv)
    seconds = None if options.report else run(options.children)
    scores = [score(module) for module in rule_modules()]
    print(table(scores))
    total = ModuleScore("all", *(sum(getattr(s, f) for s in scores) for f in _COUNTS))
    judged = total.mutants - total.skipped - total.unchecked
    print(f"\nall rule modules: {percent(total.score)} of {judged} judged mutants killed")
    if total.unchecked:
        # A run of some modules only (``mutmut run 'campaigns.hours*'``): say what was not.
        print(f"not run: {total.unchecked} mutants (run `make mutation` for every module)")
    if seconds is not None:
        print(f"mutation run: {seconds / 60:.1f} min with {options.children} processes")
    if options.survivors:
        for module in rule_modules():
            for name in survivors(module):
                print(name)
        if not any(survivors(module) for module in rule_modules()):
            print("no survivors")
    low = [s.module for s in scores if s.score is not None and s.score * 100 < options.minimum]
    if low:
        print(f"under {options.minimum:g} %: {', '.join(low)}", file=sys.stderr)
        return 1
    return 0


_COUNTS = ("mutants", "killed", "hung", "survived", "no_tests", "skipped", "unchecked")

if __name__ == "__main__":
    sys.exit(main())
