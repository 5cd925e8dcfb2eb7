"""``loa worker``'s supervisor: a child that dies is started again, with a growing pause
while it keeps dying; SIGTERM stops every child and ends the supervisor cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from tests.scripts.test_cli import ROOT

SCRIPT = textwrap.dedent(
    """
    import sys
    from worker.logging import configure_logging
    from worker.processes.supervisor import Child, Supervisor

    configure_logging("INFO", "json")
    children = [
        Child("steady", [], [sys.executable, "-c", "import time; time.sleep(600)"]),
        Child("dying", [], [sys.executable, "-c", "import sys; sys.exit(3)"]),
    ]
    sys.exit(Supervisor(children).run())
    """
)


def events(stderr: str) -> list[dict]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def test_a_dying_child_is_started_again_and_sigterm_stops_everything(tmp_path):
    supervisor = subprocess.Popen(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stderr=subprocess.PIPE,
        text=True,
    )
    seen: list[dict] = []
    deadline = time.monotonic() + 60
    while sum(e["event"] == "child.died" for e in seen) < 3:  # the condition decides
        assert time.monotonic() < deadline, seen
        line = supervisor.stderr.readline()
        if line.startswith("{"):
            seen.append(json.loads(line))
    supervisor.send_signal(signal.SIGTERM)
    _, rest = supervisor.communicate(timeout=30)
    seen += events(rest)

    assert supervisor.returncode == 0
    died = [e for e in seen if e["event"] == "child.died"]
    assert {e["child"] for e in died} == {"dying"} and died[0]["how"] == "exit code 3"
    # Dying young, again and again: the pause before the next start doubles.
    assert [e["restart_in_s"] for e in died[:3]] == [1.0, 2.0, 4.0]
    steady = [e for e in seen if e["event"] == "child.started" and e["child"] == "steady"]
    assert len(steady) == 1  # never restarted: it never died
    # … and it did not outlive the supervisor.
    assert subprocess.run(["kill", "-0", str(steady[0]["pid"])], capture_output=True).returncode


ORPHANING = textwrap.dedent(
    """
    import sys
    from worker.logging import configure_logging
    from worker.processes.supervisor import Child, Supervisor

    configure_logging("INFO", "json")
    port = sys.argv[1]
    children = [Child("metrics", ["metrics", "--host", "127.0.0.1", "--port", port])]
    sys.exit(Supervisor(children).run())
    """
)


def test_children_of_a_supervisor_killed_outright_stop_by_themselves(tmp_path):
    from tests.rig import free_port

    env = {**os.environ, "PYTHONPATH": str(ROOT), "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    supervisor = subprocess.Popen(
        [sys.executable, "-c", ORPHANING, str(free_port())],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    started = None
    while started is None:  # the first line that names the child's pid
        line = supervisor.stderr.readline()
        assert line, "the supervisor ended before starting its child"
        if line.startswith("{") and json.loads(line)["event"] == "child.started":
            started = json.loads(line)["pid"]
    supervisor.kill()  # SIGKILL: no chance to stop its children
    supervisor.wait()
    deadline = time.monotonic() + 30
    while Path(f"/proc/{started}").exists() and _state(started) != "Z":
        assert time.monotonic() < deadline, "the orphaned child kept running"
        time.sleep(0.1)  # polling the child's end; the loop condition decides


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"
