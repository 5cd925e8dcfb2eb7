"""``loa api`` attacked over real HTTP: logins guessed in parallel, a masked number
unmasked by looking up its 100,000 candidates, a large body where none is read (or with a
second ``Content-Type``) or from someone with no operator's token, a NUL where the
ledger cannot store one, a launch on SQLite that outlasts one progress tick, a long file
name and a plan with nothing rejected."""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from scripts.api import runner
from scripts.api.uploads import plain_name
from tests.scripts import test_api_jobs
from tests.scripts.test_api_jobs import PASSWORD, api, bearer, ended, files

tokens = test_api_jobs.tokens  # the same accounts: one of each role, and another operator


def test_wrong_logins_sent_in_parallel_are_checked_no_more_than_the_burst(engine, tmp_path, tokens):
    def guess(n: int) -> int:
        body = {"name": "a-admin", "password": f"wrong guess {n}"}
        return requests.post(f"{base}/v1/sessions", json=body).status_code

    with api(engine, tmp_path) as base, ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(guess, range(20)))
        right = requests.post(f"{base}/v1/sessions", json={"name": "a-admin",
                                                           "password": PASSWORD})  # fmt: skip
    assert answers.count(401) <= 5 and answers.count(429) >= 15, answers
    assert right.status_code == 429  # slowed: not even checked


def test_a_right_password_is_not_counted_as_a_failure(engine, tmp_path, tokens):
    body = {"name": "a-admin", "password": PASSWORD}
    with api(engine, tmp_path) as base:
        answers = [requests.post(f"{base}/v1/sessions", json=body).status_code for _ in range(7)]
    assert answers == [200] * 7


def test_an_auditor_cannot_try_every_number_behind_a_mask(engine, tmp_path, tokens):
    with api(engine, tmp_path) as base:

        def look(token: str, n: int) -> requests.Response:
            return requests.get(f"{base}/v1/recipients/+849474236{n:02d}/history",
                                headers=bearer(token))  # fmt: skip

        audited = [look(tokens["auditor"], n).status_code for n in range(31)]
        operated = [look(tokens["operator"], n).status_code for n in range(31)]
        last = look(tokens["auditor"], 99)
    assert audited == [200] * 30 + [429]
    assert int(last.headers["retry-after"]) > 0
    assert operated == [200] * 31  # an operator sees whole numbers: nothing to guess


