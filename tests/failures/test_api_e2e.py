"""``loa api`` end to end on PostgreSQL and Redis, as a province's system would use it:
accounts made with ``loa users``, a plan of a large list followed as a job, a launch
over HTTP that a ``loa worker`` sends to the end (each recipient accepted by the local
eSMS gateway once), the same launch again adding nothing, another list under the same id
refused with nothing added, and a pause by an operator that the report names."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import requests

from tests.conftest import REDIS_URL
from tests.failures.test_channels_e2e import listening
from tests.fake_gateway import fake_gateway
from tests.rig import Rig, as_national, free_port, national

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]

PASSWORD = "ruộng lúa xanh mướt chiều thu"
#: Bounds a hang, never the result.
FINAL_SECONDS = 300
RECIPIENTS = 400
PLANNED = 30_000


@pytest.fixture
def rig(tmp_path, postgres_url, redis_namespace):
    with fake_gateway() as sms:
        rig = Rig(
            workdir=tmp_path,
            database_url=postgres_url,
            redis_url=REDIS_URL,
            namespace=redis_namespace,
            gateway_url=sms.url,
            settings={"batch_size": 50},
        )
        rig.sms = sms
        rig.loa("db", "upgrade")
        port = free_port()
        api = subprocess.Popen(
            [sys.executable, "-m", "scripts", "api", "--port", str(port)],
            cwd=tmp_path,
            env=rig.env,
            stdout=subprocess.DEVNULL,
            stderr=open(tmp_path / "api.log", "w"),  # noqa: SIM115
        )
        try:
            rig.base = f"http://127.0.0.1:{port}"
            listening(port, api, "/openapi.json")
            yield rig
        finally:
            rig.stop_all()
            api.terminate()
            api.wait(timeout=30)


def account(rig: Rig, name: str, role: str) -> str:
    """``loa users add`` then ``loa users token``: the account's API token."""
    subprocess.run(
        [sys.executable, "-m", "scripts", "users", "add", name, "--role", role,
         "--password-stdin"],
        input=PASSWORD + "\n", text=True, cwd=rig.workdir, env=rig.env, check=True,
        capture_output=True,
    )  # fmt: skip
    return json.loads(rig.loa("users", "token", name, "--json").stdout)["token"]


def files(spec: Path, rows: str) -> dict:
    return {"spec": (spec.name, spec.read_bytes()), "recipients": ("danh-sach.csv", rows)}


def spec_file(workdir: Path) -> Path:
    spec = workdir / "api.toml"
    spec.write_text(
        'id = "qua-api"\nname = "Cài Bluezone qua API"\ncategory = "public_service"\n'
        'brandname = "NinhThuan"\nprovider = "fake"\nvalidity = "6h"\n'
        '[messages]\nvi = "Đề nghị cài Bluezone https://bluezone.gov.vn"\n'
        "[prices]\ndefault = 800\n",
        encoding="utf-8",
    )
    return spec


def rows(count: int, start: int = 0) -> str:
    return "phone,district\n" + "".join(
        f"{national(i)},Phan Rang\n" for i in range(start, start + count)
    )


