"""One SMPP 3.4 bind to an SMSC, on asyncio: Loa's own session over smpplib's codec.

Why not smpplib's client: it is synchronous, one request at a time. Why not an asyncio
library: the ones tried answer ``deliver_sm`` before Loa has stored the receipt, report a
timeout and a ``generic_nack`` as the same error, or do not bound the window (issue #20's
evaluation of smpp34, aiosmpplib and rusmppyc). What a bind must do, and does here:

- number its requests (1..0x7FFFFFFF, then 1 again) and match each response by number;
- keep at most ``window`` submit_sm unanswered (what the SMSC's operator agreed to);
- give up on a response after ``response_timeout`` (``ResponseTimeout``: fate unknown),
  and close after ``HELD_LIMIT`` submit_sm in a row went unanswered (an SMSC that
  answers enquire_link but keeps every message made the whole campaign ``unknown``);
- tell ``generic_nack`` (not accepted) from a lost connection (``ConnectionLost``: fate
  unknown) from a closed bind (``NotBound``: never sent);
- send enquire_link every ``enquire_link_interval`` and close when it goes unanswered (a
  dead peer is otherwise noticed only by the next send, minutes later);
- answer the SMSC's enquire_link and unbind, and answer each deliver_sm / data_sm only
  once ``on_deliver`` has returned: the receipt is stored first, so one lost in a crash is
  sent again by the SMSC, which never had its answer;
- store at most ``receive_window`` deliver_sm at once: one beyond is answered
  ``ESME_RTHROTTLED`` (the SMSC sends it again, more slowly) rather than held in memory
  without bound; and write every answer with back-pressure (an SMSC that does not read
  our answers stops being read);
- answer a deliver_sm it cannot read ``ESME_RX_P_APPN`` (rejected for good): sent again
  it would be as unreadable, and a temporary error made the SMSC send it for ever.

A bind connects once; after it closes, make a new one (reconnecting, with backoff, is the
provider's job).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from providers.smpp import pdu as codec
from providers.smpp.errors import (
    BindRefused,
    ConnectionLost,
    MalformedPdu,
    NotBound,
    ResponseTimeout,
    SmppError,
    UnknownCommand,
)
from providers.smpp.pdu import Pdu
from providers.smpp.window import Window

log = logging.getLogger("loa.providers.smpp")

#: submit_sm timed out in a row after which the bind is closed: the SMSC is keeping them.
HELD_LIMIT = 3

#: deliver_sm / data_sm being stored at most at once, by default: well above what an
#: SMSC keeps unanswered (its own window, often 10 to 50), so only a flood is throttled.
RECEIVE_WINDOW = 100

#: Stores a deliver_sm / data_sm and returns the command_status to answer it with.
DeliverHandler = Callable[[Pdu], Awaitable[int]]
Mode = Literal["transceiver", "transmitter", "receiver"]
MODES = ("transceiver", "transmitter", "receiver")


class Bind:
    """One bind to an SMSC.

    Parameters:
        host, port: the SMSC.
        system_id, password, system_type: the account (at most 15, 8 and 12 characters).
        mode: ``transceiver``, ``transmitter`` or ``receiver``.
        window: submit_sm outstanding at most at once.
        response_timeout: seconds to wait for any response (also connect and unbind).
        enquire_link_interval: seconds between keep-alives; None or 0: none.
        on_deliver: stores a deliver_sm / data_sm and returns the status to answer; none:
            each is answered 0x64 (temporary error), so the SMSC keeps it for later.
        addr_ton, addr_npi, address_range: what the bind asks to receive.
        receive_window: deliver_sm / data_sm being stored at most at once.

    Raises:
        PduError: a setting SMPP cannot carry (a password of more than 8 characters).
        ValueError: an unknown mode, a window below 1.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        system_id: str,
        password: str,
        system_type: str = "",
        mode: Mode = "transceiver",
        window: int = 10,
        response_timeout: float = 10.0,
        enquire_link_interval: float | None = 30.0,
        on_deliver: DeliverHandler | None = None,
        addr_ton: int = 0,
        addr_npi: int = 0,
        address_range: str = "",
        receive_window: int = RECEIVE_WINDOW,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        self._window = Window(window)  # ValueError below 1
        self.host, self.port, self.mode = host, port, mode
        self._bind_fields: dict[str, Any] = {
            "system_id": system_id,
            "password": password,
            "system_type": system_type,
            "interface_version": 0x34,
            "addr_ton": addr_ton,
            "addr_npi": addr_npi,
            "address_range": address_range,
        }
        codec.encode(f"bind_{mode}", 1, **self._bind_fields)  # a bad setting says so now
        self.window = window
        self.response_timeout = response_timeout
        self.enquire_link_interval = enquire_link_interval
        self.on_deliver = on_deliver
        #: Why the bind closed (None while open): read it to say what happened.
        self.close_reason: str | None = None
        #: The SMSC's system_id from its bind response.
        self.smsc_system_id: str | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reading: asyncio.Task[None] | None = None
        self._keeping: asyncio.Task[None] | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self.receive_window = receive_window
        self._held = 0  # submit_sm unanswered in a row (each timed out)
        #: deliver_sm answered ``ESME_RTHROTTLED`` because ``receive_window`` were being
        #: stored already.
        self.throttled_delivers = 0

        self._closed = asyncio.Event()
        self._unbinding = False

    # ---- public API

    @property
    def bound(self) -> bool:
        """Connected, bound and not closing."""
        return self.smsc_system_id is not None and not self._closed.is_set() and not self._unbinding

    @property
    def outstanding(self) -> int:
        """Requests written and not yet answered."""
        return self._window.outstanding

    @property
    def load(self) -> int:
        """Requests written and not yet answered, and submit_sm waiting for a free slot in
        the window: what a new request would queue behind."""
        return self._window.load

    @property
    def late_responses(self) -> int:
        """Responses that came after their request had timed out (or were never asked)."""
        return self._window.late_responses

    async def connect(self) -> Pdu:
        """Open the connection and bind.

        Returns:
            The SMSC's bind response.

        Raises:
            OSError: no TCP connection (refused, unreachable, not within the timeout).
            BindRefused: the SMSC answered the bind with an error (``status``).
            ResponseTimeout, ConnectionLost, GenericNack: no usable answer to the bind.
        """
        if self._writer is not None:
            raise RuntimeError("a Bind connects once: make a new one to bind again")
        async with asyncio.timeout(self.response_timeout):
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        self._reading = asyncio.create_task(self._read(), name=f"smpp-read-{self.port}")
        try:
            answer = await self._request(f"bind_{self.mode}", **self._bind_fields)
        except SmppError:
            await self.close("the bind got no answer")
            raise
        if answer.status != codec.ESME_ROK:
            await self.close(f"bind refused: command_status 0x{answer.status:08X}")
            raise BindRefused(answer.status)
        self.smsc_system_id = answer.text("system_id") or ""
        if self.enquire_link_interval:
            self._keeping = asyncio.create_task(self._keep_alive(), name="smpp-enquire-link")
        return answer

    async def submit_sm(self, **fields: Any) -> tuple[int, str | None]:
        """Submit one message part, waiting for a free slot in the window first.

        Parameters:
            fields: submit_sm fields (``pdu.encode``'s conventions).

        Returns:
            The command_status of submit_sm_resp and, when 0, the SMSC's message_id.

        Raises:
            PduError, NotBound, GenericNack: not accepted (safe to send again).
            ResponseTimeout, ConnectionLost: fate unknown.
            MalformedPdu: answered, but the answer could not be read: fate unknown.
        """
        try:
            answer = await self._request("submit_sm", windowed=True, **fields)
        except ResponseTimeout:
            self._held += 1
            if self._held >= HELD_LIMIT:
                # It answers enquire_link perhaps, but keeps what it is sent: every
                # message given to this bind would become unknown. Closed, the sends wait
                # for a bind again (a pause, nothing lost), made with a growing backoff.
                self._shutdown(
                    f"no answer to the last {self._held} submit_sm: the SMSC holds what it is sent"
                )
            raise
        self._held = 0
        ok = answer.status == codec.ESME_ROK
        return answer.status, answer.message_id if ok else None

    async def unbind(self, timeout: float | None = None) -> bool:
        """Unbind cleanly: no new requests; the deliver_sm being handled are answered
        first (each wait bounded by ``timeout``, default ``response_timeout``); then
        unbind, wait for unbind_resp, close.

        Returns:
            Whether the SMSC answered the unbind with status 0.
        """
        if self._closed.is_set() or self._writer is None:
            return False
        limit = timeout or self.response_timeout
        self._unbinding = True
        if self._keeping is not None:
            self._keeping.cancel()
        answered = False
        try:
            if self._handlers:
                await asyncio.wait(set(self._handlers), timeout=limit)
            answer = await self._request("unbind", timeout=limit)
            answered = answer.status == codec.ESME_ROK
        except SmppError as exc:
            log.warning("smpp unbind not answered: %s", exc)
        finally:
            await self.close("unbound")
        return answered

    async def close(self, reason: str = "closed by Loa") -> None:
        """Close at once, without unbind: outstanding requests fail ``ConnectionLost``."""
        self._shutdown(reason)
        current = asyncio.current_task()
        tasks = [t for t in (self._reading, self._keeping) if t is not None and t is not current]
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._writer is not None:
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()

    async def wait_closed(self) -> None:
        """Return once the bind has closed, for whatever reason (``close_reason``)."""
        await self._closed.wait()

    # ---- requests and their answers

    async def _request(
        self, command: str, *, windowed: bool = False, timeout: float | None = None, **fields: Any
    ) -> Pdu:
        sequence = self._window.next_sequence()
        raw = codec.encode(command, sequence, **fields)  # PduError: nothing was sent
        slot = self._window.slot() if windowed else contextlib.nullcontext()
        async with slot:
            if self._writer is None or self._closed.is_set():
                raise NotBound(f"{command} not sent: the bind is closed ({self.close_reason})")
            if self._unbinding and command != "unbind":
                raise NotBound(f"{command} not sent: the bind is unbinding")
            future = self._window.expect(sequence, command)
            limit = timeout or self.response_timeout
            try:
                async with asyncio.timeout(limit):
                    self._writer.write(raw)
                    await self._writer.drain()  # a full socket buffer counts against the timeout
                    return await future
            except TimeoutError:
                raise ResponseTimeout(
                    f"{command} #{sequence}: no response in {limit:g} s"
                ) from None
            except (ConnectionError, OSError) as exc:
                raise ConnectionLost(f"{command} #{sequence}: {exc or 'connection lost'}") from exc
            finally:
                self._window.forget(sequence)

    def _send(self, raw: bytes) -> None:
        """Write an answer, unless the bind is closed (then the SMSC sends it again)."""
        if self._writer is not None and not self._closed.is_set():
            self._writer.write(raw)

    async def _sent(self, raw: bytes) -> None:
        """``_send``, then wait while the socket's buffer is full: an SMSC that stops
        reading our answers is not answered into memory without bound."""
        self._send(raw)
        if self._writer is not None and not self._closed.is_set():
            with contextlib.suppress(ConnectionError, OSError):
                await self._writer.drain()

    # ---- what the SMSC sends

    async def _read(self) -> None:
        assert self._reader is not None
        reason = "the SMSC closed the connection"
        try:
            while True:
                raw = await codec.read_pdu(self._reader)
                try:
                    incoming = codec.decode(raw)
                except MalformedPdu as exc:
                    await self._sent(self._unreadable(exc))
                    continue
                if incoming.is_response:
                    self._window.answered(incoming)
                elif incoming.command == "enquire_link":
                    await self._sent(codec.encode("enquire_link_resp", incoming.sequence))
                elif incoming.command in ("deliver_sm", "data_sm"):
                    if len(self._handlers) >= self.receive_window:
                        self.throttled_delivers += 1
                        answer = f"{incoming.command}_resp"
                        await self._sent(
                            codec.encode(answer, incoming.sequence, codec.ESME_RTHROTTLED)
                        )
                        continue
                    task = asyncio.create_task(self._deliver(incoming))
                    self._handlers.add(task)
                    task.add_done_callback(self._handlers.discard)
                elif incoming.command == "unbind":
                    await self._sent(codec.encode("unbind_resp", incoming.sequence))
                    reason = "the SMSC unbound"
                    return
                elif incoming.command != "alert_notification":  # that one has no answer
                    nack = codec.encode("generic_nack", incoming.sequence, codec.ESME_RINVCMDID)
                    await self._sent(nack)
        except asyncio.IncompleteReadError:
            pass
        except MalformedPdu as exc:  # no length to skip by: the stream is lost
            reason = f"unreadable stream from the SMSC: {exc}"
        except OSError as exc:
            reason = f"connection error: {exc}"
        finally:
            self._shutdown(reason)

    def _unreadable(self, exc: MalformedPdu) -> bytes:
        """A PDU that could not be read: an answer fails its request (the SMSC answered,
        we cannot tell what: nothing to write back). A deliver_sm / data_sm is answered
        ``ESME_RX_P_APPN``, rejected for good: sent again it would be as unreadable (a
        temporary error had the SMSC send it for ever). Any other request is answered
        generic_nack, 0x03 for a command we do not know, 0x08 for one we could not parse.
        Returns the answer to write."""
        log.warning(
            "smpp: unreadable PDU 0x%08X #%d from the SMSC (%s)",
            exc.command_id,
            exc.sequence,
            type(exc).__name__,
        )
        if exc.command_id & codec.RESPONSE:
            self._window.fail(exc.sequence, exc)
            return b""
        command = codec.command_name(exc.command_id)
        if command in ("deliver_sm", "data_sm"):
            return codec.encode(f"{command}_resp", exc.sequence, codec.ESME_RX_P_APPN)
        status = codec.ESME_RINVCMDID if isinstance(exc, UnknownCommand) else codec.ESME_RSYSERR
        return codec.encode("generic_nack", exc.sequence, status)

    async def _deliver(self, incoming: Pdu) -> None:
        """Hand a deliver_sm / data_sm to ``on_deliver``; answer only after it returns."""
        status = codec.ESME_RX_T_APPN
        if self.on_deliver is not None:
            try:
                status = await self.on_deliver(incoming)
            except Exception as exc:
                # The type only: the error's text may carry the stored row (a number, a
                # handset's words), which no log may hold.
                log.error(
                    "smpp: storing a %s failed (%s); answered 0x08",
                    incoming.command,
                    type(exc).__name__,
                )
                status = codec.ESME_RSYSERR  # not stored: the SMSC must send it again
            if not isinstance(status, int) or not 0 <= status <= 0xFFFFFFFF:
                log.error("smpp: on_deliver returned %r, not a command_status", status)
                status = codec.ESME_RSYSERR
        await self._sent(codec.encode(f"{incoming.command}_resp", incoming.sequence, status))

    async def _keep_alive(self) -> None:
        assert self.enquire_link_interval
        while True:
            await asyncio.sleep(self.enquire_link_interval)
            try:
                await self._request("enquire_link")
            except ResponseTimeout:
                seconds = f"{self.response_timeout:g}"
                self._shutdown(f"no enquire_link_resp within {seconds} s: the SMSC is silent")
                return
            except SmppError:
                return  # closed meanwhile: the reason is already said

    def _shutdown(self, reason: str) -> None:
        """Close once: every outstanding request fails (fate unknown), the timers stop.
        Handlers storing a deliver_sm run on; their answer is not sent."""
        if self._closed.is_set():
            return
        self.close_reason = reason
        self._closed.set()
        self._window.fail_all(reason)
        if self._writer is not None:
            self._writer.close()
        current = asyncio.current_task()
        for task in (self._reading, self._keeping):
            if task is not None and task is not current:
                task.cancel()
