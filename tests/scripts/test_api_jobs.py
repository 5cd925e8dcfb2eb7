"""``loa api``'s long work and uploads over real HTTP, on both ledgers: a plan and a
launch as jobs (refused as the CLI refuses, naming the file as it was sent; idempotent
by the campaign id; another list refused with nothing added), uploads bounded (413, with
and without a length), a job only its account sees, a job whose process died shown
interrupted, a report and an export downloaded, suppressions kept and masked."""

from __future__ import annotations

import io
import stat
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from dramatiq.brokers.stub import StubBroker
from pydantic import SecretStr

from ledger.api import accounts, jobs
from ledger.schema import messages
from scripts.api.app import make_app
from tests.rig import serving
from worker.queues.broker import use_broker
from worker.runtime import Runtime
from worker.settings import Settings

PASSWORD = "ruộng lúa xanh mướt chiều thu"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SPEC = (EXAMPLES / "bluezone.toml").read_bytes()
ROWS = b"phone,district\n0912345678,Phan Rang\n12345,Ninh Hai\n0987654321,Ninh Son\n"


@contextmanager
def api(engine, tmp_path, **more: Any) -> Iterator[str]:
    url = SecretStr(str(engine.url.render_as_string(hide_password=False)))
    settings = Settings(database_url=url, var_dir=tmp_path,
                        providers={"sandbox": {"type": "sandbox"}}, **more)  # fmt: skip
    runtime = Runtime(settings, engine=engine)
    # Nobody sends here (sends=False), but a launch still queues its batches: into an
    # in-memory broker of this test's, whatever the tests before left installed.
    use_broker(StubBroker(), settings)
    app = make_app(runtime, sends=False)
    try:
        with serving(app) as base:
            yield base
    finally:
        app.state.jobs.close()
        runtime.close()


@pytest.fixture
def tokens(engine) -> dict[str, str]:
    found = {}
    for role in accounts.ROLES:
        accounts.add_user(engine, f"a-{role}", role, PASSWORD)
        found[role] = accounts.issue_token(engine, f"a-{role}")[1]
    found["other"] = (
        accounts.add_user(engine, "b-operator", "operator", PASSWORD)
        and (accounts.issue_token(engine, "b-operator")[1])
    )
    return found


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def files(spec: bytes = SPEC, rows: bytes = ROWS, name: str = "danh-sach.csv") -> dict:
    return {"spec": ("bluezone.toml", spec), "recipients": (name, rows)}


def ended(base: str, token: str, answer: requests.Response) -> dict:
    """The job ``answer`` started, once it has ended (polled as a client does)."""
    assert answer.status_code == 202, answer.text
    job, deadline = answer.json(), time.monotonic() + 120
    while job["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, job  # bounds a hang; the state decides
        time.sleep(0.05)
        job = requests.get(f"{base}/v1/jobs/{job['id']}", headers=bearer(token)).json()
    return job


def test_a_plan_is_a_job_whose_result_adds_up_and_whose_rejects_only_its_account_reads(
    engine, tmp_path, tokens
):
    with api(engine, tmp_path) as base:
        answer = requests.post(f"{base}/v1/plans", headers=bearer(tokens["operator"]),
                               files=files())  # fmt: skip
        assert answer.headers["location"] == f"/v1/jobs/{answer.json()['id']}"
        job = ended(base, tokens["operator"], answer)
        assert job["state"] == "done" and job["kind"] == "plan", job
        result = job["result"]
        assert (result["rows_read"], result["planned"], result["rejected"]) == (3, 2, 1)
        assert (
            result["list"] == "danh-sach.csv" and result["campaign"] == "bluezone-ninh-thuan-2020"
        )
        download = requests.get(base + job["file"], headers=bearer(tokens["operator"]))
        assert download.status_code == 200 and "12345" in download.text
        for other in ("other", "auditor"):  # another account's job is not theirs to see
            assert (
                requests.get(base + job["file"], headers=bearer(tokens[other])).status_code == 404
            )
            seen = requests.get(f"{base}/v1/jobs", headers=bearer(tokens[other])).json()
            assert job["id"] not in [j["id"] for j in seen["jobs"]]
        assert requests.get(base + job["file"], headers=bearer(tokens["admin"])).status_code == 200
    with engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(messages)) == 0
    kept = Path(job_file(engine, job["id"]))
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert stat.S_IMODE(kept.parent.stat().st_mode) == 0o700
    assert not list((tmp_path / "api" / "uploads").iterdir())  # the uploads are gone


