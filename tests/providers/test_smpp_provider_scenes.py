"""The ``smpp`` provider against the local SMSC in one event loop, over real TCP: long
messages cut as planned, receipts and handset messages stored before they are answered,
a dropped connection, a throttled part, a refused bind."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

import providers
from campaigns.status import Status
from campaigns.text import segments
from providers import ErrorKind, HandsetMessage, OutgoingMessage, Receipt, SendError
from providers.fakes.smpp import FakeSmsc, Rule

DEADLINE = 10.0
TO = "+84912345678"
#: GSM-7 with extension characters ({, }, [, ], €: two septets each), 3 parts.
GSM_LONG = "Cai dat {Bluezone} [ngay] de bao ve ban va gia dinh, 20€ phat. " * 6
#: Vietnamese (UCS-2), 4 parts.
VIETNAMESE_LONG = "Đề nghị cài đặt ứng dụng Bluezone để phòng chống dịch COVID-19. " * 4
#: At the edge where the reference's size decides: 306 septets (2 parts of 153, 3 of
#: 152) and 134 UCS-2 units (2 of 67, 3 of 66).
GSM_EDGE = "Cai Bluezone {ngay} " * 13 + "A" * 20
VIETNAMESE_EDGE = "Đề nghị cài đặt Bluezone. " * 5 + "xin!"


@dataclass
class Inbox:
    """An inbox that can be made to wait (``gate``) or fail (``broken``)."""

    receipts: list[Receipt] = field(default_factory=list)
    fields: list[dict[str, str]] = field(default_factory=list)
    handsets: list[HandsetMessage] = field(default_factory=list)
    gate: asyncio.Event | None = None
    broken: bool = False
    #: Receipts handed to the inbox so far, stored or not (``arrived`` waits for some).
    arrivals: int = 0
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def arrived(self, count: int) -> None:
        while self.arrivals < count:
            self._arrived.clear()
            await self._arrived.wait()

    async def receipt(self, receipt: Receipt, fields: dict[str, str]) -> None:
        self.arrivals += 1
        self._arrived.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.broken:
            raise OSError("the ledger is away")
        self.receipts.append(receipt)
        self.fields.append(dict(fields))

    async def handset(self, message: HandsetMessage) -> None:
        if self.broken:
            raise OSError("the ledger is away")
        self.handsets.append(message)


def outgoing(text: str, message_id: int = 7, parts: int | None = None) -> OutgoingMessage:
    """A message as the worker hands it over: ``parts`` as planned (default: behind an
    8-bit reference)."""
    shape = segments(text)
    return OutgoingMessage(
        message_id, TO, text, "NinhThuan", shape.encoding, parts or shape.parts, 1,
        datetime.now(UTC) + timedelta(hours=6),
    )  # fmt: skip


def play(
    test: Callable[[FakeSmsc, Any, Inbox], Awaitable[Any]],
    smsc: dict[str, Any] | None = None,
    **settings: Any,
) -> Any:
    """Run ``test(smsc, provider, inbox)`` against a fresh local SMSC."""

    async def main() -> Any:
        fake = FakeSmsc(**(smsc or {}))
        await fake.start()
        inbox = Inbox()
        config = {
            "type": "smpp",
            "host": "127.0.0.1",
            "port": fake.port,
            "system_id": "loa",
            "password": "secret",
            "response_timeout": 2.0,
            "reconnect_min": 0.01,
            "reconnect_max": 0.05,
            "enquire_link_interval": 0,
            **settings,
        }
        provider = providers.create("carrier", config, inbox=inbox)
        try:
            async with asyncio.timeout(DEADLINE):
                return await test(fake, provider, inbox)
        finally:
            await provider.aclose()
            await fake.stop()

    return asyncio.run(main())


def test_the_edge_texts_are_at_the_edge():
    assert [segments(GSM_EDGE, part_header=h).parts for h in (6, 7)] == [2, 3]
    assert [segments(VIETNAMESE_EDGE, part_header=h).parts for h in (6, 7)] == [2, 3]


@pytest.mark.parametrize("concatenation", ["udh8", "udh16", "sar"])
@pytest.mark.parametrize(
    "text",
    [GSM_LONG, VIETNAMESE_LONG, GSM_EDGE, VIETNAMESE_EDGE],
    ids=["gsm-extension", "vietnamese", "gsm-edge", "vietnamese-edge"],
)
def test_the_smsc_receives_the_parts_planned_and_billed(text, concatenation):
    header = 7 if concatenation == "udh16" else 6

    async def test(smsc, provider, inbox):
        planned = segments(text, part_header=header).parts
        assert provider.limits.part_header == header  # what planning counts with
        result = await provider.send(outgoing(text, parts=planned))
        assert len(smsc.submits) == planned > 1
        assert len(result.parts) == planned
        assert result.parts == tuple(s.message_id for s in smsc.submits)
        assert result.provider_message_id == result.parts[0]
        assert smsc.messages() == [(TO[1:], text)]  # reassembled by the SMSC's own reading
        for submit in smsc.submits:
            if concatenation == "sar":
                assert submit.udh == b"" and submit.pdu.number("sar_total_segments") == planned
            else:
                assert submit.udh[:3] == (b"\x06\x08\x04" if header == 7 else b"\x05\x00\x03")

    play(test, concatenation=concatenation)


def test_message_payload_sends_the_whole_text_once():
    async def test(smsc, provider, inbox):
        result = await provider.send(outgoing(VIETNAMESE_LONG))
        assert len(smsc.submits) == 1 and result.parts == ()
        assert smsc.messages() == [(TO[1:], VIETNAMESE_LONG)]

    play(test, concatenation="payload")


def test_a_short_message_is_one_submit_with_brandname_and_number_addresses():
    async def test(smsc, provider, inbox):
        await provider.send(outgoing("Cai Bluezone"))
        (submit,) = smsc.submits
        pdu = submit.pdu
        assert (pdu.number("source_addr_ton"), pdu.number("source_addr_npi")) == (5, 0)
        assert pdu.text("source_addr") == "NinhThuan"
        assert (pdu.number("dest_addr_ton"), pdu.number("dest_addr_npi")) == (1, 1)
        assert pdu.text("destination_addr") == TO[1:]
        assert pdu.number("registered_delivery") == 1
        assert pdu.text("validity_period").endswith("000R")

    play(test)


def test_a_receipt_per_part_is_stored_before_it_is_answered():
    async def test(smsc, provider, inbox):
        inbox.gate = asyncio.Event()
        result = await provider.send(outgoing(GSM_LONG))
        answers = [smsc.receipt(submit) for submit in smsc.submits]
        await inbox.arrived(3)  # every deliver_sm read, each held by the inbox
        assert smsc.deliver_resps == []  # nothing answered before it is stored
        inbox.gate.set()
        done = await asyncio.gather(*answers)
        assert [a.status for a in done] == [0, 0, 0]
        assert [r.provider_message_id for r in inbox.receipts] == list(result.parts)
        assert {r.status for r in inbox.receipts} == {Status.DELIVERED}

    play(test, smsc={"message_ids": "hex"})


def test_a_receipt_the_ledger_could_not_take_is_answered_so_the_smsc_sends_it_again():
    async def test(smsc, provider, inbox):
        await provider.send(outgoing("Cai Bluezone"))
        inbox.broken = True
        answer = await smsc.receipt(smsc.submits[0])
        assert answer.status == 0x08  # ESME_RSYSERR: not stored, sent again later
        inbox.broken = False
        again = await smsc.receipt(smsc.submits[0])
        assert again.status == 0 and len(inbox.receipts) == 1

    play(test)


def test_receipt_ids_in_decimal_meet_hex_submit_ids():
    async def test(smsc, provider, inbox):
        result = await provider.send(outgoing("Cai Bluezone"))
        await smsc.receipt(smsc.submits[0])
        assert inbox.receipts[0].provider_message_id == result.provider_message_id
        assert result.provider_message_id == str(int(smsc.submits[0].message_id, 16))

    play(test, smsc={"message_ids": "hex", "receipt_ids": "decimal"}, receipt_ids="decimal")


def test_a_handset_message_is_stored_as_inbound():
    async def test(smsc, provider, inbox):
        await provider.open()
        await smsc.wait_for(lambda: smsc.binds)
        answer = await smsc.handset("84987654321", "9029", "Đã cài Bluezone")
        assert answer.status == 0
        (message,) = inbox.handsets
        assert (message.source, message.destination) == ("84987654321", "9029")
        assert message.text == "Đã cài Bluezone"
        assert inbox.receipts == []

    play(test)


def test_the_same_words_sent_twice_by_a_handset_are_two_messages(engine):
    """SMPP gives a handset's message no id: "OK" sent twice was once stored once, its
    two deliveries having the same fields. Each delivery is now its own message."""
    from ledger import inbound
    from ledger.schema import inbound_messages

    async def test(smsc, provider, inbox):
        await provider.open()
        await smsc.wait_for(lambda: smsc.binds)
        for _ in range(2):
            assert (await smsc.handset("84987654321", "9029", "OK")).status == 0
        return inbox.handsets

    handsets = play(test)
    rows = [
        inbound.InboundMessage(
            "carrier", m.source, m.destination, m.text, inbound.digest("carrier", m.fields)
        )
        for m in handsets
    ]
    assert inbound.store(engine, rows) == 2
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(inbound_messages)).scalar() == 2


def test_a_dropped_connection_mid_window_loses_nothing_and_sends_nothing_twice():
    """Ten messages in flight, the SMSC closes the connection after answering four: those
    four are sent, the six unanswered are ``unknown`` (never resent), and the provider
    binds again by itself for the next message."""

    async def test(smsc, provider, inbox):
        smsc.rules = [Rule(drop=True, after=4, times=1), Rule(hold=True, after=4, times=5)]
        messages = [outgoing(f"Cai Bluezone {i}", message_id=i) for i in range(1, 11)]
        results = await asyncio.gather(
            *(provider.send(m) for m in messages), return_exceptions=True
        )
        sent = [r for r in results if not isinstance(r, BaseException)]
        unknown = [r for r in results if isinstance(r, SendError)]
        assert len(sent) == 4
        assert len(unknown) == 6 and {e.kind for e in unknown} == {ErrorKind.AMBIGUOUS}
        accepted = {s.message_id for s in smsc.submits if s.message_id}
        assert {r.provider_message_id for r in sent} == accepted
        after = await provider.send(outgoing("Cai Bluezone 11", message_id=11))
        assert after.provider_message_id and provider.binds.bound_count == 2
        texts = [s.text for s in smsc.submits]
        assert len(texts) == len(set(texts))  # no message submitted twice

    play(test, window=10)


def test_a_throttled_later_part_is_retried_alone():
    async def test(smsc, provider, inbox):
        smsc.rules = [Rule(status=0x58, after=1, times=2)]  # the second part, twice
        result = await provider.send(outgoing(GSM_LONG))
        outcomes = [s.outcome for s in smsc.submits]
        assert outcomes == ["0x00000000", "0x00000058", "0x00000058", "0x00000000", "0x00000000"]
        assert len(result.parts) == 3
        assert smsc.messages() == [(TO[1:], GSM_LONG)]

    play(test)


def test_a_later_part_refused_for_good_makes_the_message_unknown_not_resent():
    async def test(smsc, provider, inbox):
        smsc.rules = [Rule(status=0x0B, after=1, times=1)]
        with pytest.raises(SendError) as refused:
            await provider.send(outgoing(GSM_LONG))
        assert (refused.value.kind, refused.value.code) == (ErrorKind.AMBIGUOUS, "partial")
        assert "1 of 3 parts" in refused.value.detail
        assert len(smsc.submits) == 2  # the third never went

    play(test)


def test_a_refused_password_halts_without_hammering_the_smsc():
    async def test(smsc, provider, inbox):
        for _ in range(3):
            with pytest.raises(SendError) as halted:
                await provider.send(outgoing("Cai Bluezone"))
            assert halted.value.kind is ErrorKind.HALT
        assert "password" in halted.value.detail
        assert len(smsc.binds) == 1  # tried once, not again and again
        assert smsc.submits == []

    play(test, password="wrong")


def test_provider_test_reports_the_bind_in_words():
    async def test(smsc, provider, inbox):
        fine = await provider.check_account()
        assert fine.checked and fine.problem is None and "FAKESMSC" in fine.said
        assert smsc.unbinds == 1 and smsc.submits == []
        smsc.credentials = ("loa", "other")
        refused = await provider.check_account()
        assert refused.refused and "ESME_RINVPASWD" in refused.problem
        assert "password" in refused.problem

    play(test)


def test_shutdown_unbinds_cleanly():
    async def test(smsc, provider, inbox):
        await provider.send(outgoing("Cai Bluezone"))
        await provider.binds.take(1.0)
        await smsc.wait_for(lambda: len(smsc.binds) == 2)
        await provider.aclose()
        assert smsc.unbinds == 2  # each bind, cleanly
        assert len(smsc.binds) == provider.binds.bound_count == 2  # and none made again

    play(test, binds=2)


def test_senders_beyond_the_windows_queue_on_every_bind_alike():
    """Four binds with a window of one, eight senders: one in flight and one waiting on
    each bind (the waiting count in the balance; with only what is in flight, all four
    surplus senders queued on the first bind)."""

    async def test(smsc, provider, inbox):
        smsc.rules = [Rule(hold=True)]
        await provider.binds.wait_bound(4, timeout=5.0)
        sends = [asyncio.ensure_future(provider.send(outgoing(f"Tin {i}", i))) for i in range(8)]
        await smsc.wait_for(lambda: len(smsc.submits) == 4)
        smsc.release()  # the first four answered: the waiting four go out
        await smsc.wait_for(lambda: len(smsc.submits) == 8)
        per_bind = collections.Counter(s.connection for s in smsc.submits)
        assert sorted(per_bind.values()) == [2, 2, 2, 2]
        for send in sends:
            send.cancel()
        await asyncio.gather(*sends, return_exceptions=True)

    play(test, binds=4, window=1)


def test_parts_planned_under_other_settings_halt_before_anything_goes():
    """Planned with an 8-bit reference (2 parts), sent by a worker set to 16-bit (3): the
    SMSC would get parts that were not billed. A halt, naming the setting; nothing sent."""
    text = "A" * 305  # 2 parts of 153, 3 of 152

    async def test(smsc, provider, inbox):
        planned = outgoing(text)
        assert planned.parts == 2
        with pytest.raises(SendError) as halted:
            await provider.send(planned)
        assert (halted.value.kind, halted.value.code) == (ErrorKind.HALT, "parts_mismatch")
        assert "concatenation udh16" in halted.value.detail
        assert smsc.submits == []

    play(test, concatenation="udh16")
