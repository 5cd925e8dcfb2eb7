"""Storing what arrives from providers, durably, before the provider gets its answer.

Two doors lead here: the webhook (a receipt posted over HTTP is answered 2xx once it is
committed) and a provider's own connection (a bind to a carrier's message centre answers
what it delivers once it is committed, ``providers.base.Inbox``). Either way, what arrives together is committed
together (``GroupCommit``): one transaction for whatever came while the last one ran, so
a storm of receipts costs a commit per group, not per receipt.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from sqlalchemy.engine import Engine

from ledger import inbound as handsets
from ledger.receipts import Inbound, digest, drain_all, store
from providers.base import HandsetMessage, Receipt
from worker.logging import get_logger

log = get_logger("loa.inbox")

Row = TypeVar("Row")


class GroupCommit(Generic[Row]):
    """Rows that arrive together are stored in one transaction. Each caller awaits
    ``add``; a single writer task takes whatever is queued (up to ``limit``), stores it in
    a worker thread, and wakes every caller with the outcome: durable, or the error.

    Parameters:
        store: writes a group of rows in one transaction (raises: none of them stored).
        limit: the most rows in one transaction.
    """

    def __init__(self, store: Callable[[Sequence[Row]], Any], limit: int = 500) -> None:
        self.store, self.limit = store, limit
        self._queue: asyncio.Queue[tuple[Row, asyncio.Future[None]]] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None

    async def add(self, row: Row) -> None:
        """Returns once ``row`` is committed. Raises what storing raised."""
        if self._writer is None:
            self._writer = asyncio.create_task(self._write())
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self._queue.put((row, done))
        await done

    async def _write(self) -> None:
        while True:
            group = [await self._queue.get()]
            while not self._queue.empty() and len(group) < self.limit:
                group.append(self._queue.get_nowait())
            try:
                await asyncio.to_thread(self.store, [row for row, _ in group])
            except Exception as exc:  # every caller of this group is told
                for _, done in group:
                    if not done.done():
                        done.set_exception(exc)
            else:
                for _, done in group:
                    if not done.done():
                        done.set_result(None)

    async def aclose(self) -> None:
        if self._writer is not None:
            self._writer.cancel()


class LedgerInbox:
    """``providers.base.Inbox`` on the ledger, for one provider instance: receipts into
    the receipt inbox (``ledger.receipts``, applied by the drainers like the webhook's),
    handset messages into ``inbound_messages`` (``ledger.inbound``). Used on one event
    loop (the sending loop's)."""

    def __init__(self, engine: Engine, provider: str) -> None:
        self.provider, self.engine = provider, engine
        self._stored = False  # a receipt was stored: apply what is left when closing
        self._receipts: GroupCommit[Inbound] = GroupCommit(lambda rows: store(engine, rows))
        self._handsets: GroupCommit[handsets.InboundMessage] = GroupCommit(
            lambda rows: handsets.store(engine, rows)
        )

    async def receipt(self, receipt: Receipt, fields: dict[str, str] | Any) -> None:
        """Store one receipt; returns once committed.

        Raises:
            ValueError: the ledger can never hold it (``Inbound.check``).
        """
        inbound = Inbound(
            self.provider,
            receipt.provider_message_id,
            receipt.status,
            receipt.raw_status,
            receipt.code,
            receipt.network,
            digest(self.provider, fields),
        )
        inbound.check()  # refused alone, before it can fail a group commit
        await self._receipts.add(inbound)
        self._stored = True

    async def handset(self, message: HandsetMessage) -> None:
        """Store one handset message; returns once committed (a replay is stored once)."""
        row = handsets.InboundMessage(
            self.provider,
            message.source,
            message.destination,
            message.text,
            handsets.digest(self.provider, message.fields),
        )
        await self._handsets.add(row)

    async def aclose(self) -> None:
        """Stop storing, then apply the receipts stored and not applied yet: a worker
        stopped cleanly mid-campaign otherwise left the receipts of its last seconds
        ``pending`` (its housekeeper stops at once), their messages ``sent`` until some
        worker ran again. The ledger away: they wait for the next drainer, as ever."""
        await self._receipts.aclose()
        await self._handsets.aclose()
        if not self._stored:
            return
        try:
            await asyncio.to_thread(drain_all, self.engine)
        except Exception as exc:
            log.warning("receipts.drain_failed", error=type(exc).__name__)