def job_file(engine, job_id: str) -> str:
    found = jobs.get(engine, job_id)
    assert found is not None and found.file is not None
    return found.file


@pytest.mark.parametrize(
    ("sent", "said"),
    [
        (files(spec=b"id = 'x'\n"), "bluezone.toml"),
        (files(rows=b"ten,quan\nAn,Phan Rang\n"), "danh-sach.csv"),
        (files(rows=b"phone\n0912345678\n", name="../../../etc/danh-sach.csv"), None),
        (files(spec=SPEC.replace(b'provider = "sandbox"', b'provider = "nowhere"')), "nowhere"),
        (files(spec=SPEC.replace(b'vi = "', b'vi = "{ten} ')), "danh-sach.csv"),
    ],
    ids=["spec", "no-phone-column", "sly-name", "unknown-provider", "field-without-column"],
)
def test_bad_input_is_a_422_naming_the_file_as_sent_and_nothing_stays(
    engine, tmp_path, tokens, sent, said
):
    with api(engine, tmp_path) as base:
        answer = requests.post(f"{base}/v1/launches", headers=bearer(tokens["operator"]),
                               files=sent)  # fmt: skip
    if said is None:  # a name with folders is the name alone: the list is read, launched
        assert answer.status_code == 202
        return
    problem = answer.json()
    assert answer.status_code == 422, problem
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert said in problem["detail"] and str(tmp_path) not in problem["detail"]
    assert "--" not in problem["detail"]  # the request's fields, not the CLI's options
    assert not list((tmp_path / "api" / "uploads").iterdir())
    with engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(messages)) == 0


def test_a_launch_is_idempotent_by_its_campaign_and_another_list_adds_nothing(
    engine, tmp_path, tokens
):
    token = tokens["operator"]
    with api(engine, tmp_path) as base:
        first = ended(base, token, requests.post(f"{base}/v1/launches", headers=bearer(token),
                                                 files=files()))  # fmt: skip
        again = ended(base, token, requests.post(f"{base}/v1/launches", headers=bearer(token),
                                                 files=files()))  # fmt: skip
        other = ended(base, token, requests.post(
            f"{base}/v1/launches", headers=bearer(token),
            files=files(rows=b"phone\n0911111111\n")))  # fmt: skip
    assert first["state"] == "done" and first["result"]["launched"] is True
    assert first["result"]["plan"]["planned"] == 2
    assert again["state"] == "done" and again["result"]["launched"] is False
    assert other["state"] == "failed" and other["problem"]["status"] == 409
    assert "another list" in other["problem"]["detail"]
    with engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(messages)) == 2


def test_two_open_jobs_of_one_key_are_one(engine):
    accounts.add_user(engine, "a", "operator", PASSWORD)
    made, created = jobs.open_job(engine, "launch", "a", "launch:x")
    same, again = jobs.open_job(engine, "launch", "a", "launch:x")
    assert created and not again and same.id == made.id
    jobs.start(engine, made.id, "here:1")
    jobs.finish(engine, made.id, {}, None, 0)
    fresh, created = jobs.open_job(engine, "launch", "a", "launch:x")
    assert created and fresh.id != made.id  # ended: the key is free again


def test_a_job_whose_runner_fell_silent_is_interrupted_when_looked_at(engine):
    accounts.add_user(engine, "a", "operator", PASSWORD)
    made, _ = jobs.open_job(engine, "launch", "a", "launch:y")
    jobs.start(engine, made.id, "gone:1")
    assert jobs.get(engine, made.id).state == "running"
    with engine.begin() as conn:  # the process that ran it was killed a while ago
        conn.execute(
            sa.update(jobs.jobs).values(heartbeat=jobs.now() - jobs.STALE - timedelta(seconds=1))
        )
    found = jobs.get(engine, made.id)
    assert found.state == "interrupted" and found.problem["status"] == 503
    assert jobs.open_job(engine, "launch", "a", "launch:y")[1]  # may be started again
    assert not jobs.finish(engine, made.id, {}, None, 0)  # states only move forward


