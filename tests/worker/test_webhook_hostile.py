"""The webhook against an attacker, over real HTTP on both ledgers (issue 17): every
request below was one that once stopped or fooled the service."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
import uvicorn
from twilio.request_validator import RequestValidator

from campaigns.hours import VIETNAM
from ledger.receipts import FLAGGED, drain_all
from ledger.schema import campaigns, messages, receipts
from ledger.summary import status_counts
from tests.campaigns.test_arrivals import RULES
from tests.rig import free_port
from tests.worker.test_arrival_route import KEY, post
from tests.worker.test_dispatch import SPEC
from tests.worker.test_webhook import (
    AUTH,
    PUBLIC,
    TOKEN,
    call,
    inbox,
    sent_campaign,
    twilio_post,
    webhook,
)
from worker.web.auth_throttle import AuthThrottle
from worker.web.http_deadline import DeadlineProtocol


def esms(base: str, request_id: str, token: str = TOKEN, **extra: str):
    query = {"SMSID": "9", "RequestId": request_id, "SendStatus": "5", "token": token, **extra}
    return call(f"{base}/receipts/gateway?{urllib.parse.urlencode(query)}")


def test_a_receipt_the_ledger_cannot_hold_as_sent_is_stored_cleaned_alone(engine, tmp_path):
    """Over-long ids and NUL bytes once failed the whole group commit on PostgreSQL, so
    good receipts arriving at the same moment answered 503; then they were refused (400)
    and lost. Now what the provider wrote is made storable where it is parsed (controls
    replaced by U+FFFD, cut to the column), as a provider's ids are when a send records
    them, so both still match; the good receipts beside them are untouched."""
    sent_campaign(engine, "gateway", [f"loa-{i}" for i in range(8)])
    hostile = ["x" * 65, "loa-\x00", "loa-1\x07"]
    with webhook(engine, tmp_path) as (base, _), ThreadPoolExecutor(12) as pool:
        good = [pool.submit(esms, base, f"loa-{i}") for i in range(8)]
        bad = [pool.submit(esms, base, rid) for rid in hostile]
        fields = {"MessageSid": "SM9", "MessageStatus": "undelivered", "ErrorCode": "9" * 40}
        long_code = pool.submit(twilio_post, base, fields)
        escape = pool.submit(esms, base, "loa-0", SendStatus="\x1b[31m5\x00")
        assert [f.result()[0] for f in good] == [200] * 8
        assert [f.result()[0] for f in bad] == [200] * 3
        assert long_code.result()[0] == 200
        assert escape.result()[0] == 422  # kept raw (cleaned) and flagged, never guessed
    with engine.connect() as conn:
        stored = {
            row.provider_message_id: (row.raw_status, row.code)
            for row in conn.execute(sa.select(receipts)).all()
        }
    assert len(stored) == 8 + 3 + 1  # the flagged one shares loa-0 with a good one
    assert {"x" * 64, "loa-\ufffd", "loa-1\ufffd"} <= set(stored)
    assert stored["SM9"] == ("undelivered", "9" * 32)
    assert ("flagged", ("\ufffd[31m5\ufffd", None)) in inbox_rows(engine)
    assert drain_all(engine)["applied"] == 8


def inbox_rows(engine) -> list[tuple[str, tuple[str, str | None]]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(receipts.c.state, receipts.c.raw_status, receipts.c.code))
        return [(state, (raw, code)) for state, raw, code in rows]


def test_a_stored_receipt_that_cannot_be_applied_is_flagged_and_skipped(engine, tmp_path):
    """A code longer than ``messages.error_code`` (stored by an older version) once
    stopped every drain pass for good; a status no rule knows must not either."""
    sent_campaign(engine, "gateway", ["loa-1", "loa-2", "loa-3"])
    row = {"provider": "gateway", "status": "undelivered", "raw_status": "4", "network": None}
    with engine.begin() as conn:
        conn.execute(
            receipts.insert(),
            [
                {
                    **row,
                    "provider_message_id": pid,
                    "code": code,
                    "digest": f"{pid:0>64}",
                    "state": "pending",
                    "received_at": datetime.now(UTC),
                }
                for pid, code in (("loa-1", "9" * 64), ("loa-2", "E1"), ("loa-3", "E2"))
            ],
        )
        conn.execute(receipts.update().where(receipts.c.code == "E1").values(status="teleported"))
    totals = drain_all(engine)
    assert (totals["applied"], totals[FLAGGED]) == (2, 1)
    with engine.connect() as conn:
        states = dict(
            conn.execute(sa.select(receipts.c.provider_message_id, receipts.c.state)).all()
        )
    assert states == {"loa-1": "applied", "loa-2": FLAGGED, "loa-3": "applied"}
    with engine.connect() as conn:
        codes = set(conn.scalars(sa.select(messages.c.error_code)))
    assert codes == {"9" * 32, "E2", None}  # cut to its column; the event keeps it whole
    # A later good receipt is applied as usual: nothing is stuck behind the bad one.
    with webhook(engine, tmp_path) as (base, _):
        assert esms(base, "loa-2")[0] == 200
    assert drain_all(engine)["applied"] == 1
    assert status_counts(engine, SPEC.id)["delivered"] == 1


def test_query_fields_of_a_twilio_receipt_must_be_signed(engine, tmp_path):
    """With the public URL configured, the query string was merged into the receipt but
    not signed: one captured signature vouched for any query."""
    sent_campaign(engine, "intl", ["SM1"])
    fields = {"MessageSid": "SM1", "MessageStatus": "undelivered"}
    signature = RequestValidator(AUTH).compute_signature(PUBLIC, fields)
    form = urllib.parse.urlencode(fields).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    with webhook(engine, tmp_path) as (base, _):
        forged = call(
            f"{base}/receipts/intl?ErrorCode=30008",
            form,
            {**headers, "X-Twilio-Signature": signature},
        )
        assert forged[0] == 403
        assert inbox(engine) == []
        signed_query = RequestValidator(AUTH).compute_signature(f"{PUBLIC}?ErrorCode=30003", fields)
        honest = call(
            f"{base}/receipts/intl?ErrorCode=30003",
            form,
            {**headers, "X-Twilio-Signature": signed_query},
        )
        assert honest[0] == 200
    drain_all(engine)
    with engine.connect() as conn:
        assert conn.scalar(sa.select(receipts.c.code)) == "30003"


def test_repeated_failures_from_one_address_are_slowed_down(engine, tmp_path, monkeypatch):
    """A thousand wrong keys once took 1.4 s. After the burst, an address gets 429 with
    Retry-After at that door, and its key is not even checked (the right one included)."""
    # The webhook's throttle on a clock that stands still: on the real one, a failure is
    # forgiven every 3 s, which a loaded machine's slow requests could reach mid-test.
    monkeypatch.setattr("worker.web.webhook.AuthThrottle", lambda: AuthThrottle(clock=lambda: 0.0))
    sent_campaign(engine, "gateway", ["loa-1"])
    settings = {"arrivals_rules": RULES, "arrivals_api_key": KEY}
    with webhook(engine, tmp_path, **settings) as (base, _):
        answers = [esms(base, "loa-1", token=f"guess-{i}")[0] for i in range(25)]
        assert answers[:20] == [403] * 20 and answers[20:] == [429] * 5
        assert esms(base, "loa-1")[0] == 429  # the right token, from the same address
        # Another door is not closed by this one's failures (nor closes it).
        assert post(base, {"events": []}, key="guess")[0] == 403
        fields = {"MessageSid": "SM1", "MessageStatus": "delivered"}
        assert twilio_post(base, fields)[0] == 200  # stored, waiting for its message
        for _ in range(25):
            post(base, {"events": []}, key="guess")
        status, answer = post(base, {"events": []}, key="guess")
        assert status == 429 and "failed attempts" in answer["error"]
    assert inbox(engine) == [("pending", "delivered")]  # only the good one stored


def test_failures_are_forgiven_one_per_interval():
    now = [0.0]
    throttle = AuthThrottle(burst=3, every=2.0, clock=lambda: now[0])
    for _ in range(3):
        assert throttle.wait("203.0.113.9") == 0
        throttle.failed("203.0.113.9")
    assert throttle.wait("203.0.113.9") == 2.0
    assert throttle.wait("198.51.100.7") == 0  # per address
    now[0] = 1.0
    assert throttle.wait("203.0.113.9") == 1.0
    now[0] = 2.0
    assert throttle.wait("203.0.113.9") == 0  # one forgiven
    throttle.failed("203.0.113.9")
    assert throttle.wait("203.0.113.9") == 2.0


def test_the_throttle_remembers_a_bounded_number_of_addresses():
    throttle = AuthThrottle(burst=1, addresses=100, clock=lambda: 0.0)
    for i in range(1000):
        throttle.failed(f"10.0.{i // 256}.{i % 256}")
    assert len(throttle._spent) == 100
    assert throttle.wait("10.0.3.231") > 0  # the newest kept, the oldest forgotten
    assert throttle.wait("10.0.0.0") == 0


def arrival(event_id: str, at: str) -> dict[str, str]:
    return {"event_id": event_id, "phone": "+821020000001", "arrived_at": at, "area": "589"}


def test_hostile_arrival_times_are_rejected_as_rows(engine, tmp_path):
    """``0001-01-01T00:00:00+14:00`` once made the whole POST a 503 (retried for ever);
    1970 and 2000 were taken and opened campaigns for those months."""
    settings = {"arrivals_rules": RULES, "arrivals_api_key": KEY}
    now = datetime.now(UTC)
    batch = [
        arrival("t-0001", "0001-01-01T00:00:00+14:00"),
        arrival("t-9999", "9999-12-31T23:59:59-14:00"),
        arrival("t-1970", "1970-01-01T00:00:00+00:00"),
        arrival("t-2000", "2000-06-01T08:00:00+07:00"),
        arrival("t-unix", "0"),
        {**arrival("t-good", (now - timedelta(minutes=1)).isoformat()), "phone": "+821020000002"},
    ]
    with webhook(engine, tmp_path, **settings) as (base, _):
        status, taken = post(base, {"events": batch})
    assert status == 200, taken
    assert taken["welcomed"] == 1
    reasons = {r["index"]: r["reason"] for r in taken["rejected"]}
    assert reasons == {0: "bad_time", 1: "bad_time", 2: "old_time", 3: "old_time", 4: "old_time"}
    with engine.connect() as conn:
        opened = set(conn.scalars(sa.select(campaigns.c.id)))
    months = {now, now - timedelta(minutes=1)}  # the good one's, and now's (rejects count)
    assert opened and opened <= {
        f"arrivals-ninh-thuan-{m.astimezone(VIETNAM):%Y-%m}" for m in months
    }


def test_a_body_nested_too_deeply_is_a_400(engine, tmp_path):
    settings = {"arrivals_rules": RULES, "arrivals_api_key": KEY}
    with webhook(engine, tmp_path, **settings) as (base, _):
        status, answer = post(base, b"[" * 200_000 + b"]" * 200_000)
        assert status in (400, 413), answer  # a megabyte at most: either is a refusal
        status, answer = post(base, b'{"events": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
        assert status == 400 and "nested" in answer["error"]
        status, again = post(base, {"events": [arrival("n-1", datetime.now(UTC).isoformat())]})
        assert status == 200 and again["welcomed"] == 1  # and it keeps serving


class Capped(DeadlineProtocol):
    request_seconds, max_connections = 300.0, 2


@contextlib.contextmanager
def serving(engine, tmp_path, protocol: type = Capped, **settings: object):
    """The webhook app on uvicorn with ``protocol``, in a thread; yields its port."""
    from worker.runtime import Runtime
    from worker.settings import Settings
    from worker.web.webhook import make_app

    runtime = Runtime(Settings(var_dir=tmp_path, **settings), engine=engine)
    port = free_port()
    config = uvicorn.Config(make_app(runtime), host="127.0.0.1", port=port, http=protocol)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            thread.join(0.01)  # waiting for it to listen; `started` decides
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        runtime.close()


def read_all(client: socket.socket) -> bytes:
    """What the server said before it closed (a reset, when it closed on data we were
    still sending, may swallow its answer: then b"RESET")."""
    answer = b""
    try:
        while chunk := client.recv(4096):
            answer += chunk
    except ConnectionResetError:
        return answer or b"RESET"
    return answer


def test_connections_beyond_the_cap_are_answered_503_at_once(engine, tmp_path):
    with serving(engine, tmp_path) as port:
        held = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(2)]
        extra = socket.create_connection(("127.0.0.1", port), timeout=30)
        answer = read_all(extra)  # answered at once, then closed
        assert answer.startswith(b"HTTP/1.1 503 ") and answer.endswith(b"too many connections\r\n")
        held[0].settimeout(0.5)
        with contextlib.suppress(TimeoutError):  # still open: nothing to read, as it should
            assert held[0].recv(1) != b"", "a connection within the cap was closed"
        for client in [*held, extra]:
            client.close()


def test_headers_streamed_without_end_are_cut_off_at_16_kb(engine, tmp_path):
    """Headers streamed for the whole deadline once grew the process by 600 MB."""
    with serving(engine, tmp_path) as port:
        client = socket.create_connection(("127.0.0.1", port), timeout=30)
        client.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        with contextlib.suppress(ConnectionError):  # it may close while we still send
            for _ in range(100):  # 400 KB of headers, never ended
                client.sendall(b"X-A: " + b"a" * 4000 + b"\r\n")
        # Closed long before the 300 s deadline (recv would time out after 30 s).
        assert read_all(client).startswith((b"HTTP/1.1 431 ", b"RESET"))
        client.close()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=30) as ok:
            assert ok.status == 200  # ordinary headers still pass


def test_arrival_errors_are_never_echoed_with_the_key(engine, tmp_path, capfd):
    settings = {"arrivals_rules": RULES, "arrivals_api_key": KEY}
    with webhook(engine, tmp_path, **settings) as (base, _):
        post(base, {"events": []}, key="a-guessed-key-4411")
    captured = capfd.readouterr()
    logged = captured.out + captured.err
    assert "arrivals.refused" in logged and "a-guessed-key-4411" not in logged
    assert json.dumps(KEY) not in logged


class Roomy(DeadlineProtocol):
    request_seconds, max_connections = 300.0, 100


def test_a_big_batch_sent_in_one_piece_is_not_taken_for_big_headers(engine, tmp_path):
    """Counting every byte of the first read once answered 431 to a 38 KB arrivals batch
    whose body came in the same piece as its headers."""
    at = datetime.now(UTC).isoformat()
    batch = [{**arrival(f"big-{i}", at), "phone": f"+8210{30000000 + i}"} for i in range(300)]
    body = json.dumps({"events": batch}).encode()
    head = (
        f"POST /arrivals HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"X-Api-Key: {KEY}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    assert len(body) > 32 * 1024
    settings = {"arrivals_rules": RULES, "arrivals_api_key": KEY}
    with serving(engine, tmp_path, Roomy, **settings) as port:
        client = socket.create_connection(("127.0.0.1", port), timeout=60)
        client.sendall(head + body)  # one write: headers and body together
        answer = read_all(client)
        client.close()
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["welcomed"] == 300


def test_a_signature_check_that_cannot_run_refuses_the_receipt(engine, tmp_path, monkeypatch):
    """The SDK's signer failing in a way nobody foresaw (a TypeError: ``compare_digest``
    once raised one for a header of non-ASCII bytes) proves nothing: the receipt is
    refused (403) and nothing is stored, a forged one as much as an honest one. Once the
    check runs again, the same honest receipt is taken: the 403 was the check's."""
    sent_campaign(engine, "intl", ["SM1"])
    fields = {"MessageSid": "SM1", "MessageStatus": "delivered"}
    honest = RequestValidator(AUTH).compute_signature(PUBLIC, fields)

    def broken(self, *args, **kwargs):
        raise TypeError("the signer broke")

    with webhook(engine, tmp_path) as (base, _):
        with monkeypatch.context() as patched:
            patched.setattr(RequestValidator, "compute_signature", broken)
            assert twilio_post(base, fields, signature="forged")[0] == 403
            assert twilio_post(base, fields, signature=honest)[0] == 403
            assert inbox(engine) == []
        assert twilio_post(base, fields, signature=honest)[0] == 200
    assert inbox(engine) == [("pending", "delivered")]


def test_a_host_no_url_parser_takes_gets_a_403_not_an_accepted_receipt(engine, tmp_path):
    """The signed URL is worked out from the request's, whose host comes from the Host
    header: one no URL parser takes ("[") leaves the signature unprovable, so a receipt
    with it is refused and stored nowhere, never taken on trust."""
    sent_campaign(engine, "intl", ["SM1"])
    fields = {"MessageSid": "SM1", "MessageStatus": "undelivered"}
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": "x"}
    form = urllib.parse.urlencode(fields).encode()
    with webhook(engine, tmp_path) as (base, _):
        for host in ("[", "x:abc"):
            status, _ = call(f"{base}/receipts/intl", form, {**headers, "Host": host})
            assert status == 403, host
    assert inbox(engine) == []
