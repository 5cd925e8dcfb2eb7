"""The receipt webhook over real HTTP (uvicorn on a free port) on both ledgers: proven
receipts are stored before the answer and applied by the drainer; forged, malformed,
oversized and replayed ones store nothing wrong, and the app keeps serving."""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from twilio.request_validator import RequestValidator

from campaigns.recipients import ListRow
from campaigns.spec import CampaignSpec
from ledger.handover import record_sent
from ledger.messages import claim_batch
from ledger.receipts import drain_all
from ledger.schema import events, receipts
from ledger.summary import status_counts
from providers.fakes.zalo import Zns, event_body, signature
from tests.helpers import record
from tests.rig import serving
from tests.worker.test_dispatch import SPEC
from worker.runtime import Runtime
from worker.settings import Settings
from worker.web.webhook import make_app

ZALO = Zns()  # the fake ZNS's app and secrets: its events are signed as Zalo signs them
TOKEN = "bí-mật-token-123"
AUTH = "twilio-auth-token"
PUBLIC = "https://loa.example.vn/receipts/intl"  # what Twilio calls, via the proxy
PROVIDERS = {
    "sandbox": {"type": "sandbox"},
    "gateway": {
        "type": "esms",
        "api_key": "k",
        "secret_key": "s",
        "base_url": "http://127.0.0.1:9",
        "callback_token": TOKEN,
    },
    "intl": {
        "type": "twilio",
        "account_sid": "AC" + "0" * 32,
        "auth_token": AUTH,
        "from_number": "+15005550006",
        "base_url": "http://127.0.0.1:9",
        "status_callback_url": PUBLIC,
    },
    "zalo": {
        "type": "zalo_zns",
        "app_id": ZALO.app_id,
        "secret_key": ZALO.secret_key,
        "refresh_token": ZALO.refresh_token,
        "oa_secret_key": ZALO.oa_secret,
        "base_url": "http://127.0.0.1:9",
    },
}


@contextmanager
def webhook(engine, tmp_path, **extra: object) -> Iterator[tuple[str, Runtime]]:
    url = SecretStr(str(engine.url.render_as_string(hide_password=False)))
    settings = Settings(database_url=url, var_dir=tmp_path, providers=PROVIDERS, **extra)
    runtime = Runtime(settings, engine=engine)
    try:
        with serving(make_app(runtime)) as base:
            yield base, runtime
    finally:
        runtime.close()


def call(url: str, data: bytes | None = None, headers: dict[str, str] | None = None):
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def twilio_post(base: str, fields: dict[str, str], signature: str | None = None):
    signature = signature or RequestValidator(AUTH).compute_signature(PUBLIC, fields)
    return call(
        f"{base}/receipts/intl",
        urllib.parse.urlencode(fields).encode(),
        {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature},
    )


def sent_campaign(engine, provider: str, ids: list[str]) -> None:
    spec = CampaignSpec.model_validate({**SPEC.model_dump(mode="json"), "provider": provider})
    number = "+8210{:08d}" if provider == "intl" else "09123{:05d}"
    rows = [ListRow(i + 2, number.format(i), ()) for i in range(len(ids))]
    record(engine, spec, rows, batch_size=len(ids))
    claimed = claim_batch(engine, spec.id, 1)
    record_sent(engine, spec.id, [(m.id, pid) for m, pid in zip(claimed, ids, strict=True)])


def inbox(engine) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(receipts.c.state, receipts.c.raw_status))]


def test_a_signed_twilio_receipt_is_stored_then_applied(engine, tmp_path):
    sent_campaign(engine, "intl", ["SM1", "SM2"])
    with webhook(engine, tmp_path) as (base, _):
        assert twilio_post(base, {"MessageSid": "SM1", "MessageStatus": "delivered"}) == (200, "OK")
        failed = {"MessageSid": "SM2", "MessageStatus": "undelivered", "ErrorCode": "30003"}
        assert twilio_post(base, failed)[0] == 200
        assert inbox(engine) == [("pending", "delivered"), ("pending", "undelivered")]  # durable
        assert drain_all(engine)["applied"] == 2
    counts = status_counts(engine, SPEC.id)
    assert (counts["delivered"], counts["undelivered"]) == (1, 1)
    with engine.connect() as conn:
        codes = conn.scalars(sa.select(events.c.code).where(events.c.source == "receipt")).all()
    assert set(codes) == {None, "30003"}  # the provider's code kept in the event


def test_forged_and_wrongly_signed_receipts_are_refused_and_store_nothing(engine, tmp_path):
    sent_campaign(engine, "intl", ["SM1"])
    fields = {"MessageSid": "SM1", "MessageStatus": "delivered"}
    with webhook(engine, tmp_path) as (base, _):
        refused_before = refused(base)
        assert twilio_post(base, fields, signature="forged")[0] == 403
        # Signed for the URL this server sees, not the public one Twilio called.
        local = RequestValidator(AUTH).compute_signature(f"{base}/receipts/intl", fields)
        assert twilio_post(base, fields, signature=local)[0] == 403
        no_signature = call(f"{base}/receipts/intl", urllib.parse.urlencode(fields).encode())
        assert no_signature[0] == 403
        esms = "SMSID=1&RequestId=loa-1&SendStatus=5"
        assert call(f"{base}/receipts/gateway?{esms}&token=wrong")[0] == 403
        assert call(f"{base}/receipts/gateway?{esms}")[0] == 403
        assert inbox(engine) == []
        assert refused(base) == refused_before + 3  # counted, by provider


