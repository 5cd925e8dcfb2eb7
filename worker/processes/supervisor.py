"""``loa worker``: the worker processes, the housekeeping process and the metrics server,
kept running by one small supervising process.

dramatiq's own command line shuts every process down when one of them dies, and nothing
starts them again: a worker killed by the kernel's OOM killer, or by a mistaken
``kill -9``, stopped the whole machine's sending until a person noticed. Here each child
that ends without being asked to is started again, after a pause that doubles while it
keeps dying young (1 s, 2 s, 4 s … at most ``MAX_BACKOFF``; a child that lived a minute
starts again after a second), so a broken setting does not spin a core and a Redis that
comes back an hour later finds its workers back within half a minute. SIGTERM or SIGINT
stops every child (a worker finishes the batches it holds, up to ``SHUTDOWN_SECONDS``)
and ends the supervisor with exit code 0.

The supervisor itself stays small (no ledger, no broker, no provider): what dies is what
did the work. Run it under something that restarts it too (systemd's ``Restart=always``,
Compose's ``restart: unless-stopped``; see the README).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

from worker.logging import get_logger

log = get_logger("loa.supervisor")

#: The longest pause before a child that keeps dying is started again (seconds).
MAX_BACKOFF = 30.0
#: A child that lived this long is healthy: its next start waits the shortest pause.
HEALTHY_AFTER = 60.0
#: How long a stopping worker may finish the batches it holds before it is killed; what
#: it leaves ``sending`` the reaper settles.
SHUTDOWN_SECONDS = 60
#: How often the supervisor looks at its children (seconds).
POLL = 0.25


@dataclass
class Child:
    """One supervised process: ``python -m worker.processes.child ARGS`` (or ``command``)."""

    name: str
    args: list[str]
    command: list[str] | None = None
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    next_start: float = 0.0
    backoff: float = 1.0
    starts: int = 0

    def start(self) -> None:
        command = self.command or [sys.executable, "-m", "worker.processes.child", *self.args]
        env = {
            **os.environ,
            "LOA_SUPERVISOR_PID": str(os.getpid()),
        }  # worker.processes.child reads it
        self.process = subprocess.Popen(command, env=env)
        self.started_at, self.starts = time.monotonic(), self.starts + 1
        log.info("child.started", child=self.name, pid=self.process.pid, start=self.starts)

    def ended(self) -> int | None:
        """The exit code if the child has ended (negative: killed by that signal)."""
        return None if self.process is None else self.process.poll()


class Supervisor:
    """Start ``children``, keep them running, stop them on SIGTERM or SIGINT.

    Parameters:
        children: what to run.
        on_death: called with a child's pid when it ended (the metrics files of a dead
            process are marked so, for prometheus-client's multiprocess mode).
    """

    def __init__(self, children: list[Child], on_death=None) -> None:
        self.children = children
        self.on_death = on_death
        self.stopping = False

    def _stop(self, signum: int, _frame: object) -> None:
        self.stopping = True

    def run(self) -> int:
        """Supervise until asked to stop; returns the exit code (0)."""
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        for child in self.children:
            child.start()
        while not self.stopping:
            now = time.monotonic()
            for child in self.children:
                code = child.ended()
                if child.process is not None and code is not None:
                    self._died(child, code, now)
                elif child.process is None and now >= child.next_start:
                    child.start()
            time.sleep(POLL)
        return self._shutdown()

    def _died(self, child: Child, code: int, now: float) -> None:
        assert child.process is not None
        pid, lived = child.process.pid, now - child.started_at
        child.process = None
        if self.on_death is not None:
            self.on_death(pid)
        if lived >= HEALTHY_AFTER:
            child.backoff = 1.0
        child.next_start = now + child.backoff
        child.backoff = min(MAX_BACKOFF, child.backoff * 2)
        how = f"signal {-code}" if code < 0 else f"exit code {code}"
        log.warning(
            "child.died",
            child=child.name,
            pid=pid,
            how=how,
            lived_s=round(lived, 1),
            restart_in_s=round(child.next_start - now, 1),
        )

    def _shutdown(self) -> int:
        log.info("supervisor.stopping", children=len(self.children))
        running = [c.process for c in self.children if c.process and c.process.poll() is None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + SHUTDOWN_SECONDS + 5
        for process in running:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return 0


def worker_children(
    processes: int, threads: int, queues: list[str], metrics: tuple[str, int] | None
) -> list[Child]:
    """The children of ``loa worker``: ``processes`` dramatiq workers on ``queues``, one
    housekeeping process, and the metrics server when ``metrics`` (host, port) is set."""
    children = [
        Child(f"worker-{i}", ["worker", "--threads", str(threads), "--queues", *queues])
        for i in range(processes)
    ]
    children.append(Child("housekeeping", ["housekeeping"]))
    if metrics is not None:
        host, port = metrics
        children.append(Child("metrics", ["metrics", "--host", host, "--port", str(port)]))
    return children


def mark_dead(directory: str):
    """What tells prometheus-client's multiprocess files that a child died."""

    def on_death(pid: int) -> None:
        try:
            os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", directory)
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(pid, directory)
        except Exception:  # metrics are not worth stopping the supervision for
            pass

    return on_death
