"""The ``loa`` command as operators run it: a real process, real files, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "bluezone.toml"


#: The environment a terminal's size is read from.
TERMINAL = frozenset({"COLUMNS", "LINES", "TERMINAL_WIDTH"})


def _environment(env: dict[str, str] | None) -> dict[str, str]:
    # Neither Loa's settings nor the outer terminal's size (COLUMNS, LINES) leak in: a
    # test gets the width it asks for, or a pipe's.
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith("LOA_") and k not in TERMINAL
    }
    # This tree's code, as tests/rig.py runs it: in a copy of the tree, the copy's (not
    # whatever checkout the virtualenv's editable install points at).
    environment["PYTHONPATH"] = str(ROOT)
    environment.update(env or {})
    return environment


def loa(
    *args: str, cwd: Path, env: dict[str, str] | None = None, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scripts", *args],
        cwd=cwd,
        env=_environment(env),
        capture_output=True,
        text=True,
        timeout=300,
        input=input,
    )


#: ``loa_in_one_process``'s program: each command through ``scripts.cli.main`` as
#: ``python -m scripts`` runs it, its stdout and stderr caught apart, its exit code kept.
_ONE_PROCESS = """
import contextlib, io, json, sys
from scripts.cli import main
done = []
for args in json.loads(sys.argv[1]):
    sys.argv = ["loa", *args]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main()
            code = 0
        except SystemExit as end:
            code = end.code if isinstance(end.code, int) else int(end.code is not None)
    done.append([code, out.getvalue(), err.getvalue()])
