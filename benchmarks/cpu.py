"""CPU seconds a process group has spent, read from Linux's ``/proc``.

A rate measured by the wall clock depends on how the machine's cores are shared: under a
load, a subject of several processes (a worker, its batch threads, the database) gets a
different share than a reference of one, and their ratio moves with the load. Messages per
CPU second of the sending process, against the same of the bare loop, is the work each
does, which the load does not change (issue 25).
"""

from __future__ import annotations

import os
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def group_cpu_seconds(pgid: int, proc: Path = Path("/proc")) -> float:
    """User + system CPU seconds of every live process in process group ``pgid``.

    Resolution: one clock tick (10 ms on Linux); a process that exited in between is no
    longer counted, so take both readings while the group's processes run.
    """
    total = 0
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone since the listing
        # "pid (comm) state ppid pgrp ... utime stime": comm may hold spaces and ")".
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / _TICKS