def _post(base: str, path: str, head: dict[str, str], body: bytes) -> bytes:
    """``body`` sent after the headers (as it is, never ended), and what the server answers
    within 5 s (b"" if nothing): an answer that waits for the whole body never comes."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as conn:
        conn.settimeout(5)
        lines = "".join(f"{name}: {value}\r\n" for name, value in head.items())
        conn.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\n{lines}\r\n".encode() + body)
        try:
            return conn.recv(4096)
        except TimeoutError:
            return b""


@pytest.mark.parametrize(
    "content_type",
    [["multipart/form-data; boundary=x"], ["application/json", "multipart/form-data; boundary=x"]],
    ids=["multipart", "json-then-multipart"],
)
def test_a_large_body_to_a_route_that_takes_no_upload_is_413(engine, tmp_path, content_type):
    with api(engine, tmp_path) as base:
        host, port = base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port))) as conn:
            conn.settimeout(10)
            head = "".join(f"Content-Type: {kind}\r\n" for kind in content_type)
            conn.sendall(f"POST /v1/sessions HTTP/1.1\r\nHost: x\r\n{head}"
                         f"Content-Length: {2_000_000}\r\n\r\n".encode())  # fmt: skip
            answer = conn.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413"), answer


@pytest.mark.parametrize(("who", "status"), [(None, b"401"), ("auditor", b"403"), ("bad", b"401")])
def test_an_upload_without_an_operators_token_is_refused_before_it_is_read(
    engine, tmp_path, tokens, who, status
):
    head = {"Content-Type": "multipart/form-data; boundary=x", "Transfer-Encoding": "chunked"}
    if who is not None:
        head |= bearer(tokens.get(who, "loat_nobody"))
    part = (b'--x\r\nContent-Disposition: form-data; name="recipients"; filename="a.csv"'
            b"\r\n\r\nphone\n" + b"0912345678\n" * 1000)  # fmt: skip
    with api(engine, tmp_path) as base:
        answer = _post(base, "/v1/launches", head, b"%x\r\n%s\r\n" % (len(part), part))
        # An operator's upload is read as it comes (nothing answered before its end).
        operator = _post(base, "/v1/launches", {**head, **bearer(tokens["operator"])},
                         b"%x\r\n%s\r\n" % (len(part), part))  # fmt: skip
    assert answer.startswith(b"HTTP/1.1 " + status), answer
    assert b"application/problem+json" in answer
    assert operator == b""


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v1/jobs/a%00b", None),
        ("GET", "/v1/campaigns/a%00b", None),
        ("POST", "/v1/campaigns/a%00b/pause", None),
        ("POST", "/v1/suppressions/opt_out", {"numbers": ["0912345678"], "source": "a\0b"}),
    ],
    ids=["job", "campaign", "pause", "source"],
)
def test_a_nul_in_a_value_is_never_a_500(engine, tmp_path, tokens, method, path, body):
    with api(engine, tmp_path) as base:
        answer = requests.request(method, base + path, json=body,
                                  headers=bearer(tokens["operator"]))  # fmt: skip
        login = requests.post(f"{base}/v1/sessions", json={"name": "a\0b", "password": "x"})
    assert answer.status_code in (201, 200, 404, 422), answer.text
    assert login.status_code in (401, 422), login.text
    assert "SELECT" not in answer.text and "INSERT" not in answer.text


def test_a_launch_outlasting_a_progress_tick_is_not_locked_out_of_its_ledger(
    engine, tmp_path, tokens, monkeypatch
):
    monkeypatch.setattr(runner, "TICK_EVERY", 0.0)  # a tick at every chunk, as a big list has
    token = tokens["operator"]
    with api(engine, tmp_path) as base:
        job = ended(base, token, requests.post(f"{base}/v1/launches", headers=bearer(token),
                                               files=files()))  # fmt: skip
    assert job["state"] == "done", job
    assert job["result"]["launched"] is True and job["done"] == 3


def test_a_plan_with_nothing_rejected_has_no_download(engine, tmp_path, tokens):
    token = tokens["operator"]
    with api(engine, tmp_path) as base:
        job = ended(base, token, requests.post(
            f"{base}/v1/plans", headers=bearer(token),
            files=files(rows=b"phone\n0912345678\n")))  # fmt: skip
    assert job["state"] == "done" and job["result"]["rejected"] == 0
    assert job["file"] is None


def test_a_long_file_name_keeps_its_format():
    name = plain_name("Danh sách cư dân " * 10 + ".xlsx", "list.csv")
    assert len(name) <= 100 and name.endswith(".xlsx")
    assert plain_name("../../etc/passwd", "x") == "passwd"
    assert plain_name("..", "list.csv") == "list.csv"


GOAL = b'goal = "muc-tieu.toml"\n'
GOAL_FILE = b'name = "Cai Bluezone"\ntarget = 0.5\ndeadline = 2020-09-30\npopulation = "%s"\n'


@pytest.mark.parametrize("named", ["/etc/passwd", "/proc/self/environ", "../../../etc/passwd"])
def test_a_goal_reads_no_file_of_the_server_but_those_sent_with_it(engine, tmp_path, tokens, named):
    """A campaign file's goal naming a path on the server once answered a 422 quoting the
    file's first line (the server's environment: its keys); now only the files uploaded
    with it, by their names, are read."""
    sent = files(spec=GOAL + test_api_jobs.SPEC)
    sent["goal_files"] = ("muc-tieu.toml", GOAL_FILE % named.encode())
    with api(engine, tmp_path) as base:
        answer = requests.post(f"{base}/v1/plans", headers=bearer(tokens["operator"]),
                               files=sent)  # fmt: skip
        assert answer.status_code == 422, answer.text
        assert "by its name alone" in answer.json()["detail"]
        assert "root:" not in answer.text and "LOA_" not in answer.text
        inline = test_api_jobs.SPEC + b'\n[goal]\nname = "G"\ntarget = 0.5\n' \
            b'deadline = 2020-09-30\npopulation = "' + named.encode() + b'"\n'  # fmt: skip
        answer = requests.post(f"{base}/v1/plans", headers=bearer(tokens["operator"]),
                               files=files(spec=inline))  # fmt: skip
        assert answer.status_code == 422 and "root:" not in answer.text


def test_a_goal_s_files_sent_with_the_campaign_file_are_read(engine, tmp_path, tokens):
    sent = files(spec=GOAL + test_api_jobs.SPEC)
    sent = [*sent.items(), ("goal_files", ("muc-tieu.toml", GOAL_FILE % b"dan-so.csv")),
            ("goal_files", ("dan-so.csv", "Huyện,Dân số\nPhan Rang,1.000\n".encode()))]  # fmt: skip
    with api(engine, tmp_path) as base:
        answer = requests.post(f"{base}/v1/plans", headers=bearer(tokens["operator"]),
                               files=sent)  # fmt: skip
        job = ended(base, tokens["operator"], answer)
    assert job["state"] == "done", job


def test_goal_files_named_with_spaces_accents_or_thrice_are_found_or_refused_cleanly(
    engine, tmp_path, tokens
):
    import unicodedata

    named = "mục tiêu.toml"
    decomposed = unicodedata.normalize("NFD", named)  # as a Mac sends it
    sent = [*files(spec=f'goal = "{named}"\n'.encode() + test_api_jobs.SPEC).items(),
            ("goal_files", (decomposed, GOAL_FILE % b"dan so.csv")),
            *[("goal_files", ("dan so.csv", "Huyện,Dân số\nPhan Rang,1.000\n".encode()))] * 3]  # fmt: skip
    with api(engine, tmp_path) as base:
        answer = requests.post(f"{base}/v1/plans", headers=bearer(tokens["operator"]),
                               files=sent)  # fmt: skip
        job = ended(base, tokens["operator"], answer)
        assert job["state"] == "done", job.get("problem") or job.get("error") or job
        missing = requests.post(f"{base}/v1/plans", headers=bearer(tokens["operator"]),
                                files=files(spec=GOAL + test_api_jobs.SPEC))  # fmt: skip
        assert missing.status_code == 422 and "send it too" in missing.json()["detail"]