@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
def test_an_upload_over_the_limit_is_413_and_leaves_nothing(engine, tmp_path, tokens, chunked):
    big = b"phone\n" + b"0912345678\n" * 2000
    with api(engine, tmp_path, api_max_upload=8192) as base:
        if chunked:  # no Content-Length: counted as it comes
            body = io.BytesIO(b"--x\r\nContent-Disposition: form-data; name=\"spec\"; "
                              b"filename=\"a.toml\"\r\n\r\n" + big + b"\r\n--x--\r\n")  # fmt: skip
            answer = requests.post(
                f"{base}/v1/launches", data=iter(lambda: body.read(1024), b""),
                headers={**bearer(tokens["operator"]),
                         "Content-Type": "multipart/form-data; boundary=x"},
            )  # fmt: skip
        else:
            answer = requests.post(f"{base}/v1/launches", headers=bearer(tokens["operator"]),
                                   files=files(rows=big))  # fmt: skip
        small = requests.post(
            f"{base}/v1/suppressions/dnc",
            headers=bearer(tokens["operator"]),
            json={"numbers": ["0912345678"] * 1000, "source": "x" * 2_000_000},
        )
    assert answer.status_code == 413, answer.text
    assert answer.json()["status"] == 413 and "LOA_API_MAX_UPLOAD" in answer.json()["detail"]
    assert small.status_code == 413  # a JSON body: a megabyte at most
    uploads = tmp_path / "api" / "uploads"
    assert not uploads.exists() or not list(uploads.iterdir())


def test_a_report_is_made_in_a_job_and_downloaded(engine, tmp_path, tokens):
    with api(engine, tmp_path) as base:
        ended(base, tokens["operator"], requests.post(
            f"{base}/v1/launches", headers=bearer(tokens["operator"]), files=files()))  # fmt: skip
        route = f"{base}/v1/campaigns/bluezone-ninh-thuan-2020/reports"
        made = ended(base, tokens["auditor"], requests.post(
            route, headers=bearer(tokens["auditor"]), json={"format": "csv"}))  # fmt: skip
        refused = ended(base, tokens["auditor"], requests.post(
            route, headers=bearer(tokens["auditor"]), json={"by": "no-such-column"}))  # fmt: skip
        download = requests.get(base + made["file"], headers=bearer(tokens["auditor"]))
    assert made["state"] == "done" and made["result"]["recipients"] == 2
    assert made["result"]["launched_by"] == "api:a-operator"
    assert download.headers["content-type"].startswith("text/csv")
    assert "bao-cao-bluezone-ninh-thuan-2020.csv" in download.headers["content-disposition"]
    assert len(download.text.strip().splitlines()) == 3  # a header and a row per recipient
    assert "0912345678" not in download.text and "84912345678" not in download.text
    assert refused["state"] == "failed" and refused["problem"]["status"] == 422
    assert "no-such-column" in refused["problem"]["detail"]


