"""What several tests of a run read, made once for the whole run: ``loa demo --json``
(``demo_in``) and the example campaign launched on a small list (``example_launched``).

``made_once`` runs the making in a folder of the run's own, under a file lock shared by
every xdist worker of the run: the first test to ask makes it, the others wait, then read
it. Each test gets its own copy of the ledger's ``var/`` (a report or a command writes
into the ledger), so a test never sees another's writes. The demo takes half a minute of a
two-core machine; three tests each running their own once made the suite that much longer.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest


def made_once(
    name: str, tmp_path_factory: pytest.TempPathFactory, make: Callable[[Path], None]
) -> Path:
    """The run's folder ``name``, where ``make(folder)`` ran once for the whole run. A
    ``make`` that failed leaves nothing: the next test to ask makes it again (and fails the
    same way, as its own test would have)."""
    base = tmp_path_factory.getbasetemp()
    # Under xdist every worker's base is a folder of the run's own: their parent is the
    # run's. Alone, the base is the run's.
    run = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    shared = run / name
    with open(run / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the first makes it; the others wait, then read
        made = run / f"{name}.made"
        if not made.exists():
            shutil.rmtree(shared, ignore_errors=True)
            shared.mkdir()
            make(shared)
            made.touch()
    return shared


def demo_in(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> subprocess.CompletedProcess[str]:
    """The demo's result, its ``var/`` copied into ``tmp_path``."""
    from tests.scripts.test_cli import loa

    def make(folder: Path) -> None:
        done = loa("demo", "--json", cwd=folder)
        (folder / "result.json").write_text(
            json.dumps([done.returncode, done.stdout, done.stderr]), encoding="utf-8"
        )

    shared = made_once("loa-demo", tmp_path_factory, make)
    returncode, stdout, stderr = json.loads((shared / "result.json").read_text(encoding="utf-8"))
    if (shared / "var").exists():
        shutil.copytree(shared / "var", tmp_path / "var", dirs_exist_ok=True)
    stdout = stdout.replace(str((shared / "var").resolve()), str((tmp_path / "var").resolve()))
    return subprocess.CompletedProcess(["loa", "demo", "--json"], returncode, stdout, stderr)


def example_launched(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """``loa campaign launch examples/bluezone.toml -r list.csv`` (``small_list``: two
    recipients, one row refused) run to its end on the embedded ledger, once for the run;
    ``tmp_path/var`` becomes this test's own copy of that ledger, as if the test had
    launched it in ``tmp_path`` itself. For tests that read or act on a finished campaign,
    not on what the launch printed."""
    from tests.scripts.test_cli import EXAMPLE, loa, small_list

    def make(folder: Path) -> None:
        launched = loa(
            "campaign", "launch", str(EXAMPLE), "-r", str(small_list(folder)), cwd=folder
        )
        assert launched.returncode == 0, launched.stderr

    shared = made_once("example-launched", tmp_path_factory, make)
    shutil.copytree(shared / "var", tmp_path / "var")
