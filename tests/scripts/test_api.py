"""``loa api`` over real HTTP (uvicorn on a free port) on both ledgers: each role's allowed
and refused calls (a table: role × route -> status), problem details for every error, a
change made over HTTP named in the log by its account, and the OpenAPI description."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from pydantic import SecretStr

from campaigns.recipients import ListRow
from ledger.api import accounts
from ledger.schema import events
from ledger.summary import summarise
from scripts.api.app import make_app
from tests.helpers import record
from tests.rig import serving
from tests.worker.test_dispatch import SPEC
from worker.runtime import Runtime
from worker.settings import Settings

PASSWORD = "ruộng lúa xanh mướt chiều thu"


@contextmanager
def api(engine, tmp_path) -> Iterator[str]:
    url = SecretStr(str(engine.url.render_as_string(hide_password=False)))
    settings = Settings(
        database_url=url, var_dir=tmp_path, providers={"sandbox": {"type": "sandbox"}}
    )
    runtime = Runtime(settings, engine=engine)
    try:
        with serving(make_app(runtime, sends=False)) as base:
            yield base
    finally:
        runtime.close()


EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def call(
    url: str, token: str | None = None, method: str = "GET", body: Any = None
) -> tuple[int, Any, str]:
    """``method`` ``url`` as ``token``'s holder; ``body``: JSON, or ``FILES`` (multipart).
    Returns the status, the body read as JSON (None when empty) and its content type."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if body is FILES:
        answer = requests.request(method, url, headers=headers, files=upload(), timeout=30)
    else:
        answer = requests.request(method, url, headers=headers, json=body, timeout=30)
    return (
        answer.status_code,
        answer.json() if answer.content else None,
        answer.headers.get("content-type", ""),
    )


FILES = object()  # the table's mark: the example campaign and its list, as a multipart


def upload(spec: bytes | None = None, rows: bytes | None = None) -> dict[str, Any]:
    return {
        "spec": ("bluezone.toml", spec or (EXAMPLES / "bluezone.toml").read_bytes()),
        "recipients": ("danh-sach.csv", rows or b"phone\n0912345678\n0987654321\n"),
    }


@pytest.fixture
def tokens(engine) -> dict[str, str]:
    rows = [ListRow(i + 2, f"09123{i:05d}", ()) for i in range(5)]
    record(engine, SPEC, rows)
    found = {}
    for role in accounts.ROLES:
        accounts.add_user(engine, f"a-{role}", role, PASSWORD)
        found[role] = accounts.issue_token(engine, f"a-{role}")[1]
    return found


C = f"/v1/campaigns/{SPEC.id}"
#: (method, route) -> the status each role gets: auditor, operator, admin.
TABLE = [
    ("GET", "/v1/campaigns", None, (200, 200, 200)),
    ("GET", C, None, (200, 200, 200)),
    ("GET", "/v1/campaigns/no-such-campaign", None, (404, 404, 404)),
    ("GET", "/v1/providers", None, (200, 200, 200)),
    ("GET", "/v1/recipients/0912300001/history", None, (200, 200, 200)),
    ("GET", "/v1/recipients/12345/history", None, (422, 422, 422)),
    ("POST", f"{C}/pause", None, (403, 200, 200)),
    ("POST", f"{C}/explode", None, (404, 404, 404)),
    ("POST", "/v1/providers/sandbox/resume", None, (403, 409, 409)),
    ("POST", "/v1/providers/nowhere/resume", None, (403, 404, 404)),
    ("GET", "/v1/jobs", None, (200, 200, 200)),
    ("GET", "/v1/jobs/job_none", None, (404, 404, 404)),
    ("POST", "/v1/plans", FILES, (403, 202, 202)),
    ("POST", f"{C}/reports", {"format": "csv"}, (202, 202, 202)),
    ("POST", "/v1/campaigns/no-such-campaign/reports", {}, (404, 404, 404)),
    ("GET", "/v1/suppressions", None, (200, 200, 200)),
    ("GET", "/v1/suppressions/dnc", None, (200, 200, 200)),
    ("GET", "/v1/suppressions/nowhere", None, (422, 422, 422)),
    ("POST", "/v1/suppressions/dnc", {"numbers": ["0912999999"]}, (403, 200, 200)),
    ("DELETE", "/v1/suppressions/dnc/0912999999", None, (403, 204, 404)),
    ("POST", "/v1/audit/verify", None, (202, 202, 202)),
    ("GET", "/v1/audit/checkpoints", None, (200, 200, 200)),
    ("POST", "/v1/audit/checkpoints", None, (409, 409, 409)),  # no signing key here
    ("POST", "/v1/audit/exports", {"campaign": SPEC.id}, (409, 409, 409)),
]


