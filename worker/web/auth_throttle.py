"""Failed authentication, slowed down per address and door.

A wrong receipt signature, receipt token or arrivals API key costs the caller one token
of a bucket kept per client address and door (one provider instance's receipt route, or
``/arrivals``): ``burst`` failures at once, then one more every ``every`` seconds. An
address whose bucket at that door is empty is answered 429 with ``Retry-After`` *before
its key is looked at*, so it learns nothing until the bucket refills. Measured before this
(issue 17): a thousand wrong keys in 1.4 s; now, after the first 20, one every 3 s: a
thousand take about 50 minutes, and an online guess of a 10^13 key is hopeless.

The price: while an address is slowed at a door, its good requests there get 429 too
(checking them would hand the guesser an answer). Failures at one door never close
another, so wrong arrivals keys never hold up a provider's receipts. The client address
is the one uvicorn gives (``X-Forwarded-For`` only from ``FORWARDED_ALLOW_IPS``, see
docs/deploy/reverse-proxy.md): behind a proxy that does not pass it, every caller shares
the proxy's address, and one attacker would slow a provider's receipts down too.

The buckets live in the process (each ``--workers`` process has its own): the point is
the cost of guessing, not an exact count. At most ``addresses`` are remembered; the
oldest is forgotten first.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable


class AuthThrottle:
    """Failure buckets per key (a client address and a door).

    Parameters:
        burst: failures an address may have at once.
        every: seconds for one failure to be forgiven.
        addresses: how many addresses are remembered at most.
        clock: monotonic seconds (a test's own clock).
    """

    def __init__(
        self,
        burst: int = 20,
        every: float = 3.0,
        addresses: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.burst, self.every, self.addresses, self.clock = burst, every, addresses, clock
        self._spent: OrderedDict[str, tuple[float, float]] = OrderedDict()  # (tokens, at)
        #: ``take`` is called from several threads at once (a sync route's thread pool).
        self._lock = threading.Lock()

    def _tokens(self, address: str) -> float:
        tokens, at = self._spent.get(address, (float(self.burst), self.clock()))
        return min(float(self.burst), tokens + (self.clock() - at) / self.every)

    def wait(self, address: str) -> float:
        """Seconds ``address`` must wait before its next attempt is even checked (0: go on)."""
        tokens = self._tokens(address)
        return 0.0 if tokens >= 1 else (1 - tokens) * self.every

    def failed(self, address: str) -> bool:
        """Count one failed attempt of ``address``. Returns whether that was its last
        before being slowed (its next attempts wait: worth one line in the log)."""
        return self._put(address, max(0.0, self._tokens(address) - 1)) < 1

    def _put(self, address: str, tokens: float) -> float:
        self._spent[address] = (tokens, self.clock())
        self._spent.move_to_end(address)
        while len(self._spent) > self.addresses:
            self._spent.popitem(last=False)
        return tokens

    def take(self, *addresses: str) -> float:
        """Spend one attempt at each of ``addresses`` before the attempt is checked, at
        once for all of them: 0 when it may go on (``give_back`` if it succeeds), else the
        seconds to wait (nothing spent). Where a check takes a while (a password's hash)
        and requests run in parallel, ``wait`` then ``failed`` would let every request
        already in flight through: thirty guesses at once instead of five."""
        with self._lock:
            wait = max((self.wait(address) for address in addresses), default=0.0)
            if wait <= 0:
                for address in addresses:
                    self.failed(address)
            return wait

    def give_back(self, *addresses: str) -> None:
        """The attempt ``take`` spent succeeded: it is not counted."""
        with self._lock:
            for address in addresses:
                self._put(address, min(float(self.burst), self._tokens(address) + 1))
