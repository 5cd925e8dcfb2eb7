"""``POST /arrivals`` on a real webhook server: the key checked first, bad requests
named with their 4xx, a batch ingested like a file's, a retried POST welcoming nobody."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from ledger.schema import messages
from tests.campaigns.test_arrivals import RULES
from tests.worker.test_webhook import call, webhook

KEY = "arrivals-key-for-tests"


def post(base: str, body: object, key: str | None = KEY, kind: str = "application/json"):
    headers = {"Content-Type": kind}
    if key is not None:
        headers["X-Api-Key"] = key
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    status, text = call(f"{base}/arrivals", data, headers)
    return status, json.loads(text)


def events(count: int) -> list[dict[str, str]]:
    at = (datetime.now(UTC) - timedelta(minutes=2)).isoformat()
    return [
        {"event_id": f"http-{i}", "phone": f"+8210{20000000 + i}", "arrived_at": at, "area": "589"}
        for i in range(count)
    ]


def test_a_batch_of_arrivals_is_taken_once(engine, tmp_path):
    settings = {"arrivals_rules": RULES, "arrivals_api_key": KEY, "arrivals_max_batch": 5}
    with webhook(engine, tmp_path, **settings) as (base, _):
        batch = [
            *events(3),
            {"event_id": "http-bad", "phone": "chưa có", "arrived_at": "x", "area": "589"},
        ]
        status, taken = post(base, {"events": batch})
        assert status == 200, taken
        assert (taken["read"], taken["welcomed"]) == (4, 3)
        assert taken["rejected"] == [{"index": 3, "reason": "bad_number", "field": "phone"}]

        status, again = post(base, {"events": batch})  # the caller retried
        assert status == 200 and again["welcomed"] == 0
        assert again["skipped_by_reason"] == {"repeated_event": 3}

        refusals = {
            "no key": (post(base, batch, key=None), 401),
            "wrong key": (post(base, batch, key="guess"), 403),
            "not JSON": (post(base, b"event_id=1", kind="application/x-www-form-urlencoded"), 415),
            "bad JSON": (post(base, b"{not json"), 400),
            "no events": (post(base, {"events": []}), 400),
            "too many": (post(base, events(6)), 413),
        }
        for case, ((status, answer), expected) in refusals.items():
            assert status == expected and answer["error"], (case, status, answer)
    with engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(messages)) == 3


def test_without_rules_the_route_is_not_there(engine, tmp_path):
    with webhook(engine, tmp_path) as (base, _):
        status, answer = post(base, {"events": events(1)})
    assert status == 404 and "LOA_ARRIVALS_RULES" in answer["error"]
