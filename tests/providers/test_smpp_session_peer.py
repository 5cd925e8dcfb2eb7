"""What the SMSC sends to a bind (``providers.smpp.session``), against the local SMSC
(``providers.fakes.smpp``): deliver_sm answered only once handled, receipts in each of the
SMSCs' ways, keep-alive both ways, a silent peer, unbind from either side, commands the
bind does not know. Synchronised by events and round trips on the connection, never by
sleeping."""

from __future__ import annotations

import asyncio

import pytest

from providers.fakes.smpp_records import Rule
from providers.smpp.errors import NotBound
from tests.fake_gateway import fake_gateway
from tests.providers.smpp_scene import DESTINATION, part, play
from tests.rig import free_port

REPLY = "Vâng, tôi đã cài Bluezone rồi"


def test_a_deliver_sm_is_answered_only_once_the_handler_returns():
    entered, release = asyncio.Event(), asyncio.Event()
    stored = []

    async def store(pdu):
        entered.set()
        await release.wait()  # storing it
        stored.append(pdu)
        return 0

    async def test(scene):
        smsc = scene.smsc
        bind = await scene.bind(on_deliver=store)
        answered = smsc.handset(DESTINATION, "8088", REPLY)
        await entered.wait()
        await bind.submit_sm(**part())  # a round trip: an early answer would have arrived
        assert smsc.deliver_resps == []
        release.set()
        answer = await answered
        assert (answer.command, answer.status) == ("deliver_sm_resp", 0)
        assert [p.short_message.decode("utf-16-be") for p in stored] == [REPLY]
        assert not stored[0].is_receipt and stored[0].text("source_addr") == DESTINATION

    play(test)


async def _raises(pdu):
    raise RuntimeError("the ledger is down")


async def _busy(pdu):
    return 0x64


@pytest.mark.parametrize(
    "handler, status",
    [(_raises, 0x08), (_busy, 0x64), (None, 0x64)],
    ids=["handler raises: 0x08", "handler's own status", "no handler: 0x64"],
)
def test_a_deliver_sm_not_stored_is_answered_so_the_smsc_sends_it_again(handler, status):
    async def test(scene):
        bind = await scene.bind(on_deliver=handler)
        answer = await scene.smsc.handset(DESTINATION, "8088", REPLY)
        assert answer.status == status
        assert bind.bound

    play(test)


@pytest.mark.parametrize(
    "message_ids, receipt_ids, text, tlvs",
    [
        ("hex", "same", True, True),
        ("hex", "decimal", True, False),
        ("decimal", "hex", False, True),
    ],
)
def test_receipts_come_per_part_early_in_each_smscs_way(message_ids, receipt_ids, text, tlvs):
    receipts, three = [], asyncio.Event()

    async def store(pdu):
        receipts.append(pdu)
        if len(receipts) == 3:
            three.set()
        return 0

    settings = {"receipts": True, "receipt_early": True, "receipt_text": text}
    settings |= {"message_ids": message_ids, "receipt_ids": receipt_ids, "receipt_tlvs": tlvs}

    async def test(scene):
        bind = await scene.bind(on_deliver=store)
        ids = [(await bind.submit_sm(**part(registered_delivery=1)))[1] for _ in range(3)]
        await three.wait()
        base = 16 if message_ids == "hex" else 10
        written = {"same": ids, "hex": [f"{int(i, base):X}" for i in ids]}
        written["decimal"] = [str(int(i, base)) for i in ids]
        expected = written[receipt_ids]
        assert all(r.is_receipt for r in receipts)
        if tlvs:
            assert [r.text("receipted_message_id") for r in receipts] == expected
            assert [r.number("message_state") for r in receipts] == [2, 2, 2]
        else:
            assert all(r.text("receipted_message_id") is None for r in receipts)
        if text:
            texts = [r.short_message.decode("ascii") for r in receipts]
            assert [t.split()[0] for t in texts] == [f"id:{i}" for i in expected]
            assert all(" stat:DELIVRD err:000 text:" in t for t in texts)
        await scene.smsc.wait_for(lambda: len(scene.smsc.deliver_resps) == 3)
        assert [(a.message_id, a.status) for a in scene.smsc.deliver_resps] == [
            (i, 0) for i in expected
        ]

    play(test, **settings)


def test_enquire_link_keeps_the_bind_alive_both_ways():
    async def test(scene):
        smsc = scene.smsc
        bind = await scene.bind(enquire_link_interval=0.05, response_timeout=1.0)
        await smsc.wait_for(lambda: smsc.enquire_links >= 3)
        assert await smsc.enquire_link() == 0  # the SMSC's own, answered
        assert bind.bound and bind.close_reason is None

    play(test)


def test_a_silent_smsc_is_noticed_and_the_bind_closed():
    async def test(scene):
        smsc = scene.smsc
        bind = await scene.bind(enquire_link_interval=0.05, response_timeout=0.2)
        smsc.silent = True  # reads everything, answers nothing
        await bind.wait_closed()
        assert "enquire_link" in bind.close_reason
        with pytest.raises(NotBound):
            await bind.submit_sm(**part())

    play(test)