def test_suppressions_are_kept_masked_for_an_auditor_and_imported_in_a_job(
    engine, tmp_path, tokens
):
    operator, auditor = bearer(tokens["operator"]), bearer(tokens["auditor"])
    with api(engine, tmp_path) as base:
        route = f"{base}/v1/suppressions/opt_out"
        added = requests.post(
            route,
            headers=operator,
            json={"numbers": ["0912345678", "12345", "0912345678"], "source": "gọi 0987000111"},
        ).json()
        imported = ended(
            base,
            tokens["operator"],
            requests.post(
                f"{route}/import",
                headers=operator,
                files={"file": ("tu-choi.csv", b"number\n0987654321\nabc\n0912345678\n")},
            ),
        )
        refused = [line.split(",") for line in requests.get(
            base + imported["file"], headers=operator).text.splitlines()]  # fmt: skip
        audited = requests.get(route, headers=auditor).json()
        operated = requests.get(route, headers=operator).json()
        removed = requests.delete(f"{route}/0987654321", headers=operator)
        gone = requests.delete(f"{route}/0987654321", headers=operator)
        counts = requests.get(f"{base}/v1/suppressions", headers=auditor).json()
    assert (added["added"], added["already_listed"], added["repeated"]) == (1, 0, 1)
    assert [r["where"] for r in added["rejected"]] == ["body.numbers.1"]
    assert imported["state"] == "done" and imported["result"]["added"] == 1
    assert imported["result"]["rows_read"] == 3
    assert [row[:2] for row in refused] == [["row", "value"], ["3", "abc"]]
    assert audited["masked"] and all("*" in n["number"] for n in audited["numbers"])
    assert "0987000111" not in str(audited) and "0987000111" not in str(operated)
    assert {n["number"] for n in operated["numbers"]} == {"+84912345678", "+84987654321"}
    assert (removed.status_code, gone.status_code) == (204, 404)
    assert counts["opt_out"] == 1


def test_an_export_is_a_zip_an_auditor_checks_alone(engine, tmp_path, tokens):
    import base64
    import os

    key = base64.b64encode(os.urandom(32)).decode()
    with api(engine, tmp_path, audit_signing_key=key) as base:
        ended(base, tokens["operator"], requests.post(
            f"{base}/v1/launches", headers=bearer(tokens["operator"]), files=files()))  # fmt: skip
        made = ended(base, tokens["auditor"], requests.post(
            f"{base}/v1/audit/exports", headers=bearer(tokens["auditor"]),
            json={"campaign": "bluezone-ninh-thuan-2020"}))  # fmt: skip
        archive = requests.get(base + made["file"], headers=bearer(tokens["auditor"])).content
        listed = requests.get(f"{base}/v1/audit/checkpoints", headers=bearer(tokens["auditor"]))
    assert made["state"] == "done", made
    names = zipfile.ZipFile(io.BytesIO(archive)).namelist()
    assert any(name.endswith("verify_export.py") for name in names)
    assert listed.json()["checkpoints"] and listed.json()["verifier_key"]


def test_jobs_beyond_loa_api_jobs_wait_their_turn_and_a_stop_interrupts_them(engine, tmp_path):
    """With LOA_API_JOBS=1 a second job waits ``queued`` while the first runs; a stop
    then ends it ``interrupted`` at once (never left queued for ever), its uploads
    removed, and lets the running one finish."""
    import threading

    url = SecretStr(str(engine.url.render_as_string(hide_password=False)))
    runtime = Runtime(Settings(database_url=url, var_dir=tmp_path, api_jobs=1), engine=engine)
    app = make_app(runtime, sends=False)
    accounts.add_user(engine, "a", "operator", PASSWORD)
    release, began = threading.Event(), threading.Event()

    def slow(running):
        began.set()
        release.wait(60)
        return {"slow": True}

    runner = app.state.jobs
    uploads = runner.staging()
    try:
        first, _ = runner.submit("plan", "a", slow)
        second, _ = runner.submit("plan", "a", lambda running: {"quick": True}, uploads=uploads)
        assert began.wait(60)
        assert jobs.get(engine, first.id).state == "running"
        assert jobs.get(engine, second.id).state == "queued"  # one at a time: it waits
        runner.stop()
        stopped = jobs.get(engine, second.id)
        assert stopped.state == "interrupted" and stopped.problem["status"] == 503
        assert not uploads.exists()
        release.set()
    finally:
        release.set()
        runner.close()  # waits for the running one
        runtime.close()
    assert jobs.get(engine, first.id).result == {"slow": True}


