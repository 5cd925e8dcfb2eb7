"""Rate tokens handed to senders at the moment they send: a process's way through one
bucket (``worker.sending.ratelimit``), on the sending loop.

A sender holding a message asks the gate and sends as soon as it is let through; it is
the only way a token is spent. Senders that ask together share one call to the bucket
(one Redis round trip for all of them), and the bucket is asked for exactly as many
tokens as there are senders waiting, so no token ever waits for a message: what the
bucket grants goes on the wire within the same turn of the loop. That is what keeps the
provider's count in any second within ``rate + burst``, with one process or many.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field

from worker.sending.ratelimit import Bucket


@dataclass(eq=False)
class _Waiter:
    cost: int  # tokens still owed (a message's parts, with RATE_UNIT = parts)
    future: asyncio.Future[float]
    asked_at: float = field(default=0.0)


class Gate:
    """Let senders through ``bucket`` (``None``: no agreed rate, everyone passes).

    Parameters:
        bucket: the limit to respect.
    """

    def __init__(self, bucket: Bucket | None) -> None:
        self.bucket = bucket
        self._waiting: deque[_Waiter] = deque()
        self._pump: asyncio.Task[None] | None = None

    async def through(self, cost: int = 1) -> float:
        """Wait until ``cost`` tokens are granted for a request about to leave; returns
        the seconds waited.

        Raises:
            Whatever the bucket raised (Redis unreachable): nothing was granted.
        """
        if self.bucket is None:
            return 0.0
        loop = asyncio.get_running_loop()
        waiter = _Waiter(cost, loop.create_future(), loop.time())
        self._waiting.append(waiter)
        if self._pump is None or self._pump.done():
            self._pump = loop.create_task(self._grant())
        return await waiter.future

    async def give_back(self, cost: int) -> None:
        """Return tokens a sender was let through with and did not spend (its message
        was held back after all)."""
        if self.bucket is not None and cost > 0:
            await self.bucket.give_back(cost)

    async def _grant(self) -> None:
        """Ask the bucket for the waiting senders' tokens, in order, until none waits.
        A message dearer than the whole burst (many parts) is paid in pieces."""
        assert self.bucket is not None
        loop = asyncio.get_running_loop()
        while self._waiting:
            while self._waiting and self._waiting[0].future.done():  # gave up meanwhile
                self._waiting.popleft()
            if not self._waiting:
                return
            head = self._waiting[0]
            want = sum(w.cost for w in self._waiting)
            try:
                granted, wait = await self.bucket.try_take(want, min(head.cost, self.bucket.burst))
            except Exception as error:  # every waiter learns it; none got a token
                for waiter in self._waiting:
                    if not waiter.future.done():
                        waiter.future.set_exception(error)
                self._waiting.clear()
                return
            if not granted:
                await asyncio.sleep(wait)
                continue
            while self._waiting and granted:
                waiter = self._waiting[0]
                if waiter.future.done():
                    self._waiting.popleft()
                elif waiter.cost <= granted:
                    granted -= waiter.cost
                    waiter.cost = 0
                    self._waiting.popleft()
                    waiter.future.set_result(loop.time() - waiter.asked_at)
                elif waiter.cost > self.bucket.burst:  # never whole at once: in pieces
                    waiter.cost -= granted
                    granted = 0
                else:
                    break  # not enough for the next one whole: the rest goes back
            if granted:
                await self.bucket.give_back(granted)
            # Let the senders just let through start their requests before the bucket is
            # asked again: a grant is never made while an earlier one is unspent.
            await asyncio.sleep(0)