def test_unbind_waits_for_deliver_sm_being_stored_then_closes_cleanly():
    release = asyncio.Event()
    entered = asyncio.Event()

    async def store(pdu):
        entered.set()
        await release.wait()
        return 0

    async def test(scene):
        smsc = scene.smsc
        bind = await scene.bind(on_deliver=store)
        answered = smsc.handset(DESTINATION, "8088", REPLY)
        await entered.wait()
        unbinding = asyncio.create_task(bind.unbind())
        release.set()
        assert await unbinding is True
        assert (await answered).status == 0
        assert smsc.log[-2:] == ["deliver_sm_resp", "unbind"]
        assert not bind.bound and bind.close_reason == "unbound"
        with pytest.raises(NotBound):
            await bind.submit_sm(**part())

    play(test)


def test_the_smsc_unbinding_is_answered_and_closes_the_bind():
    async def test(scene):
        bind = await scene.bind()
        assert await scene.smsc.unbind() == 0
        await bind.wait_closed()
        assert bind.close_reason == "the SMSC unbound"

    play(test)


def test_what_the_bind_cannot_read_is_answered_so_it_is_not_sent_for_ever():
    """A command SMPP 3.4 does not have: generic_nack 0x03. A deliver_sm whose body
    cannot be read (source_addr without its NUL): rejected for good, 0x65; a temporary
    0x08 had the SMSC send it again and again."""
    unreadable_deliver_sm = b"\x00\x01\x01" + b"84912"

    async def test(scene):
        bind = await scene.bind(on_deliver=_busy)
        unknown = await scene.smsc.send_raw(0x99)
        assert (unknown.command, unknown.status) == ("generic_nack", 0x03)
        broken = await scene.smsc.send_raw(0x05, unreadable_deliver_sm)
        assert (broken.command, broken.status) == ("deliver_sm_resp", 0x65)
        assert bind.bound

    play(test)


def test_deliver_sm_beyond_the_receive_window_are_throttled_not_held_in_memory():
    """Two being stored (the ledger slow), a third is answered ESME_RTHROTTLED at once,
    and the two are answered 0 once stored."""
    entered, release = asyncio.Event(), asyncio.Event()
    storing = []

    async def store(pdu):
        storing.append(pdu)
        if len(storing) == 2:
            entered.set()
        await release.wait()
        return 0

    async def test(scene):
        smsc = scene.smsc
        bind = await scene.bind(on_deliver=store, receive_window=2)
        first = smsc.handset(DESTINATION, "8088", "một")
        second = smsc.handset(DESTINATION, "8088", "hai")
        await entered.wait()
        third = await smsc.handset(DESTINATION, "8088", "ba")
        assert (third.command, third.status) == ("deliver_sm_resp", 0x58)
        assert bind.throttled_delivers == 1 and len(storing) == 2
        release.set()
        assert [(await first).status, (await second).status] == [0, 0]
        assert bind.bound

    play(test)


def test_an_answer_of_another_command_fails_its_request_as_unreadable():
    """A submit_sm answered by a deliver_sm_resp under its number: not taken as accepted
    (it carries no message_id), the fate unknown."""
    from providers.smpp.errors import MalformedPdu

    async def test(scene):
        scene.smsc.rules = [Rule(answer_as="deliver_sm_resp", times=1)]
        bind = await scene.bind()
        with pytest.raises(MalformedPdu, match="submit_sm #2 answered by deliver_sm_resp"):
            await bind.submit_sm(**part())
        status, message_id = await bind.submit_sm(**part())
        assert status == 0 and message_id

    play(test)


def test_the_fake_smsc_runs_as_a_process_steered_over_http():
    port = free_port()
    args = ("--port", str(port), "--message-ids", "decimal")
    with fake_gateway("providers.fakes.smpp", *args) as fake:
        fake.faults({"status": "0x58", "times": 1})

        async def send() -> list[tuple[int, str | None]]:
            from providers.smpp.session import Bind

            bind = Bind("127.0.0.1", port, system_id="loa", password="secret")
            await bind.connect()
            answers = [await bind.submit_sm(**part()) for _ in range(2)]
            assert await bind.unbind()
            return answers

        throttled, taken = asyncio.run(asyncio.wait_for(send(), 8))
        assert throttled == (0x58, None) and taken[0] == 0 and taken[1].isdigit()
        rows = fake.received()
    assert [(row[1], row[2], row[3]) for row in rows] == [
        (DESTINATION, "", "0x00000058"),
        (DESTINATION, taken[1], "0x00000000"),
    ]


def test_a_fake_rule_that_does_nothing_is_refused_naming_what_it_needs():
    """It would match every submit_sm and, first match winning, hide every later rule."""
    with pytest.raises(ValueError, match="a rule needs one of: answer_as, delay, drop"):
        Rule.parse({"times": 2})
    assert Rule.parse({"status": "0x58", "times": 2}).status == 0x58