sys.stdout.write(json.dumps(done))
"""


def loa_in_one_process(
    *commands: tuple[str, ...], cwd: Path, env: dict[str, str] | None = None
) -> list[subprocess.CompletedProcess[str]]:
    """``loa(*args)`` for each of ``commands``, in order, in one process (the environment is
    ``loa``'s, the same for all): for a test of what commands answer, not of the process,
    where a process each cost half a second of start-up."""
    ran = subprocess.run(
        [sys.executable, "-c", _ONE_PROCESS, json.dumps(commands)],
        cwd=cwd,
        env=_environment(env),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ran.returncode == 0, ran.stderr
    return [
        subprocess.CompletedProcess(["loa", *args], code, out, err)
        for args, (code, out, err) in zip(commands, json.loads(ran.stdout), strict=True)
    ]


def small_list(tmp_path: Path) -> Path:
    path = tmp_path / "list.csv"
    path.write_text(
        "Họ tên,Số điện thoại\nAn,0912345678\nBình,0987 654 321\nChi,chưa có\n", encoding="utf-8"
    )
    return path


def test_demo_accounts_for_every_row(tmp_path, tmp_path_factory):
    from tests.scripts.demo_run import demo_in

    result = demo_in(tmp_path, tmp_path_factory)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["rows_read"] == 5200
    assert (
        summary["rows_read"] == summary["recipients"] + summary["rejected"] + summary["duplicates"]
    )
    assert summary["final"] == summary["recipients"] == sum(summary["statuses"].values())
    assert summary["statuses"]["queued"] == summary["statuses"]["sending"] == 0
    assert Path(summary["ledger"]) == (tmp_path / "var" / "demo.db").resolve()
    assert "+849" not in result.stderr  # no whole number in the logs


def test_launch_runs_embedded_and_relaunch_adds_nothing(tmp_path):
    first = loa(
        "campaign",
        "launch",
        str(EXAMPLE),
        "--recipients",
        str(small_list(tmp_path)),
        "--json",
        cwd=tmp_path,
    )
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    assert (summary["launched"], summary["recipients"], summary["rejected"]) == (True, 2, 1)
    assert summary["final"] == 2

    again = loa(
        "campaign",
        "launch",
        str(EXAMPLE),
        "--recipients",
        str(small_list(tmp_path)),
        "--json",
        cwd=tmp_path,
    )
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["launched"] is False
    assert "already launched" in again.stderr

    status = loa("campaign", "status", "bluezone-ninh-thuan-2020", "--json", cwd=tmp_path)
    assert json.loads(status.stdout)["recipients"] == 2
    # For people every term of read = rejected + suppressed + duplicates + recipients is
    # shown, a zero too (a missing row read as a sum that does not add up).
    table = loa("campaign", "status", "bluezone-ninh-thuan-2020", cwd=tmp_path).stdout
    shown = {label: line.strip(" │").split()[-1] for line in table.splitlines() for label in
             ("rows read", "rejected", "suppressed", "duplicates", "recipients") if label in line}  # fmt: skip
    assert shown == {"rows read": "3", "rejected": "1", "suppressed": "0", "duplicates": "0",
                     "recipients": "2"}  # fmt: skip

    # Another list under the same id once said "launched: False" and exit 0, and the new
    # list was silently ignored.
    other = tmp_path / "more.csv"
    other.write_text("Họ tên,Số điện thoại\nDung,0903 123 456\n", encoding="utf-8")
    ignored = loa(
        "campaign", "launch", str(EXAMPLE), "--recipients", str(other), "--json", cwd=tmp_path
    )
    assert ignored.returncode == 2
    assert "more.csv was NOT added" in ignored.stderr and "new id" in ignored.stderr
    assert json.loads(ignored.stdout)["list_ignored"] is True
    status = loa("campaign", "status", "bluezone-ninh-thuan-2020", "--json", cwd=tmp_path)
    assert json.loads(status.stdout)["recipients"] == 2


@pytest.mark.parametrize(
    ("make_args", "needle"),
    [
        (lambda t: [str(t / "missing.toml"), "--recipients", str(small_list(t))], "missing.toml"),
        (lambda t: [str(EXAMPLE), "--recipients", str(t / "missing.csv")], "missing.csv"),
        (
            lambda t: [str(_write(t, "bad.toml", "id = ")), "--recipients", str(small_list(t))],
            "invalid TOML",
        ),
        (
            lambda t: [
                str(_write(t, "p.toml", EXAMPLE.read_text().replace('"sandbox"', '"nowhere"'))),
                "--recipients",
                str(small_list(t)),
            ],
            "unknown provider 'nowhere'",
        ),
        (
            lambda t: [
                str(EXAMPLE),
                "--recipients",
                str(_write(t, "l.csv", "name,address\nAn,x\n")),
            ],
            "no phone column",
        ),
    ],
)
def test_bad_input_is_named_exits_2_and_writes_nothing(tmp_path, make_args, needle):
    result = loa("campaign", "launch", *make_args(tmp_path), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert needle in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    ledger = tmp_path / "var" / "loa.db"
    if ledger.exists():
        with sa.create_engine(f"sqlite:///{ledger}").connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM campaigns").scalar() == 0


def test_unknown_campaign_exits_2(tmp_path):
    result = loa("campaign", "status", "nope", cwd=tmp_path)
    assert result.returncode == 2 and "nope" in result.stderr


def test_config_show_masks_secrets(tmp_path):
    env = {
        "LOA_DATABASE_URL": "postgresql://loa:hunter2@db.internal/loa",
        "LOA_REDIS_URL": "redis://:s3cret@cache:6379/0",
    }
    result = loa("config", "show", "--json", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert "hunter2" not in result.stdout and "s3cret" not in result.stdout
    assert shown["mode"] == "redis" and shown["database_url"].startswith(
        "postgresql+psycopg://loa:***@"
    )


def test_config_show_names_a_bad_provider_setting(tmp_path):
    result = loa("config", "show", cwd=tmp_path, env={"LOA_PROVIDERS__SANDBOX__LATENCY_MS": "fast"})
    assert result.returncode == 2
    assert "LOA_PROVIDERS__SANDBOX__LATENCY_MS" in result.stdout  # named as it is set


def test_a_bad_setting_is_named(tmp_path):
    result = loa("config", "show", cwd=tmp_path, env={"LOA_BATCH_SIZE": "lots"})
    assert result.returncode == 2 and "LOA_BATCH_SIZE" in result.stderr


def test_worker_without_redis_explains_itself(tmp_path):
    result = loa("worker", cwd=tmp_path)
    assert result.returncode == 2 and "LOA_REDIS_URL" in result.stderr


def test_db_upgrade(tmp_path):
    result = loa("db", "upgrade", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    from ledger.migrate import head_revision

    assert json.loads(result.stdout)["to"] == head_revision() == "0018"


def _write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def test_status_accounts_for_every_row_suppressed_ones_included(tmp_path):
    """Status once left the suppressed rows out: read 3 = rejected 1 + recipients 1, and
    the opted-out one nowhere."""
    assert loa("suppress", "add", "0987654321", "--list", "opt_out", cwd=tmp_path).returncode == 0
    launched = loa(
        "campaign", "launch", str(EXAMPLE), "--recipients", str(small_list(tmp_path)),
        cwd=tmp_path,
    )  # fmt: skip
    assert launched.returncode == 0, launched.stderr
    status = loa("campaign", "status", "bluezone-ninh-thuan-2020", "--json", cwd=tmp_path)
    data = json.loads(status.stdout)
    assert (data["suppressed"], data["suppressed_by_list"]) == (1, {"opt_out": 1})
    parts = data["rejected"] + data["duplicates"] + data["suppressed"] + data["recipients"]
    assert data["rows_read"] == parts == 3
    table = loa("campaign", "status", "bluezone-ninh-thuan-2020", cwd=tmp_path).stdout
    assert "đã từ chối nhận · opted out" in table


def test_plan_and_launch_stop_when_every_message_would_expire_unsent(tmp_path):
    """Launched when its hours are hours away and its validity shorter than that, every
    message used to expire with only the worker's log saying why."""
    from datetime import datetime, timedelta

    from campaigns.hours import VIETNAM

    opens = datetime.now(VIETNAM) + timedelta(hours=3)  # a one-hour window, three hours on
    hours = f"{opens:%H}:00-{(opens + timedelta(hours=1)):%H}:00"
    text = EXAMPLE.read_text(encoding="utf-8").replace(
        'validity = "12h"', f'validity = "1h"\nsending_hours = "{hours}"'
    )
    spec = _write(tmp_path, "night.toml", text)
    args = (str(spec), "--recipients", str(small_list(tmp_path)))
    for command in ("plan", "launch"):
        refused = loa("campaign", command, *args, cwd=tmp_path)
        assert refused.returncode == 2, (command, refused.stderr)
        assert "would expire unsent" in refused.stderr and "--even-if-expired" in refused.stderr
        assert "the validity (1 giờ) ends at" in refused.stderr  # not "1:00:00"
    told = loa("campaign", "plan", *args, "--even-if-expired", cwd=tmp_path)
    assert told.returncode == 0, told.stderr
    # Told to go on, it still says so (once), so nobody wonders later why all expired.
    (warning,) = [line for line in told.stderr.splitlines() if "would expire unsent" in line]
    assert warning.startswith("Cảnh báo · warning:") and "going on" in warning


def test_an_embedded_launch_keeps_stderr_for_people_unless_asked_for_logs(tmp_path):
    """Jobs run in the launching process: its stderr (not a terminal here, so the logs
    would be JSON) carries no INFO line (campaign.launched, every send error, every
    retry) unless LOA_LOG_LEVEL asks for them."""
    listing = tmp_path / "numbers.csv"
    listing.write_text("phone\n" + "".join(f"0912{i:06d}\n" for i in range(300)), encoding="utf-8")
    args = ("campaign", "launch", str(EXAMPLE), "-r", str(listing))
    quiet = loa(*args, cwd=tmp_path)
    assert quiet.returncode == 0, quiet.stderr
    assert '"level": "info"' not in quiet.stderr and "campaign.launched" not in quiet.stderr
    assert "Người nhận · recipients" in quiet.stdout  # the table is the output

    elsewhere = tmp_path / "again"  # a ledger of its own: a launch that creates
    elsewhere.mkdir()
    asked = loa(*args, "--json", cwd=elsewhere, env={"LOA_LOG_LEVEL": "INFO"})
    assert asked.returncode == 0, asked.stderr
    assert '"event": "campaign.launched"' in asked.stderr
