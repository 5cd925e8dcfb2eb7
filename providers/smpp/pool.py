"""The binds one SMPP provider instance keeps open in a worker process, for its whole life.

Each bind has a keeper task: connect and bind, wait until the bind closes (the SMSC went
away, unbound, or stopped answering enquire_link), then wait and bind again, the wait
doubling from ``reconnect_min`` to ``reconnect_max`` seconds (with jitter, so the binds of
many processes do not knock on a recovering SMSC together). The wait starts again from
``reconnect_min`` only after a bind that stayed up ``reconnect_max`` seconds: an SMSC that
takes each bind and drops it at once is otherwise knocked on every ``reconnect_min``. A bind the SMSC refuses for
its credentials (``statuses``: a halt) is not tried again: nothing will bind until a
person changes the setting, and hammering an SMSC with wrong passwords gets accounts
locked. ``close`` unbinds every bind cleanly.

Senders ``take`` the bound sending bind with the least load (unanswered and queued).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable

import structlog

from providers.smpp.errors import BindRefused, NotBound, SmppError
from providers.smpp.session import Bind, DeliverHandler, Mode
from providers.smpp.statuses import meaning

log = structlog.get_logger("loa.providers.smpp")


class Binds:
    """The binds of one provider instance, kept up.

    Parameters:
        make: builds a new (unconnected) ``Bind`` in the given mode.
        modes: one entry per bind to keep (``transceiver``, ``transmitter``, ``receiver``).
        reconnect_min, reconnect_max: seconds between attempts to bind again.
        name: the provider instance, for logs.
        sleep: waits between attempts (``asyncio.sleep``; a test's own to read them).
    """

    def __init__(
        self,
        make: Callable[[Mode], Bind],
        modes: list[Mode],
        reconnect_min: float,
        reconnect_max: float,
        name: str = "smpp",
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.make, self.modes, self.name, self.sleep = make, modes, name, sleep
        self.reconnect_min, self.reconnect_max = reconnect_min, reconnect_max
        #: The SMSC refused our credentials: no bind is tried again.
        self.refused: BindRefused | None = None
        #: Why the last attempt to bind failed, or the last bind closed (for errors).
        self.last_problem = "not bound yet"
        #: Binds made, in all (a reconnect makes one more).
        self.bound_count = 0
        self._open: list[Bind] = []
        self._keepers: list[asyncio.Task[None]] = []
        self._changed = asyncio.Event()
        self._closing = False
        self._turn = 0

    @property
    def started(self) -> bool:
        return bool(self._keepers)

    def start(self) -> None:
        """Start keeping the binds (on the running loop); once."""
        if self._keepers or self._closing:
            return
        for index, mode in enumerate(self.modes):
            task = asyncio.create_task(self._keep(mode), name=f"smpp-{self.name}-{index}")
            self._keepers.append(task)

    @property
    def sending(self) -> list[Bind]:
        """The bound binds that may submit."""
        return [b for b in self._open if b.bound and b.mode != "receiver"]

    async def take(self, timeout: float) -> Bind:
        """The bound sending bind with the least load (``Bind.load``), waiting up to
        ``timeout`` seconds for one to bind.

        Raises:
            BindRefused: the SMSC refused our credentials (a halt).
            NotBound: no bind within ``timeout`` (``last_problem`` says why).
        """
        self.start()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if self.refused is not None:
                raise self.refused
            ready = self.sending
            if ready:
                # The least loaded, ties taken in turn: with min() alone every tie went to
                # the first bind, and senders beyond the windows all queued on it.
                self._turn = (self._turn + 1) % len(ready)
                ready = ready[self._turn :] + ready[: self._turn]
                return min(ready, key=lambda b: b.load)
            left = deadline - loop.time()
            if left <= 0 or self._closing:
                raise NotBound(f"no bind to the SMSC: {self.last_problem}")
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await changed.wait()

    async def wait_bound(self, count: int, timeout: float) -> None:
        """Return once ``count`` sending binds are bound.

        Raises:
            TimeoutError: not within ``timeout`` seconds.
        """
        self.start()
        async with asyncio.timeout(timeout):
            while len(self.sending) < count:
                await self._changed.wait()

    def _change(self) -> None:
        """Wake whoever waits for a bind (a new event for the next wait)."""
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def _keep(self, mode: Mode) -> None:
        wait = self.reconnect_min
        while not self._closing:
            bind = self.make(mode)
            try:
                try:
                    await bind.connect()
                except asyncio.CancelledError:
                    await bind.close("closing")  # cancelled mid-bind: leave nothing open
                    raise
            except BindRefused as refused:
                found = meaning(refused.status)
                self.last_problem = f"bind refused: {found.name or 'status'} {refused}"
                if found.setting:  # credentials or an account setting: a person must act
                    self.refused = refused
                    log.error("smpp.bind_refused", provider=self.name, status=refused.status)
                    self._change()
                    return
            except (OSError, SmppError) as exc:
                self.last_problem = (
                    f"cannot bind to {bind.host}:{bind.port}: {exc or type(exc).__name__}"
                )
                log.warning("smpp.bind_failed", provider=self.name, error=type(exc).__name__)
            else:
                up_since = asyncio.get_running_loop().time()
                self.bound_count += 1
                self._open.append(bind)
                log.info("smpp.bound", provider=self.name, mode=mode)
                self._change()
                try:
                    await bind.wait_closed()
                finally:
                    self._open.remove(bind)
                    self._change()
                self.last_problem = f"the bind closed: {bind.close_reason}"
                if self._closing:
                    return
                log.warning("smpp.bind_closed", provider=self.name, reason=bind.close_reason)
                if asyncio.get_running_loop().time() - up_since >= self.reconnect_max:
                    wait = self.reconnect_min  # it held: a new fault, not the same one
            await self.sleep(wait * random.uniform(0.5, 1.0))
            wait = min(wait * 2, self.reconnect_max)

    async def close(self, timeout: float = 10.0) -> None:
        """Stop binding again, and unbind every open bind (each answers the receipts it is
        storing first)."""
        self._closing = True
        await asyncio.gather(
            *(bind.unbind(timeout) for bind in list(self._open)), return_exceptions=True
        )
        for task in self._keepers:  # those waiting to bind again, or binding now
            task.cancel()
        await asyncio.gather(*self._keepers, return_exceptions=True)
        self._change()


def modes_for(bind_mode: str, binds: int) -> list[Mode]:
    """The binds to keep: ``binds`` transceivers, or ``binds`` transmitters and a receiver."""
    if bind_mode == "transceiver":
        return ["transceiver"] * binds
    return ["transmitter"] * binds + ["receiver"]


__all__ = ["Binds", "DeliverHandler", "modes_for"]