def followed(rig: Rig, token: str, job: dict) -> tuple[dict, list[int]]:
    """The job once it ended, and the ``done`` figures seen on the way."""
    seen, deadline = [], time.monotonic() + FINAL_SECONDS
    while job["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.2)  # polling the job resource, as a client does; its state decides
        job = get(rig, token, f"/v1/jobs/{job['id']}")
        seen.append(job["done"])
    return job, seen


def get(rig: Rig, token: str, path: str) -> dict:
    answer = requests.get(rig.base + path, headers=bearer(token), timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_campaign_planned_launched_and_sent_over_http(rig):
    operator = account(rig, "trung-tam-dieu-hanh", "operator")
    auditor = account(rig, "so-tt-tt", "auditor")
    spec = spec_file(rig.workdir)

    # A large plan is a job: answered at once, followed to its end, nothing recorded.
    answer = requests.post(rig.base + "/v1/plans", headers=bearer(operator),
                           files=files(spec, rows(PLANNED) + "12345,Phan Rang\n"),
                           timeout=60)  # fmt: skip
    assert answer.status_code == 202 and answer.headers["location"].startswith("/v1/jobs/")
    plan, seen = followed(rig, operator, answer.json())
    assert plan["state"] == "done", plan
    assert plan["result"]["rows_read"] == PLANNED + 1 and plan["result"]["planned"] == PLANNED
    assert seen == sorted(seen) and plan["done"] == PLANNED + 1
    rejects = requests.get(rig.base + plan["file"], headers=bearer(operator), timeout=30)
    assert list(csv.reader(io.StringIO(rejects.text)))[1][:2] == [str(PLANNED + 2), "12345"]
    assert requests.get(rig.base + plan["file"], headers=bearer(auditor)).status_code == 404
    assert rig.rows("SELECT count(*) FROM messages") == [(0,)]

    # The launch, twice at once: one job.
    listing = rows(RECIPIENTS)
    first = requests.post(rig.base + "/v1/launches", headers=bearer(operator),
                          files=files(spec, listing), timeout=60).json()  # fmt: skip
    again = requests.post(rig.base + "/v1/launches", headers=bearer(operator),
                          files=files(spec, listing), timeout=60).json()  # fmt: skip
    launched, _ = followed(rig, operator, first)
    assert launched["state"] == "done", launched
    assert launched["result"]["launched"] and launched["result"]["plan"]["planned"] == RECIPIENTS
    if again["id"] != first["id"]:  # the first had ended: a second launch adds nothing
        assert followed(rig, operator, again)[0]["result"]["launched"] is False

    worker = rig.start_worker(processes=1, threads=8)
    paused = requests.post(rig.base + "/v1/campaigns/qua-api/pause", headers=bearer(operator))
    assert paused.status_code in (200, 409)  # 409: it had already completed
    requests.post(rig.base + "/v1/campaigns/qua-api/resume", headers=bearer(operator))
    deadline = time.monotonic() + FINAL_SECONDS
    while get(rig, auditor, "/v1/campaigns/qua-api")["statuses"].get("queued", 0) + get(
        rig, auditor, "/v1/campaigns/qua-api"
    )["statuses"].get("sending", 0):
        assert time.monotonic() < deadline and worker.poll() is None
        time.sleep(0.5)  # polling the outcome; the status decides
    shown = get(rig, auditor, "/v1/campaigns/qua-api")
    assert shown["recipients"] == RECIPIENTS and shown["statuses"].get("sent") == RECIPIENTS
    accepted = Counter(as_national(p) for _, p, _, a in rig.sms.received() if a == "100")
    assert len(accepted) == RECIPIENTS and max(accepted.values()) == 1

    # The same launch once more adds nothing; another list under the id is refused.
    same = requests.post(rig.base + "/v1/launches", headers=bearer(operator),
                         files=files(spec, listing)).json()  # fmt: skip
    assert followed(rig, operator, same)[0]["result"]["launched"] is False
    other = requests.post(rig.base + "/v1/launches", headers=bearer(operator),
                          files=files(spec, rows(5, start=10_000))).json()  # fmt: skip
    refused, _ = followed(rig, operator, other)
    assert refused["state"] == "failed" and refused["problem"]["status"] == 409
    assert rig.rows("SELECT count(*) FROM messages") == [(RECIPIENTS,)]

    # Who launched and who paused, in the log and in the report.
    by = {row[0]["by"] for row in rig.rows(
        "SELECT detail FROM events WHERE source IN ('planner', 'operator') AND "
        "campaign_id = 'qua-api'") if "by" in row[0]}  # fmt: skip
    assert by == {"api:trung-tam-dieu-hanh"}
    ordered = requests.post(rig.base + "/v1/campaigns/qua-api/reports", headers=bearer(auditor),
                            json={"format": "html"}).json()  # fmt: skip
    made, _ = followed(rig, auditor, ordered)
    assert made["state"] == "done" and made["result"]["launched_by"] == "api:trung-tam-dieu-hanh"
    page = requests.get(rig.base + made["file"], headers=bearer(auditor)).text
    assert "api:trung-tam-dieu-hanh" in page
    if paused.status_code == 200:  # the pause came before the last message went
        assert [a["action"] for a in made["result"]["actions"]] == ["paused", "resumed"]
        assert "tạm dừng (bởi api:trung-tam-dieu-hanh)" in page
    assert national(0) not in page and national(0)[1:] not in page  # masked


def test_each_role_against_a_running_loa_api(rig):
    """The role table through the real process on PostgreSQL and Redis: what each role
    may do, and every refusal a problem that changes nothing."""
    tokens = {role: account(rig, f"r-{role}", role) for role in ("auditor", "operator", "admin")}
    spec = spec_file(rig.workdir)
    first = requests.post(rig.base + "/v1/launches", headers=bearer(tokens["operator"]),
                          files=files(spec, rows(20)), timeout=60).json()  # fmt: skip
    assert followed(rig, tokens["operator"], first)[0]["state"] == "done"
    number = national(3)
    table = [  # method, path, body, (auditor, operator, admin)
        ("GET", "/v1/campaigns", None, (200, 200, 200)),
        ("GET", "/v1/campaigns/qua-api", None, (200, 200, 200)),
        ("GET", "/v1/campaigns/khong-co", None, (404, 404, 404)),
        ("POST", "/v1/campaigns/qua-api/resume", None, (403, 200, 200)),
        ("POST", "/v1/plans", "files", (403, 202, 202)),
        ("GET", f"/v1/recipients/{number}/history", None, (200, 200, 200)),
        ("POST", "/v1/suppressions/dnc", {"numbers": ["0912999999"]}, (403, 200, 200)),
        ("DELETE", "/v1/suppressions/dnc/0912999999", None, (403, 204, 404)),
        ("POST", "/v1/providers/fake/resume", None, (403, 409, 409)),
        ("POST", "/v1/campaigns/qua-api/reports", {"format": "csv"}, (202, 202, 202)),
        ("POST", "/v1/audit/verify", None, (202, 202, 202)),
        ("GET", "/v1/audit/checkpoints", None, (200, 200, 200)),
        ("GET", "/v1/jobs", None, (200, 200, 200)),
    ]
    before = rig.rows("SELECT count(*) FROM events")
    for method, path, body, wanted in table:
        for role, status in zip(("auditor", "operator", "admin"), wanted, strict=True):
            sent = {"files": files(spec, rows(3))} if body == "files" else {"json": body}
            answer = requests.request(method, rig.base + path, headers=bearer(tokens[role]),
                                      timeout=60, **sent)  # fmt: skip
            assert answer.status_code == status, (method, path, role, answer.text)
            if status >= 400:
                assert answer.headers["content-type"].startswith("application/problem+json")
                assert "Traceback" not in answer.text
            if status == 403:  # refused: nothing written, not even an event
                assert rig.rows("SELECT count(*) FROM events") == before, (path, role)
            before = rig.rows("SELECT count(*) FROM events")
