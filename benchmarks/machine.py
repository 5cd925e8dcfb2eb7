"""The machine and the code a benchmark run measured: what makes a row of history readable."""

from __future__ import annotations

import os
import platform
import subprocess
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path


@dataclass(frozen=True)
class Machine:
    """Where and on what a run happened.

    ``load`` is the one-minute load average when the run started; ``commit`` the short
    hash of HEAD, with ``+changes`` when the work tree differed from it (figures of code
    that no commit holds).
    """

    started: str
    cores: int
    model: str
    load: float
    commit: str
    python: str

    def describe(self) -> str:
        return f"{self.cores} cores ({self.model}), load {self.load:.2f}, commit {self.commit}"

    def as_json(self) -> dict[str, object]:
        return asdict(self)


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's model name as Linux reports it, else what ``platform`` knows."""
    try:
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.lower().startswith("model name") and ":" in line:
                return " ".join(line.split(":", 1)[1].split())
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def commit_of(root: Path) -> str:
    """HEAD's short hash, ``+changes`` if tracked files differ; ``unknown`` outside git."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            [
                "git",
                "status",
                "--porcelain",
                "--untracked-files=no",
                "--",
                ".",
                ":!benchmarks/RESULTS.md",
            ],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+changes" if dirty else "")


def read_machine(root: Path) -> Machine:
    """The machine now: cores, CPU model, load, the commit under ``root``, Python."""
    return Machine(
        started=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        cores=os.cpu_count() or 1,
        model=cpu_model(),
        load=os.getloadavg()[0],
        commit=commit_of(root),
        python=platform.python_version(),
    )