def refused(base: str) -> float:
    """403s to the Twilio route so far (the server runs in this process: its registry)."""
    from prometheus_client import REGISTRY

    labels = {"answer": "403", "provider": "intl"}
    return REGISTRY.get_sample_value("loa_webhook_receipts_total", labels) or 0.0


def test_esms_callbacks_are_known_by_their_token(engine, tmp_path):
    sent_campaign(engine, "gateway", ["loa-1"])
    query = urllib.parse.urlencode(
        {"SMSID": "9", "RequestId": "loa-1", "SendStatus": "5", "telcoid": "1", "token": TOKEN}
    )
    with webhook(engine, tmp_path) as (base, _):
        assert call(f"{base}/receipts/gateway?{query}") == (200, "OK")
        assert call(f"{base}/receipts/gateway?{query}") == (200, "OK")  # eSMS retried it
        assert inbox(engine) == [("pending", "5")]  # stored once
        drain_all(engine)
    assert status_counts(engine, SPEC.id)["delivered"] == 1


def test_zalo_delivery_events_are_known_by_their_signature(engine, tmp_path):
    """A ZNS ``user_received_message``, JSON signed over its exact bytes, delivers its
    message; a replay is one receipt; the same body re-signed with another secret, or
    altered after signing, is refused and stores nothing; an event Loa has no status for
    is kept flagged and answered 200 (Zalo posts every event the OA sees)."""
    sent_campaign(engine, "zalo", ["zns-1"])
    body = event_body(ZALO, "zns-1", "1", 1_700_000_000_000)
    signed = {"Content-Type": "application/json"}
    signed["X-ZEvent-Signature"] = signature(ZALO, body, "1700000000000")
    forged = {**signed, "X-ZEvent-Signature": signature(Zns(oa_secret="x" * 32), body, "1")}
    other = body.replace(b"user_received_message", b"user_submit_info")
    with webhook(engine, tmp_path) as (base, _):
        assert call(f"{base}/receipts/zalo", body, forged)[0] == 403
        assert call(f"{base}/receipts/zalo", body.replace(b"zns-1", b"zns-2"), signed)[0] == 403
        assert inbox(engine) == []
        assert call(f"{base}/receipts/zalo", body, signed) == (200, "OK")
        assert call(f"{base}/receipts/zalo", body, signed) == (200, "OK")  # Zalo retried it
        resigned = {**signed, "X-ZEvent-Signature": signature(ZALO, other, "1700000000000")}
        assert call(f"{base}/receipts/zalo", other, resigned)[0] == 200
        assert sorted(inbox(engine)) == [
            ("flagged", "user_submit_info"),
            ("pending", "user_received_message"),
        ]
        drain_all(engine)
    assert status_counts(engine, SPEC.id)["delivered"] == 1


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (b"MessageSid=SM1", {"Content-Type": "application/x-www-form-urlencoded"}, 400),
        (b"MessageSid=SM1&MessageStatus=teleported", None, 422),
        (b'{"MessageSid": "SM1"}', {"Content-Type": "text/plain"}, 415),
        (b"MessageSid=\xff\xfe", None, 400),
        (None, None, 413),
    ],
    ids=["missing field", "unknown status", "wrong type", "invalid utf-8", "10 MB"],
)
def test_bad_receipts_get_a_4xx_and_store_nothing_wrong(engine, tmp_path, body, headers, status):
    sent_campaign(engine, "intl", ["SM1"])
    headers = headers or {"Content-Type": "application/x-www-form-urlencoded"}
    fields = dict(urllib.parse.parse_qsl((body or b"").decode("utf-8", "replace")))
    headers["X-Twilio-Signature"] = RequestValidator(AUTH).compute_signature(PUBLIC, fields)
    with webhook(engine, tmp_path) as (base, _):
        if body is None:
            assert ten_megabytes(base, headers) == status
        else:
            assert call(f"{base}/receipts/intl", body, headers)[0] == status
        # The message is untouched (an unknown status is kept raw and flagged, no more).
        assert all(state == "flagged" for state, _ in inbox(engine))
        assert drain_all(engine)["applied"] == 0
        assert call(f"{base}/healthz")[0] == 200  # and the app keeps serving
    assert status_counts(engine, SPEC.id)["sent"] == 1


def ten_megabytes(base: str, headers: dict[str, str]) -> int:
    """Announce a 10 MB body and read the answer before sending it: the webhook refuses
    by the declared size, without reading (or holding) the body."""
    import http.client

    port = int(base.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest("POST", "/receipts/intl")
        for name, value in {**headers, "Content-Length": str(10 * 1024 * 1024)}.items():
            conn.putheader(name, value)
        conn.endheaders()
        return conn.getresponse().status
    finally:
        conn.close()


def test_a_receipt_that_overtakes_its_send_waits_for_it(engine, tmp_path):
    with webhook(engine, tmp_path) as (base, _):
        assert twilio_post(base, {"MessageSid": "SM7", "MessageStatus": "delivered"})[0] == 200
    assert drain_all(engine)["waiting"] == 1  # no message has that id yet
    sent_campaign(engine, "intl", ["SM7"])  # the send's answer is recorded now
    assert drain_all(engine)["applied"] == 1
    assert status_counts(engine, SPEC.id)["delivered"] == 1


def test_an_unknown_provider_route_is_404(engine, tmp_path):
    with webhook(engine, tmp_path) as (base, _):
        assert call(f"{base}/receipts/nowhere?x=1")[0] == 404
