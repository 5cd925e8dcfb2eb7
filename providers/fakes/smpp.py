"""A local SMSC that speaks SMPP 3.4 over TCP, for tests and benchmarks.

It takes binds (``system_id`` / ``password``: a wrong password is answered 0x0E, an unknown
system_id 0x0F), answers submit_sm with message ids (hex or decimal), enquire_link and
unbind, and records what it received, decoded (``Submit``: fields, UDH or SAR
concatenation, text). Rules script its faults, per submit_sm, first live match wins::

    Rule(status=0x58, after=100)          # throttled once 100 submit_sm have arrived
    Rule(status=0x14, times=5)            # queue full, for the next 5
    Rule(delay=2.0, destination="0000")   # answers late (destination ending 0000)
    Rule(hold=True, sequence=7)           # never answers #7 (until ``release``)
    Rule(nack=0x03, times=1)              # generic_nack for the next one
    Rule(drop=True, after=9)              # the 10th: drop the connection, window in flight

It sends receipts (deliver_sm, esm_class 0x04, TLVs receipted_message_id and
message_state and/or the text ``id:… sub:001 dlvrd:001 submit date:… done date:… stat:…
err:… text:…``; ids written as in submit_sm_resp, or in hex or decimal), early (before
the submit_sm_resp), late, or one by one (``receipt``); handset messages (``handset``);
its own enquire_link and unbind; and records each deliver_sm_resp with its delay.

In a test: ``smsc = FakeSmsc(); port = await smsc.start()`` … ``await smsc.stop()``. As a
process: ``python -m providers.fakes.smpp --port 2775`` prints ``listening on
smpp://127.0.0.1:PORT control http://127.0.0.1:PORT`` (control endpoints:
``providers.fakes.smpp_control``). Records and rules: ``providers.fakes.smpp_records``.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from providers.fakes.smpp_records import STATES, Answer, Rule, Submit, gsm_decode
from providers.smpp import pdu as codec
from providers.smpp.errors import MalformedPdu, UnknownCommand
from providers.smpp.pdu import Pdu

__all__ = ["STATES", "Answer", "FakeSmsc", "Rule", "Submit", "gsm_decode"]

ESME_RINVBNDSTS, ESME_RINVPASWD, ESME_RINVSYSID = 0x04, 0x0E, 0x0F
SUBMIT_SM_RESP = 0x80000004


@dataclass
class _Connection:
    number: int
    writer: asyncio.StreamWriter
    mode: str = ""
    held: list[Submit] = field(default_factory=list)
    unanswered: int = 0
    asked: dict[int, tuple[asyncio.Future[Any], float, str | None]] = field(default_factory=dict)
    sequences: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def send(self, name: str, sequence: int, status: int = 0, **fields: Any) -> None:
        if not self.writer.is_closing():
            self.writer.write(codec.encode(name, sequence, status, **fields))

    def send_bytes(self, command_id: int, sequence: int, status: int, body: bytes) -> None:
        """Write a PDU as given, past the codec's checks (what a broken SMSC writes)."""
        if not self.writer.is_closing():
            header = codec.HEADER.pack(codec.HEADER.size + len(body), command_id, status, sequence)
            self.writer.write(header + body)

    def ask(self, name: str, message_id: str | None = None, **fields: Any) -> asyncio.Future[Any]:
        """Send a request; the future gets its ``Answer``."""
        sequence = next(self.sequences)
        future = self._expect(sequence, message_id)
        self.send(name, sequence, **fields)
        return future

    def ask_raw(self, command_id: int, body: bytes) -> asyncio.Future[Any]:
        """Send a request smpplib may not know (``command_id``); the future gets the answer."""
        sequence = next(self.sequences)
        future = self._expect(sequence, None)
        header = codec.HEADER.pack(codec.HEADER.size + len(body), command_id, 0, sequence)
        self.writer.write(header + body)
        return future

    def _expect(self, sequence: int, message_id: str | None) -> asyncio.Future[Any]:
        future = asyncio.get_running_loop().create_future()
        # Retrieved even when nobody awaits it (an automatic receipt on a closed connection).
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        self.asked[sequence] = (future, time.monotonic(), message_id)
        return future