def test_a_second_operator_launching_the_same_campaign_follows_the_first_s_job(
    engine, tmp_path, tokens
):
    import hashlib

    sent = hashlib.sha256(hashlib.sha256(SPEC).digest() + hashlib.sha256(ROWS).digest())
    key = f"launch:bluezone-ninh-thuan-2020:{sent.hexdigest()[:32]}"
    first, _ = jobs.open_job(engine, "launch", "a-operator", key)
    with api(engine, tmp_path) as base:
        answer = requests.post(f"{base}/v1/launches", headers=bearer(tokens["other"]),
                               files=files())  # fmt: skip
        other = requests.post(f"{base}/v1/launches", headers=bearer(tokens["other"]),
                              files=files(rows=b"phone\n0911111111\n"))  # fmt: skip
        shown = requests.get(f"{base}/v1/jobs/{first.id}", headers=bearer(tokens["other"]))
        plan = requests.post(f"{base}/v1/plans", headers=bearer(tokens["operator"]),
                             files=files()).json()  # fmt: skip
        not_theirs = requests.get(f"{base}/v1/jobs/{plan['id']}", headers=bearer(tokens["other"]))
    assert answer.status_code == 202 and answer.json()["id"] == first.id
    assert other.status_code == 202 and other.json()["id"] != first.id  # not silently dropped
    assert shown.status_code == 200 and shown.json()["account"] == "a-operator"
    assert not_theirs.status_code == 404  # a plan (its rejects) stays its account's


def test_what_a_killed_api_process_left_is_removed_when_the_next_one_starts(engine, tmp_path):
    import os

    from scripts.api.runner import JobRunner

    accounts.add_user(engine, "a", "operator", PASSWORD)
    failed, _ = jobs.open_job(engine, "launch", "a", "launch:z")
    jobs.fail(engine, failed.id, {"status": 500}, 0)
    dead = tmp_path / "api" / "uploads" / "999999999-0a1b"  # no such process
    mine = tmp_path / "api" / "uploads" / f"{os.getpid()}-0c1d"
    orphan = tmp_path / "api" / "jobs" / failed.id
    unknown = tmp_path / "api" / "jobs" / "job_nobody"
    for folder in (dead, mine, orphan, unknown):
        folder.mkdir(parents=True)
        (folder / "danh-sach.csv").write_text("phone\n0912345678\n")
    runner = JobRunner(engine, tmp_path / "api")
    runner.close()
    assert not dead.exists() and not orphan.exists() and not unknown.exists()
    assert mine.exists()  # a live process's (this one's) uploads stay


def test_an_account_with_too_many_jobs_open_waits_and_a_logout_ends_its_token(
    engine, tmp_path, tokens
):
    from scripts.api.runner import OPEN_PER_ACCOUNT

    for n in range(OPEN_PER_ACCOUNT):  # open, as if running elsewhere
        jobs.open_job(engine, "report", "a-auditor", f"report:{n}")
    route = "/v1/campaigns/bluezone-ninh-thuan-2020/reports"
    with api(engine, tmp_path) as base:
        ended(base, tokens["operator"], requests.post(
            f"{base}/v1/launches", headers=bearer(tokens["operator"]), files=files()))  # fmt: skip
        refused = requests.post(base + route, headers=bearer(tokens["auditor"]), json={})
        other = requests.post(base + route, headers=bearer(tokens["admin"]), json={})
        out = requests.delete(f"{base}/v1/sessions", headers=bearer(tokens["admin"]))
        after = requests.get(f"{base}/v1/jobs", headers=bearer(tokens["admin"]))
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
    assert other.status_code == 202  # another account's are its own
    assert out.status_code == 204 and after.status_code == 401


def test_jobs_submitted_at_once_never_pass_the_account_s_cap(engine, tmp_path):
    import threading

    from scripts.api.problems import Problem
    from scripts.api.runner import OPEN_PER_ACCOUNT, JobRunner

    runner, hold = JobRunner(engine, tmp_path / "api"), threading.Event()
    opened, refused, start = [], [], threading.Barrier(30)

    def work(running) -> dict:
        assert hold.wait(30)
        return {}

    def submit() -> None:
        start.wait(30)
        try:
            opened.append(runner.submit("report", "a-auditor", work))
        except Problem as problem:
            refused.append(problem.status)

    asking = [threading.Thread(target=submit) for _ in range(30)]
    for thread in asking:
        thread.start()
    for thread in asking:
        thread.join(30)
    hold.set()
    runner.close()
    assert len(opened) == OPEN_PER_ACCOUNT and refused == [429] * (30 - OPEN_PER_ACCOUNT)