def test_each_role_gets_what_its_role_may_and_every_refusal_is_a_problem(engine, tmp_path, tokens):
    with api(engine, tmp_path) as base:
        for method, route, sent, wanted in TABLE:
            for role, status in zip(accounts.ROLES, wanted, strict=True):
                if method == "POST" and route.endswith("/pause") and status == 200:
                    call(f"{base}{C}/resume", tokens["operator"], "POST")  # back to running
                got, body, kind = call(base + route, tokens[role], method, sent)
                assert got == status, (method, route, role, body)
                if got >= 400:
                    assert kind.startswith("application/problem+json"), (route, kind)
                    assert body["status"] == got and body["title"] and body["detail"]
                    assert "Traceback" not in json.dumps(body)


@pytest.mark.parametrize(
    "token", [None, "loat_nothing", "Bearer", "x" * 300], ids=["none", "unknown", "odd", "long"]
)
def test_without_a_valid_token_every_route_is_401_and_nothing_changes(
    engine, tmp_path, tokens, token
):
    with api(engine, tmp_path) as base:
        for method, route, sent, _ in TABLE:
            if "explode" in route:
                continue  # no such route: 404 whoever asks
            got, body, kind = call(base + route, token, method, sent)
            assert got == 401 and kind.startswith("application/problem+json"), route
            assert body["status"] == 401
    assert summarise(engine, SPEC.id).progress_state == "running"


def test_a_revoked_or_expired_token_or_a_disabled_account_is_401(engine, tmp_path, tokens):
    with api(engine, tmp_path) as base:
        assert call(base + C, tokens["auditor"])[0] == 200
        accounts.disable(engine, "a-auditor")
        assert call(base + C, tokens["auditor"])[0] == 401
        token_id, text, _ = accounts.issue_token(engine, "a-operator")
        accounts.revoke_token(engine, token_id)
        assert call(base + C, text)[0] == 401


def test_a_pause_over_http_is_the_account_s_in_the_log(engine, tmp_path, tokens):
    with api(engine, tmp_path) as base:
        status, body, _ = call(f"{base}{C}/pause", tokens["operator"], "POST")
        assert (status, body["changed"], body["already"]) == (200, 1, False)
        again = call(f"{base}{C}/pause", tokens["operator"], "POST")[1]
        assert (again["changed"], again["already"]) == (0, True)
        shown = call(base + C, tokens["auditor"])[1]
        assert shown["state"] == "paused" and shown["waiting_for"]["reason"] == "paused"
        assert shown["waiting_for"]["lifted_by_api"] == f"POST {C}/resume"
        # What `loa campaign status --json` says: per provider, rate, time left, intake.
        assert shown["providers"]["sandbox"]["queued"] == 5 and shown["by_provider"]
        assert {"rate_per_second", "eta_seconds", "finishes_at", "rows_read"} <= set(shown)
    with engine.connect() as conn:
        last = conn.scalar(sa.select(events.c.detail).order_by(events.c.id.desc()).limit(1))
    assert last["state"] == "paused" and last["by"] == "api:a-operator"


def test_the_openapi_description_names_every_route(engine, tmp_path, tokens):
    with (
        api(engine, tmp_path) as base,
        urllib.request.urlopen(base + "/openapi.json", timeout=10) as answer,
    ):
        described = json.loads(answer.read())
    paths = described["paths"]
    assert {"/v1/campaigns", "/v1/campaigns/{campaign_id}", "/v1/providers"} <= set(paths)
    assert described["info"]["title"] == "Loa"


def test_one_number_s_history_is_masked_for_an_auditor_and_whole_for_an_operator(
    engine, tmp_path, tokens
):
    with api(engine, tmp_path) as base:
        route = f"{base}/v1/recipients/0912300001/history"
        _, audited, _ = call(route, tokens["auditor"])
        _, operated, _ = call(route, tokens["operator"])
        _, bad, _ = call(f"{base}/v1/recipients/12345/history", tokens["auditor"])
    assert audited["masked"] and audited["number"] != "+84912300001"
    assert "*" in audited["number"] and "84912300001" not in json.dumps(audited)
    assert (operated["masked"], operated["number"]) == (False, "+84912300001")
    assert [m["campaign"] for m in audited["messages"]] == [SPEC.id]
    assert audited["messages"][0]["status"] == "queued"
    assert bad["errors"][0]["where"] == "path.number" and "not a textable" in bad["detail"]


def post_json(url: str, body: dict) -> tuple[int, dict, dict]:
    answer = requests.post(url, json=body, timeout=30)
    return answer.status_code, answer.json(), answer.headers


