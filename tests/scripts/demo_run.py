"""``loa demo --json`` run once for a whole test run, however many tests read it: the
first test to ask runs it under a file lock shared by every xdist worker of the run; each
test gets its own copy of the demo's ``var/`` (a report writes into the ledger), so a
test never sees another's writes. The demo takes half a minute of a two-core machine;
three tests each running their own once made the suite that much longer."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest


def demo_in(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> subprocess.CompletedProcess[str]:
    """The demo's result, its ``var/`` copied into ``tmp_path``."""
    from tests.scripts.test_cli import loa

    base = tmp_path_factory.getbasetemp()
    # Under xdist every worker's base is a folder of the run's own: their parent is the
    # run's. Alone, the base is the run's.
    run = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    shared = run / "loa-demo"
    shared.mkdir(exist_ok=True)
    with open(run / "loa-demo.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the first runs it; the others wait, then read
        kept = shared / "result.json"
        if not kept.exists():
            done = loa("demo", "--json", cwd=shared)
            kept.write_text(
                json.dumps([done.returncode, done.stdout, done.stderr]), encoding="utf-8"
            )
        returncode, stdout, stderr = json.loads(kept.read_text(encoding="utf-8"))
    if (shared / "var").exists():
        shutil.copytree(shared / "var", tmp_path / "var", dirs_exist_ok=True)
    stdout = stdout.replace(str((shared / "var").resolve()), str((tmp_path / "var").resolve()))
    return subprocess.CompletedProcess(["loa", "demo", "--json"], returncode, stdout, stderr)
