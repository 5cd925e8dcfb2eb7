"""The SMPP bind (``providers.smpp.session``) against the local SMSC (``providers.fakes.smpp``)
over real TCP: binding, concatenation as the SMSC decodes it, the window, what each failure
means for a message (not accepted / fate unknown / never sent), deliver_sm answered only
once handled, keep-alive and unbind.

Where a test must know that something did NOT reach the SMSC, it makes a round trip on the
same connection first (TCP keeps order: whatever the bind wrote before its answer has
arrived), never a sleep."""

from __future__ import annotations

import asyncio

import pytest

from providers.fakes.smpp import Rule
from providers.smpp.errors import (
    BindRefused,
    ConnectionLost,
    GenericNack,
    NotBound,
    PduError,
    ResponseTimeout,
)
from tests.providers.smpp_scene import DESTINATION, MESSAGE, encoded_parts, part, play

VIETNAMESE = (
    "Ninh Thuận chào đón quý khách. Cài Bluezone để cùng phòng chống dịch COVID-19, khai báo "
    "y tế tại https://tokhaiyte.vn và giữ khoảng cách nơi đông người. Xin cảm ơn quý khách!"
)
#: GSM 03.38 with extension characters (two septets each) and § (0x5F in the basic table).
GSM = "Ninh Thuan welcomes you: install {Bluezone} [free], 0€ fee, § 3 ~ stay safe. " * 5


@pytest.mark.parametrize("mode", ["transceiver", "transmitter", "receiver"])
def test_a_bind_is_taken_in_each_mode(mode):
    async def test(scene):
        bind = await scene.bind(mode=mode)
        assert bind.bound and bind.smsc_system_id == "FAKESMSC"
        assert scene.smsc.binds == [(f"bind_{mode}", "loa", 0)]

    play(test)


@pytest.mark.parametrize(
    "system_id, password, status",
    [("loa", "wrong", 0x0E), ("someone", "secret", 0x0F)],
    ids=["wrong password: 0x0E", "unknown system_id: 0x0F"],
)
def test_a_refused_bind_says_the_status(system_id, password, status):
    async def test(scene):
        bind = scene.make(system_id=system_id, password=password)
        with pytest.raises(BindRefused) as refused:
            await bind.connect()
        assert refused.value.status == status
        assert not bind.bound
        with pytest.raises(NotBound):
            await bind.submit_sm(**part())

    play(test)


@pytest.mark.parametrize("field, value", [("password", "secret99"), ("system_id", "x" * 15)])
def test_credentials_longer_than_smpp_allows_are_refused_before_connecting(field, value):
    async def test(scene):
        scene.make(**{field: value})  # at the limit: taken
        with pytest.raises(PduError, match=field):
            scene.make(**{field: value + "9"})  # smpplib would have cut it short
        assert scene.smsc.binds == []

    play(test)


REF8, REF16 = 0x2A, 0x1234  # 0x1234 does not fit an 8-bit reference


def submits_for(style: str, coding: int, whole: bytes, parts: list[bytes]) -> list[dict]:
    """The submit_sm of one message in ``style``, built here from SMPP 3.4's layouts."""
    base = {**MESSAGE, "data_coding": coding, "registered_delivery": 1}
    if style == "message_payload":
        return [{**base, "message_payload": whole}]
    total, out = len(parts), []
    for i, body in enumerate(parts, 1):
        if style == "udh8":
            fields = {"esm_class": 0x40, "short_message": bytes([5, 0, 3, REF8, total, i]) + body}
        elif style == "udh16":
            header = bytes([6, 8, 4, REF16 >> 8, REF16 & 0xFF, total, i])
            fields = {"esm_class": 0x40, "short_message": header + body}
        else:
            fields = {"short_message": body, "sar_msg_ref_num": REF16}
            fields |= {"sar_total_segments": total, "sar_segment_seqnum": i}
        out.append({**base, **fields})
    return out


@pytest.mark.parametrize("style", ["udh8", "udh16", "sar", "message_payload"])
@pytest.mark.parametrize("text", [VIETNAMESE, GSM], ids=["ucs2 vietnamese", "gsm7 extension"])
def test_each_concatenation_style_reaches_the_smsc_whole(style, text):
    coding, whole, parts = encoded_parts(text)
    assert len(parts) == 3  # the texts are chosen to need three parts

    async def test(scene):
        bind = await scene.bind()
        answers = [
            await bind.submit_sm(**fields) for fields in submits_for(style, coding, whole, parts)
        ]
        smsc = scene.smsc
        assert [status for status, _ in answers] == [0] * len(answers)
        assert [mid for _, mid in answers] == [s.message_id for s in smsc.submits]
        assert smsc.messages() == [(DESTINATION, text)]
        assert {s.pdu.number("data_coding") for s in smsc.submits} == {coding}
        if style == "message_payload":
            assert [s.concat for s in smsc.submits] == [None]
            return
        ref = REF8 if style == "udh8" else REF16
        assert [s.concat for s in smsc.submits] == [(ref, 3, 1), (ref, 3, 2), (ref, 3, 3)]
        udhi = 0x40 if style.startswith("udh") else 0
        assert [s.pdu.number("esm_class") for s in smsc.submits] == [udhi] * 3
        if style == "udh8":
            assert smsc.submits[1].pdu.short_message[:6] == b"\x05\x00\x03\x2a\x03\x02"
        if style == "udh16":
            assert smsc.submits[2].pdu.short_message[:7] == b"\x06\x08\x04\x12\x34\x03\x03"

    play(test)