def test_a_person_logs_in_for_a_session_and_guessing_is_slowed(engine, tmp_path, tokens):
    """A password gives a 12-hour token like any; wrong ones are slowed per account and
    per address (429 with Retry-After before the password is even checked), the right
    one then refused as well until the wait is over; a bad body is a 422 naming it."""
    with api(engine, tmp_path) as base:
        status, session, _ = post_json(
            f"{base}/v1/sessions", {"name": "a-auditor", "password": PASSWORD}
        )
        assert status == 200 and session["role"] == "auditor"
        assert call(base + C, session["token"])[0] == 200
        answers = [
            post_json(f"{base}/v1/sessions", {"name": "a-operator", "password": f"guess {n}"})
            for n in range(6)
        ]
        assert [a[0] for a in answers] == [401] * 5 + [429]
        assert int(answers[-1][2]["retry-after"]) > 0
        right = post_json(f"{base}/v1/sessions", {"name": "a-operator", "password": PASSWORD})
        assert right[0] == 429  # slowed: not even checked
        status, body, _ = post_json(f"{base}/v1/sessions", {"name": "a-admin"})
        assert status == 422 and body["errors"][0]["where"] == "body.password"


def test_the_states_the_api_takes_are_the_list_s():
    from typing import get_args

    from ledger.listing import STATES
    from scripts.api.campaigns import ShownState

    assert set(get_args(ShownState)) == set(STATES)


def test_one_number_s_history_is_paged_newest_campaign_first(engine, tmp_path, tokens):
    for n in (2, 3):  # two more campaigns texting the same number
        record(engine, SPEC.model_copy(update={"id": f"later-{n}"}), [ListRow(2, "0912300001", ())])
    with api(engine, tmp_path) as base:
        route = f"{base}/v1/recipients/0912300001/history"
        first = call(f"{route}?limit=2", tokens["auditor"])[1]
        rest = call(f"{route}?limit=2&offset={first['next']}", tokens["auditor"])[1]
    shown = [m["campaign"] for m in first["messages"] + rest["messages"]]
    assert len(first["messages"]) == 2 and first["next"] == 2 and rest["next"] is None
    assert sorted(shown) == sorted([SPEC.id, "later-2", "later-3"]) and shown[-1] == SPEC.id


def test_the_docs_pages_load_nothing_from_outside(engine, tmp_path, tokens):
    """The API lives on an internal network: its docs pages' scripts come from itself."""
    import re

    with api(engine, tmp_path) as base:
        for page in ("/docs", "/redoc"):
            html = requests.get(base + page, timeout=10).text
            sources = re.findall(r'(?:src|href)="([^"]+)"', html)
            assert sources and all(not s.startswith(("http:", "https:", "//")) for s in sources)
            for source in sources:
                assert requests.get(base + source, timeout=10).status_code == 200, source


def test_another_api_process_pause_shows_at_once(engine, tmp_path, tokens):
    """Two API processes on one ledger: a pause made through one is what the other
    serves next, though it counted the campaign a moment before (it served "running" for
    up to 30 s)."""
    import time

    from scripts.api import standing

    auditor = {"Authorization": f"Bearer {tokens['auditor']}"}
    operator = {"Authorization": f"Bearer {tokens['operator']}"}
    with api(engine, tmp_path / "a") as one, api(engine, tmp_path / "b") as other:
        assert requests.get(other + C, headers=auditor, timeout=30).json()["state"] == "running"
        paused = requests.post(f"{one}{C}/pause", headers=operator, timeout=30)
        assert paused.status_code == 200
        time.sleep(standing.FRESH + 0.1)  # past the second all callers share
        seen = requests.get(other + C, headers=auditor, timeout=30).json()
        assert seen["state"] == "paused", seen["state"]


def test_an_account_holds_at_most_twenty_live_sessions(engine, tmp_path, tokens, monkeypatch):
    """A login is a token and an event: a script logging in in a loop is stopped at the
    cap, and a logout makes room."""
    from scripts.api import sessions

    monkeypatch.setattr(sessions, "SESSIONS", 2)
    with api(engine, tmp_path) as base:
        login = {"name": "a-auditor", "password": PASSWORD}
        first, second, third = (post_json(f"{base}/v1/sessions", login) for _ in range(3))
        assert [first[0], second[0], third[0]] == [200, 200, 429]
        out = requests.delete(f"{base}/v1/sessions", headers={
            "Authorization": f"Bearer {first[1]['token']}"})  # fmt: skip
        assert out.status_code == 204
        assert post_json(f"{base}/v1/sessions", login)[0] == 200
