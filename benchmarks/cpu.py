"""CPU seconds a process group has spent, read from Linux's ``/proc``.

A rate measured by the wall clock depends on how the machine's cores are shared: under a
load, a subject of several processes (a worker, its batch threads, the database) gets a
different share than a reference of one, and their ratio moves with the load. Messages per
CPU second of the sending process, against the same of the bare loop, is the work each
does, which the load does not change (issue 25).
"""

from __future__ import annotations

import bisect
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def group_cpu_seconds(pgid: int, proc: Path = Path("/proc")) -> float:
    """User + system CPU seconds of every live process in process group ``pgid``.

    Resolution: one clock tick (10 ms on Linux); a process that exited in between is no
    longer counted, so take both readings while the group's processes run.
    """
    return pids_cpu_seconds(group_pids(pgid, proc), proc)


def _stat_fields(entry: Path) -> list[str] | None:
    try:
        stat = (entry / "stat").read_text()
    except OSError:
        return None  # gone since the listing
    return stat[stat.rindex(")") + 2 :].split()


def group_pids(pgid: int, proc: Path = Path("/proc")) -> list[int]:
    """The live processes of process group ``pgid`` (one scan of ``/proc``)."""
    found = []
    for entry in proc.iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(entry)
            if fields is not None and int(fields[2]) == pgid:
                found.append(int(entry.name))
    return found


def pids_cpu_seconds(pids: list[int], proc: Path = Path("/proc")) -> float:
    """User + system CPU seconds of ``pids`` (those still alive): a few reads, cheap
    enough to sample every few milliseconds where a scan of ``/proc`` is not."""
    total = 0
    for pid in pids:
        fields = _stat_fields(proc / str(pid))
        if fields is not None:
            total += int(fields[11]) + int(fields[12])
    return total / _TICKS


def cpu_by_pid(proc: Path = Path("/proc")) -> dict[int, tuple[int, str, float]]:
    """Every live process: its parent, its command name and its CPU seconds so far."""
    found = {}
    for entry in proc.iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            name = stat[stat.index("(") + 1 : stat.rindex(")")]
            fields = stat[stat.rindex(")") + 2 :].split()
            found[int(entry.name)] = (
                int(fields[1]),
                name,
                (int(fields[11]) + int(fields[12])) / _TICKS,
            )
    return found


def serving(
    snapshot: dict[int, tuple[int, str, float]], root: int, names: tuple[str, ...]
) -> set[int]:
    """``root`` and its descendants, and every process named one of ``names`` (the
    database server's backends, which serve whoever connects)."""
    chosen = {pid for pid, (_, name, _) in snapshot.items() if name in names}
    children: dict[int, list[int]] = {}
    for pid, (parent, _, _) in snapshot.items():
        children.setdefault(parent, []).append(pid)
    todo = [root]
    while todo:
        pid = todo.pop()
        if pid in snapshot:
            chosen.add(pid)
        todo.extend(children.get(pid, []))
    return chosen


#: The database whose PostgreSQL backends :class:`Spent` counts (``None``: every process
#: named ``postgres``); set by :func:`watch_database` once a benchmark has its scratch
#: database, so that another user of the same server is not counted as ours.
_DATABASE: str | None = None


def watch_database(url: str) -> None:
    """Count only the backends serving the database of ``url`` (a SQLAlchemy or libpq
    URL), and the server's own background processes none of them."""
    global _DATABASE
    _DATABASE = url.rsplit("/", 1)[-1].split("?", 1)[0] or None


