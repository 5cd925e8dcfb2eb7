"""``loa users`` as an administrator runs it: accounts added, listed, disabled, passwords
reset, tokens issued once and revoked; bad input exits 2 naming the account, nothing
changed."""

from __future__ import annotations

import json

from tests.scripts.test_cli import loa

PASSWORD = "ruộng lúa xanh mướt chiều thu\n"


def run(tmp_path, *args, stdin=None):
    return loa(*args, cwd=tmp_path, env={"LOA_VAR_DIR": str(tmp_path / "var")}, input=stdin)


def test_an_administrator_s_day(tmp_path):
    added = run(tmp_path, "users", "add", "kiem-toan", "--role", "auditor", "--password-stdin",
                stdin=PASSWORD)  # fmt: skip
    assert added.returncode == 0, added.stderr
    weak = run(tmp_path, "users", "add", "lan", "--role", "operator", "--password-stdin",
               stdin="12345678\n")  # fmt: skip
    assert weak.returncode == 2 and "lan: a password of at least 12" in weak.stderr
    bad_role = run(tmp_path, "users", "add", "lan", "--role", "root", "--password-stdin",
                   stdin=PASSWORD)  # fmt: skip
    assert bad_role.returncode == 2 and "role 'root'" in bad_role.stderr

    issued = run(tmp_path, "users", "token", "kiem-toan", "--label", "Sở TT&TT", "--json")
    token = json.loads(issued.stdout)
    assert token["token"].startswith("loat_") and token["account"] == "kiem-toan"
    listed = json.loads(run(tmp_path, "users", "list", "--json").stdout)
    assert [(u["name"], u["role"], u["tokens"]) for u in listed] == [("kiem-toan", "auditor", 1)]
    assert token["token"] not in run(tmp_path, "users", "list").stdout  # shown once only

    assert run(tmp_path, "users", "revoke", str(token["id"])).returncode == 0
    again = run(tmp_path, "users", "revoke", str(token["id"]))
    assert again.returncode == 2 and "revoked already" in again.stderr
    assert run(tmp_path, "users", "token", "nobody").returncode == 2
    assert run(tmp_path, "users", "token", "kiem-toan", "--expires", "400d").returncode == 2
    reset = run(tmp_path, "users", "reset", "kiem-toan", "--password-stdin",
                stdin="đồi cát bay mũi né xa xăm\n")  # fmt: skip
    assert reset.returncode == 0, reset.stderr
    assert run(tmp_path, "users", "reset", "nobody", "--password-stdin",
               stdin=PASSWORD).returncode == 2  # fmt: skip
    assert run(tmp_path, "users", "disable", "kiem-toan").returncode == 0
    stopped = run(tmp_path, "users", "token", "kiem-toan")
    assert stopped.returncode == 2 and "disabled" in stopped.stderr
    for result in (added, weak, bad_role, issued, again, stopped):
        assert "Traceback" not in result.stderr
