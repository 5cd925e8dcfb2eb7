"""The garbage collector of a worker process, tuned for sending.

CPython's cyclic collector runs after every 700 container allocations, and each of its
older passes walks every object the process holds. A sending loop allocates thousands of
short-lived objects per second (aiohttp builds a request, a response and their helpers
for every SMS) in a process that also holds SQLAlchemy, pydantic and dramatiq: sampled
in the throughput benchmark, the collector took about a tenth of the sending loop's
time, the loop being the one thread every send goes through. Reference counting frees
almost all of those objects anyway; the collector is only for cycles.

So each worker process, once booted: ``gc.freeze()`` moves what exists then (modules,
actors, settings: alive until the process ends) out of the collector's sight, and the
youngest generation is collected every ``GEN0_THRESHOLD`` allocations instead of 700
(measured with ``benchmarks/dispatch.py``: 6,567 → 7,420 messages/s, medians of three
runs each, interleaved, on the same machine).
"""

from __future__ import annotations

import gc
from typing import Any

from dramatiq.middleware import Middleware

#: Container allocations between two collections of the youngest generation.
GEN0_THRESHOLD = 20_000


class CollectorTuning(Middleware):
    """Freezes what a worker process holds at boot and spaces out the collections."""

    def after_worker_boot(self, broker: Any, worker: Any) -> None:
        gc.freeze()
        _, gen1, gen2 = gc.get_threshold()
        gc.set_threshold(GEN0_THRESHOLD, gen1, gen2)