def test_the_window_bounds_what_is_in_flight():
    async def test(scene):
        smsc = scene.smsc
        smsc.rules = [Rule(hold=True)]
        bind = await scene.bind(window=3)
        numbers = [f"8491234560{i}" for i in range(8)]
        sends = [asyncio.create_task(bind.submit_sm(**part(destination_addr=n))) for n in numbers]
        await smsc.wait_for(lambda: len(smsc.submits) >= 3)
        assert await smsc.enquire_link() == 0  # a round trip: nothing more is on its way
        assert len(smsc.submits) == 3 and bind.outstanding == 3
        smsc.rules.clear()
        smsc.release()
        answers = await asyncio.gather(*sends)
        assert smsc.max_unanswered == 3
        given = {s.destination: s.message_id for s in smsc.submits}
        assert [mid for _, mid in answers] == [given[n] for n in numbers]

    play(test)


def test_each_answer_reaches_its_own_request():
    async def test(scene):
        smsc = scene.smsc
        smsc.rules = [Rule(hold=True, destination="0001")]
        bind = await scene.bind()
        first = asyncio.create_task(bind.submit_sm(**part(destination_addr="84912340001")))
        await smsc.wait_for(lambda: len(smsc.submits) == 1)
        second = await bind.submit_sm(**part(destination_addr="84912340002"))
        smsc.release()  # the first is answered after the second
        assert (await first)[1] == smsc.submits[0].message_id
        assert second[1] == smsc.submits[1].message_id != smsc.submits[0].message_id

    play(test)


def test_sequence_numbers_wrap_to_1_after_0x7fffffff():
    async def test(scene):
        bind = await scene.bind()
        bind._window.sequence = 0x7FFFFFFE  # as after two billion requests on one bind
        answers = [await bind.submit_sm(**part()) for _ in range(2)]
        assert [s.pdu.sequence for s in scene.smsc.submits] == [0x7FFFFFFF, 1]
        assert [mid for _, mid in answers] == [s.message_id for s in scene.smsc.submits]

    play(test)


@pytest.mark.parametrize(
    "rule, status", [(Rule(status=0x58, after=2), 0x58), (Rule(status=0x14, times=1), 0x14)]
)
def test_a_refusal_is_the_status_it_came_with(rule, status):
    async def test(scene):
        scene.smsc.rules = [rule]
        bind = await scene.bind()
        answers = [await bind.submit_sm(**part()) for _ in range(3)]
        refused = 2 if rule.after else 0
        assert answers[refused] == (status, None)
        assert all(a[0] == 0 and a[1] for i, a in enumerate(answers) if i != refused)

    play(test)


def test_no_answer_in_time_is_a_timeout_and_a_late_answer_is_not_mistaken():
    async def test(scene):
        smsc = scene.smsc
        smsc.rules = [Rule(hold=True, times=1)]
        bind = await scene.bind(response_timeout=0.3)
        with pytest.raises(ResponseTimeout):
            await bind.submit_sm(**part())
        assert bind.bound and bind.outstanding == 0
        assert smsc.release() == 1  # the answer to the first, too late
        assert await bind.submit_sm(**part()) == (0, smsc.submits[1].message_id)
        assert bind.late_responses == 1

    play(test)


def test_an_smsc_that_keeps_every_submit_sm_loses_the_bind_after_three():
    """It answers enquire_link, but holds every message: after three submit_sm in a row
    unanswered the bind closes (sends then wait for a new bind, a pause), rather than
    throw every message of the campaign into ``unknown``. One answered in between starts
    the count again."""

    async def test(scene):
        smsc = scene.smsc
        smsc.rules = [Rule(hold=True, times=2), Rule(status=0x0B, times=1), Rule(hold=True)]
        bind = await scene.bind(response_timeout=0.2)
        for _ in range(2):
            with pytest.raises(ResponseTimeout):
                await bind.submit_sm(**part())
        assert await bind.submit_sm(**part()) == (0x0B, None)  # an answer: the count restarts
        for _ in range(2):
            with pytest.raises(ResponseTimeout):
                await bind.submit_sm(**part())
        assert bind.bound
        with pytest.raises(ResponseTimeout):
            await bind.submit_sm(**part())
        assert not bind.bound and "holds what it is sent" in bind.close_reason
        with pytest.raises(NotBound):
            await bind.submit_sm(**part())

    play(test)


def test_generic_nack_is_not_accepted_and_the_bind_goes_on():
    async def test(scene):
        scene.smsc.rules = [Rule(nack=0x03, times=1)]
        bind = await scene.bind()
        with pytest.raises(GenericNack) as nack:
            await bind.submit_sm(**part())
        assert nack.value.status == 0x03
        assert (await bind.submit_sm(**part()))[0] == 0

    play(test)


def test_a_dropped_connection_leaves_the_window_unknown_and_the_rest_unsent():
    async def test(scene):
        smsc = scene.smsc
        smsc.rules = [Rule(hold=True, times=3), Rule(drop=True)]
        bind = await scene.bind(window=4)
        sends = [asyncio.create_task(bind.submit_sm(**part())) for _ in range(5)]
        results = await asyncio.gather(*sends, return_exceptions=True)
        assert [type(r) for r in results] == [ConnectionLost] * 4 + [NotBound]
        assert len(smsc.submits) == 4  # the fifth never left Loa: safe to send elsewhere
        assert bind.close_reason == "the SMSC closed the connection"

    play(test)