def _serves_database(pid: int, database: str, proc: Path = Path("/proc")) -> bool:
    """Whether a ``postgres`` process is a backend of ``database``: PostgreSQL titles each
    backend ``postgres: [CLUSTER:] USER DATABASE HOST STATE`` (``update_process_title``,
    on by default), which is its ``cmdline``."""
    try:
        title = (proc / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (OSError, UnicodeDecodeError):
        return False
    words = title.split()
    if not words or words[0] != "postgres:":
        return False
    # After "postgres:" and, on Debian, the cluster's name ("15/main:"): user, database.
    rest = [w for w in words[1:3] if not w.endswith(":")] + words[3:]
    return len(rest) >= 2 and rest[1] == database


class Spent:
    """CPU seconds spent by a server (a process and its descendants) and PostgreSQL's
    processes between entering and leaving the block: the work a request cost on the
    serving side, whatever share of the cores each process got meanwhile.

    A process that exits inside the block is not counted; one that starts is, whole.
    """

    def __init__(self, root: int, names: tuple[str, ...] = ("postgres",)) -> None:
        self.root, self.names, self.seconds = root, names, 0.0

    def __enter__(self) -> Spent:
        self._before = cpu_by_pid()
        return self

    def __exit__(self, *_: object) -> None:
        after = cpu_by_pid()
        chosen = serving(after, self.root, self.names)
        if _DATABASE is not None:
            chosen = {
                pid
                for pid in chosen
                if after[pid][1] not in self.names or _serves_database(pid, _DATABASE)
            }
        self.seconds = sum(
            after[pid][2] - (self._before[pid][2] if pid in self._before else 0.0) for pid in chosen
        )


class CpuSampler:
    """A process group's CPU seconds sampled every ``every`` seconds by a thread, so that
    the CPU spent between two moments known only afterwards (the first request at a
    gateway, the last result in the ledger: wall-clock times) can be read off.

    Its processes are found once, at the start (the group's processes must all be up):
    a worker's master and its forked processes live as long as it does.
    """

    def __init__(self, pgid: int, every: float = 0.02) -> None:
        self.pids = group_pids(pgid)
        self.every = every
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        self.samples.append((time.time(), pids_cpu_seconds(self.pids)))

    def _run(self) -> None:
        while True:
            self._sample()
            if self._stop.wait(self.every):  # a sampling period: the clock decides
                self._sample()
                return

    def __enter__(self) -> CpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def at(self, when: float) -> float:
        """CPU seconds at wall-clock ``when`` (``time.time()``), interpolated between the
        samples either side (the first or last sample outside their span)."""
        times = [t for t, _ in self.samples]
        i = bisect.bisect_left(times, when)
        if i == 0:
            return self.samples[0][1]
        if i == len(times):
            return self.samples[-1][1]
        (t0, c0), (t1, c1) = self.samples[i - 1], self.samples[i]
        return c0 + (c1 - c0) * (when - t0) / (t1 - t0) if t1 > t0 else c1

    def between(self, start: float, end: float) -> float:
        """CPU seconds spent between wall-clock ``start`` and ``end``."""
        return self.at(end) - self.at(start)


def spent_once(call: Callable[[], object], root: int | None = None) -> float:
    """CPU seconds one ``call`` cost this process (or ``root``), its descendants and
    PostgreSQL (:class:`Spent`)."""
    with Spent(os.getpid() if root is None else root) as spent:
        call()
    return spent.seconds


def spent_autorange(call: Callable[[], object], at_least: float = 1.0) -> tuple[float, float]:
    """CPU seconds and wall-clock seconds one ``call`` costs (CPU as :func:`spent_once`),
    repeated until the calls fill ``at_least`` seconds of the wall clock: a short measure
    averaged (see :func:`benchmarks.figures.autorange`)."""
    calls = 0
    with Spent(os.getpid()) as spent:
        started = time.perf_counter()
        while True:
            call()
            calls += 1
            elapsed = time.perf_counter() - started
            if elapsed >= at_least:
                break
    return spent.seconds / calls, elapsed / calls


def process_cpu_seconds(pid: int, proc: Path = Path("/proc")) -> float:
    """User + system CPU seconds process ``pid`` has spent so far (0 when it is gone): a
    PostgreSQL backend's, read while its connection is open."""
    return pids_cpu_seconds([pid], proc)
