"""A bind's requests in flight: their sequence numbers, the window that bounds them, and
which answer belongs to which (``session.Bind`` writes and reads; this keeps count).

SMPP 3.4 §2.6: every request carries a sequence number (1..0x7FFFFFFF) that its
response repeats; an ESME may have several requests outstanding, up to the number its
SMSC's operator agreed to (the window). A response is matched by number and must be
its request's own command (``submit_sm`` by ``submit_sm_resp``) or ``generic_nack``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from providers.smpp import pdu as codec
from providers.smpp.errors import ConnectionLost, GenericNack, MalformedPdu
from providers.smpp.pdu import Pdu

log = logging.getLogger("loa.providers.smpp")


class Window:
    """The requests of one bind written and not yet answered.

    Parameters:
        size: submit_sm outstanding at most at once (other requests are not counted).
    """

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"window must be at least 1, not {size}")
        self.size = size
        #: Responses that came after their request had timed out (or were never asked).
        self.late_responses = 0
        self.sequence = 0
        self._slots = asyncio.Semaphore(size)
        self._pending: dict[int, asyncio.Future[Pdu]] = {}
        self._asked: dict[int, str] = {}  # each outstanding request's command
        self._queued = 0

    @property
    def outstanding(self) -> int:
        """Requests written and not yet answered."""
        return len(self._pending)

    @property
    def load(self) -> int:
        """Outstanding requests and submit_sm waiting for a slot: what a new one queues
        behind."""
        return len(self._pending) + self._queued

    def next_sequence(self) -> int:
        """1..0x7FFFFFFF then 1 again, skipping a number still outstanding."""
        while True:
            self.sequence = self.sequence % codec.MAX_SEQUENCE + 1
            if self.sequence not in self._pending:
                return self.sequence

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the window's slots (waiting for one to free) while inside."""
        self._queued += 1
        try:
            await self._slots.acquire()
        finally:
            self._queued -= 1
        try:
            yield
        finally:
            self._slots.release()

    def expect(self, sequence: int, command: str) -> asyncio.Future[Pdu]:
        """A future for the answer to ``command`` numbered ``sequence``."""
        future: asyncio.Future[Pdu] = asyncio.get_running_loop().create_future()
        self._pending[sequence] = future
        self._asked[sequence] = command
        return future

    def forget(self, sequence: int) -> None:
        """The request is done with (answered, timed out, failed)."""
        future = self._pending.pop(sequence, None)
        self._asked.pop(sequence, None)
        if future is not None and future.done() and not future.cancelled():
            future.exception()  # retrieved: asyncio would warn about a failed drain

    def answered(self, answer: Pdu) -> None:
        """Give ``answer`` to its request: its result, ``GenericNack``, or, for another
        command's response under its number, ``MalformedPdu`` (a submit_sm answered by a
        deliver_sm_resp carries no message_id: whether it was taken is unknown)."""
        future = self._pending.get(answer.sequence)
        if future is None or future.done():
            self.late_responses += 1  # its request timed out: the message stays unknown
            log.info("smpp %s #%d came too late", answer.command, answer.sequence)
            return
        asked = self._asked.get(answer.sequence)
        if answer.command == "generic_nack":
            future.set_exception(GenericNack(answer.status))
        elif answer.command != f"{asked}_resp":
            future.set_exception(
                MalformedPdu(f"{asked} #{answer.sequence} answered by {answer.command}")
            )
        else:
            future.set_result(answer)

    def fail(self, sequence: int, error: Exception) -> None:
        """The answer to ``sequence`` came and could not be read."""
        future = self._pending.get(sequence)
        if future is not None and not future.done():
            future.set_exception(error)

    def fail_all(self, reason: str) -> None:
        """The bind closed (``reason``): every outstanding request fails
        ``ConnectionLost``, its fate unknown."""
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectionLost(f"{reason}; the request's fate is unknown"))