class FakeSmsc:
    """The SMSC; see the module's docstring. Settings are attributes, changeable live."""

    def __init__(
        self,
        system_id: str = "loa",
        password: str = "secret",
        *,
        rules: list[Rule] | None = None,
        message_ids: str = "hex",
        receipt_ids: str = "same",
        receipts: bool = False,
        receipt_delay: float = 0.0,
        receipt_early: bool = False,
        receipt_stat: str = "DELIVRD",
        receipt_text: bool = True,
        receipt_tlvs: bool = True,
        first_id: int = 0x1A2B3C,
        receipt_retry: float = 0.5,
    ) -> None:
        self.credentials = (system_id, password)
        self.rules = list(rules or [])
        self.message_ids, self.receipt_ids = message_ids, receipt_ids
        self.receipts, self.receipt_delay, self.receipt_early = (
            receipts,
            receipt_delay,
            receipt_early,
        )
        self.receipt_stat, self.receipt_text, self.receipt_tlvs = (
            receipt_stat,
            receipt_text,
            receipt_tlvs,
        )
        #: Seconds before an automatic receipt answered with an error is sent again.
        self.receipt_retry = receipt_retry
        #: Automatic receipts sent again (answered with an error the first time).
        self.receipts_retried = 0
        #: Answer nothing at all (a peer that went silent), while reading everything.
        self.silent = False
        self.binds: list[tuple[str, str, int]] = []  # (command, system_id, status answered)
        self.submits: list[Submit] = []
        self.receipts_unsent: list[Submit] = []  # automatic receipts with no receiver bound
        self.deliver_resps: list[Answer] = []
        self.log: list[str] = []  # every command received, in order
        self.enquire_links = 0  # received from the ESME
        self.unbinds = 0  # received from the ESME
        self.max_unanswered = 0  # most submit_sm unanswered at once on one connection
        self._ids = itertools.count(first_id)
        self._connections: list[_Connection] = []
        self._server: asyncio.Server | None = None
        self._changed = asyncio.Event()
        self.port = 0

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen; returns the port (a free one for 0)."""
        self._server = await asyncio.start_server(self._serve, host, port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        await self.drop()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def drop(self) -> None:
        """Close every connection now, whatever is in flight."""
        for connection in self._connections:
            connection.writer.close()

    async def wait_for(self, done: Callable[[], bool], timeout: float = 5.0) -> None:
        """Return once ``done()`` holds, checked after each PDU the SMSC handles."""
        async with asyncio.timeout(timeout):
            while not done():
                await self._changed.wait()

    def release(self) -> int:
        """Answer every held submit_sm now (accepted); returns how many."""
        count = 0
        for connection in self._connections:
            held, connection.held = connection.held, []
            for submit in held:
                self._accept(connection, submit)
                count += 1
        return count

    def messages(self) -> list[tuple[str, str]]:
        """(destination, text) of every whole message accepted, parts joined by their
        reference, in the order each was completed."""
        whole: list[tuple[str, str]] = []
        groups: dict[tuple[Any, ...], dict[int, str]] = {}
        for submit in self.submits:
            if submit.message_id is None:
                continue
            concat = submit.concat
            if concat is None:
                whole.append((submit.destination, submit.text))
                continue
            key = (submit.destination, submit.pdu.text("source_addr"), concat[0], concat[1])
            parts = groups.setdefault(key, {})
            parts[concat[2]] = submit.text
            if len(parts) == concat[1]:
                whole.append((submit.destination, "".join(parts[i] for i in sorted(parts))))
        return whole

    # ---- what the SMSC sends on its own

    def receiver(self) -> _Connection:
        """The latest open connection bound to receive (transceiver or receiver)."""
        for connection in reversed(self._connections):
            if (
                connection.mode in ("transceiver", "receiver")
                and not connection.writer.is_closing()
            ):
                return connection
        raise RuntimeError("no ESME is bound to receive")

    def deliver(self, message_id: str | None = None, **fields: Any) -> asyncio.Future[Any]:
        """Send a deliver_sm; the future gets the ``Answer``."""
        return self.receiver().ask("deliver_sm", message_id, **fields)

    def receipt(self, submit: Submit, stat: str | None = None, err: int = 0) -> asyncio.Future[Any]:
        """Send the receipt for ``submit`` (its part), as the settings say."""
        stat = stat or self.receipt_stat
        number = submit.number if submit.number is not None else 0
        ids = {"hex": f"{number:X}", "decimal": str(number), "same": submit.message_id or ""}
        rid = ids[self.receipt_ids]
        stamp = datetime.now().strftime("%y%m%d%H%M")
        fields: dict[str, Any] = {
            "source_addr_ton": submit.pdu.number("dest_addr_ton") or 0,
            "source_addr_npi": submit.pdu.number("dest_addr_npi") or 0,
            "source_addr": submit.destination,
            "dest_addr_ton": submit.pdu.number("source_addr_ton") or 0,
            "dest_addr_npi": submit.pdu.number("source_addr_npi") or 0,
            "destination_addr": submit.pdu.text("source_addr") or "",
            "esm_class": codec.ESM_RECEIPT,
        }
        if self.receipt_text:
            sample = submit.text[:20].encode("ascii", "replace").decode()
            done = "001" if stat == "DELIVRD" else "000"
            fields["short_message"] = (
                f"id:{rid} sub:001 dlvrd:{done} submit date:{stamp} done date:{stamp} "
                f"stat:{stat} err:{err:03d} text:{sample}"
            ).encode()
        if self.receipt_tlvs:
            fields |= {"receipted_message_id": rid, "message_state": STATES[stat]}
        return self.deliver(rid, **fields)

    def handset(self, source: str, destination: str, text: str) -> asyncio.Future[Any]:
        """A message from a handset (no receipt bit), in UCS-2."""
        body = text.encode("utf-16-be")
        fields = {"source_addr_ton": 1, "source_addr_npi": 1, "source_addr": source}
        fields |= {"destination_addr": destination, "esm_class": 0, "data_coding": 0x08}
        return self.deliver(None, short_message=body, **fields)

    def send_raw(self, command_id: int, body: bytes = b"") -> asyncio.Future[Any]:
        """A request of any command id (one the ESME may not know); the future gets the
        answer (a generic_nack: ``Answer.command``)."""
        return self.receiver().ask_raw(command_id, body)

    async def enquire_link(self, timeout: float = 5.0) -> int:
        """The SMSC's own keep-alive; returns the ESME's answer status."""
        async with asyncio.timeout(timeout):
            return (await self.receiver().ask("enquire_link")).status

    async def unbind(self, timeout: float = 5.0) -> int:
        """The SMSC unbinds the ESME; returns its unbind_resp status, then closes."""
        connection = self.receiver()
        async with asyncio.timeout(timeout):
            answer = await connection.ask("unbind")
        connection.writer.close()
        return answer.status

    # ---- what the SMSC receives

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = _Connection(len(self._connections), writer)
        self._connections.append(connection)
        try:
            while True:
                raw = await codec.read_pdu(reader)
                try:
                    self._handle(connection, codec.decode(raw))
                except MalformedPdu as exc:
                    status = 0x03 if isinstance(exc, UnknownCommand) else 0x08
                    connection.send("generic_nack", exc.sequence, status)
                self._poke()
        except (asyncio.IncompleteReadError, MalformedPdu, OSError):
            pass
        finally:
            writer.close()
            for future, _, _ in connection.asked.values():
                if not future.done():
                    future.set_exception(ConnectionError("the ESME's connection closed"))
            self._poke()

    def _poke(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _handle(self, connection: _Connection, incoming: Pdu) -> None:
        command, sequence = incoming.command, incoming.sequence
        self.log.append(command)
        if incoming.is_response:
            asked = connection.asked.pop(sequence, None)
            if asked is None:
                return
            future, sent, message_id = asked
            delay = time.monotonic() - sent
            answer = Answer(command, sequence, incoming.status, delay, message_id)
            if command == "deliver_sm_resp":
                self.deliver_resps.append(answer)
            if not future.done():
                future.set_result(answer)
            return
        if command == "enquire_link":
            self.enquire_links += 1
        if self.silent:
            return
        if command.startswith("bind_"):
            self._bind(connection, incoming)
        elif command == "enquire_link":
            connection.send("enquire_link_resp", sequence)
        elif command == "unbind":
            self.unbinds += 1
            connection.send("unbind_resp", sequence)
            connection.writer.close()
        elif not connection.mode:
            connection.send("generic_nack", sequence, ESME_RINVBNDSTS)
        elif command == "submit_sm":
            self._submit(connection, incoming)
        else:
            connection.send("generic_nack", sequence, 0x03)

    def _bind(self, connection: _Connection, incoming: Pdu) -> None:
        given = (incoming.text("system_id"), incoming.text("password"))
        status = ESME_RINVSYSID if given[0] != self.credentials[0] else 0
        status = status or (ESME_RINVPASWD if given[1] != self.credentials[1] else 0)
        self.binds.append((incoming.command, given[0] or "", status))
        connection.send(f"{incoming.command}_resp", incoming.sequence, status, system_id="FAKESMSC")
        if status == 0:
            connection.mode = incoming.command.removeprefix("bind_")

    def _submit(self, connection: _Connection, incoming: Pdu) -> None:
        submit = Submit(incoming, time.time(), connection.number)
        arrived_before = len(self.submits)
        self.submits.append(submit)
        if connection.mode == "receiver":
            submit.outcome = f"0x{ESME_RINVBNDSTS:08X}"
            connection.send("submit_sm_resp", incoming.sequence, ESME_RINVBNDSTS)
            return
        connection.unanswered += 1
        self.max_unanswered = max(self.max_unanswered, connection.unanswered)
        rule = next((r for r in self.rules if r.applies(submit, arrived_before)), None)
        if rule is None:
            self._accept(connection, submit)
            return
        if rule.times is not None:
            rule.times -= 1
        if rule.drop:
            submit.outcome = "dropped"
            connection.writer.close()
        elif rule.hold:
            submit.outcome = "held"
            connection.held.append(submit)
        elif rule.delay:
            later = replace(rule, delay=0.0)
            asyncio.get_running_loop().call_later(
                rule.delay, self._answer, connection, submit, later
            )
        else:
            self._answer(connection, submit, rule)

    def _answer(self, connection: _Connection, submit: Submit, rule: Rule) -> None:
        if rule.nack is not None:
            connection.unanswered -= 1
            submit.outcome = f"nack 0x{rule.nack:08X}"
            connection.send("generic_nack", submit.pdu.sequence, rule.nack)
        elif rule.status:
            connection.unanswered -= 1
            submit.outcome = f"0x{rule.status:08X}"
            connection.send("submit_sm_resp", submit.pdu.sequence, rule.status)
        elif rule.answer_as is not None:
            connection.unanswered -= 1
            submit.outcome = rule.answer_as
            connection.send(rule.answer_as, submit.pdu.sequence)
        else:
            self._accept(connection, submit, rule.message_id)
        self._poke()

    def _accept(self, connection: _Connection, submit: Submit, given: str | None = None) -> None:
        connection.unanswered -= 1
        submit.number = next(self._ids)
        written = {"hex": f"{submit.number:X}", "decimal": str(submit.number)}
        submit.message_id = written[self.message_ids] if given is None else given
        submit.outcome = "0x00000000"
        wants_receipt = self.receipts and (submit.pdu.number("registered_delivery") or 0) & 1
        if wants_receipt and self.receipt_early:
            self._auto_receipt(submit)
        if len(submit.message_id) > 64:  # longer than SMPP allows: written by hand
            body = submit.message_id.encode("ascii") + b"\0"
            connection.send_bytes(SUBMIT_SM_RESP, submit.pdu.sequence, 0, body)
        else:
            connection.send("submit_sm_resp", submit.pdu.sequence, message_id=submit.message_id)
        if wants_receipt and not self.receipt_early:
            loop = asyncio.get_running_loop()
            loop.call_later(self.receipt_delay, self._auto_receipt, submit)

    def _auto_receipt(self, submit: Submit) -> None:
        try:
            answered = self.receipt(submit)
        except RuntimeError:  # nobody bound to receive it: kept, as an SMSC would
            self.receipts_unsent.append(submit)
            return
        answered.add_done_callback(lambda done: self._receipt_answered(submit, done))

    def _receipt_answered(self, submit: Submit, done: asyncio.Future[Any]) -> None:
        """As an SMSC does: a receipt answered with an error other than a permanent
        rejection (0x65) is kept and sent again later."""
        if done.cancelled() or done.exception() is not None:
            self.receipts_unsent.append(submit)  # the connection went: as when none is bound
            return
        if done.result().status not in (0, codec.ESME_RX_P_APPN):
            self.receipts_retried += 1
            asyncio.get_running_loop().call_later(self.receipt_retry, self._auto_receipt, submit)


if __name__ == "__main__":
    from providers.fakes.smpp_control import main

    main()
