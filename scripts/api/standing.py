"""A campaign's standing as ``GET /v1/campaigns/ID`` serves it: counted at most once a
second per campaign however many callers poll it, and never held up by a count.

Counting a campaign reads all its messages (one pass: ``ledger.tally``): about 25 ms for
100,000, ten times that for a million. An operations centre's screens poll every few
seconds, a dozen at once; each count is shared by every request in its second
(``FRESH``), and a caller never waits for a newer one while the last is younger than
``STALE``: it gets that one, said with its time (``as_of``, ``age_seconds``), and a
newer one is counted beside. Older than ``STALE`` (nobody asked for a while), or asked
``fresh``, the request counts and waits, unless the last count began within ``FRESH``
(``fresh`` is "of this second": a thousand callers asking it at once, or one asking it
in a loop, cost one count a second, not one each). A pause, resume or cancel made here
forgets the campaign's count at once. A change made elsewhere (another API process, the
command line, the scheduler, a provider's halt or its resume) is seen by ``version``, a
cheap read of the campaign's state and the providers' halts made before an older count
is served: when it differs from the one read with that count, the request counts anew
and waits. So the counts may be up to ``STALE`` old, the state never more than ``FRESH``.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

#: Shared by every request within this many seconds of the count.
FRESH = 1.0
#: Served while a newer count is made, up to this old (seconds).
STALE = 30.0
#: Campaigns remembered at most (the least recently asked forgotten first).
KEPT = 256


#: A count: when it began (monotonic, and the time of day), the standing, its version.
Counted = tuple[float, datetime, dict[str, Any], Hashable]


class Standings:
    """Counts of campaigns' standing, shared by the requests of one process."""

    def __init__(
        self,
        count: Callable[[str], dict[str, Any]],
        version: Callable[[str], Hashable] | None = None,
    ) -> None:
        self._count = count
        #: What changes a standing beyond its counts (the campaign's state, the halts):
        #: read with each count, and again before an older count is served.
        self._version = version or (lambda campaign_id: None)
        self._kept: OrderedDict[str, Counted] = OrderedDict()
        self._counting: dict[str, Future[Counted]] = {}
        #: Bumped by ``forget``: a count begun before a change is not kept after it.
        self._changes: dict[str, int] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(2, thread_name_prefix="loa-standing")

    def get(self, campaign_id: str, fresh: bool = False) -> dict[str, Any]:
        """The campaign's standing, with ``as_of`` and ``age_seconds``.

        Raises:
            Whatever counting raises (an unknown campaign: ``Problem`` 404).
        """
        with self._lock:
            kept = self._kept.get(campaign_id)
            if kept is not None:
                self._kept.move_to_end(campaign_id)
        if kept is not None:
            age = time.monotonic() - kept[0]
            if age < FRESH and not fresh:
                return _said(kept)
            served = age < FRESH or (age < STALE and not fresh)
            if served and self._version(campaign_id) == kept[3]:
                if age >= FRESH:
                    self._start(campaign_id)  # a newer one beside; this one now
                return _said(kept)  # (asked fresh: counted within the second)
            self._outdated(campaign_id, kept)  # changed elsewhere: counted anew
        return _said(self._start(campaign_id).result())

    def forget(self, campaign_id: str) -> None:
        """A change made here: the next request counts anew."""
        with self._lock:
            self._forget(campaign_id)

    def _outdated(self, campaign_id: str, kept: Counted) -> None:
        """``forget``, once for the requests that found ``kept`` outdated together (the
        first; the others join the count it starts)."""
        with self._lock:
            if self._kept.get(campaign_id) is kept:
                self._forget(campaign_id)

    def _forget(self, campaign_id: str) -> None:  # under the lock
        self._kept.pop(campaign_id, None)
        self._changes[campaign_id] = self._changes.get(campaign_id, 0) + 1
        self._counting.pop(campaign_id, None)  # a later request counts anew

    def _start(self, campaign_id: str) -> Future[Counted]:
        """The count under way for the campaign, or a new one (one at a time each)."""
        with self._lock:
            running = self._counting.get(campaign_id)
            if running is None:
                running = self._pool.submit(self._counted, campaign_id)
                self._counting[campaign_id] = running
        return running

    def _counted(self, campaign_id: str) -> Counted:
        with self._lock:
            change = self._changes.get(campaign_id, 0)
        try:
            began, at = time.monotonic(), datetime.now(UTC)
            version = self._version(campaign_id)  # before the count: a change after it shows
            counted = (began, at, self._count(campaign_id), version)
            with self._lock:
                if self._changes.get(campaign_id, 0) == change:
                    self._kept[campaign_id] = counted
                    self._kept.move_to_end(campaign_id)
                    while len(self._kept) > KEPT:
                        self._kept.popitem(last=False)
            return counted
        finally:
            with self._lock:
                if self._changes.get(campaign_id, 0) == change:
                    self._counting.pop(campaign_id, None)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _said(kept: Counted) -> dict[str, Any]:
    """The standing, with when it was counted (a caller that joined a count under way
    is told its age too, not 0)."""
    age = max(0.0, time.monotonic() - kept[0])
    return {**kept[2], "as_of": kept[1].isoformat(), "age_seconds": round(age, 3)}
