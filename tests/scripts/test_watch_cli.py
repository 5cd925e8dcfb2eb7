"""``loa campaign status --watch``: the rate over the last interval, a loop that ends when
every recipient is final (exit 0), and Ctrl-C (exit 130, no traceback). Synchronised on
the command's own output, never on sleeps."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from scripts.campaign_status import handed
from scripts.campaign_watch import follow, interval_rates
from tests.scripts.test_cli import EXAMPLE, loa, small_list
from tests.scripts.test_status_cli import CAMPAIGN, closed_hours, spec_with


def test_the_rate_is_what_was_handed_over_in_the_interval():
    before = handed({"gw": {"queued": 90, "sent": 10}, "intl": {"delivered": 5, "queued": 5}})
    after = handed({"gw": {"queued": 70, "sent": 20, "delivered": 10}, "intl": {"queued": 10}})
    assert before == {"gw": 10, "intl": 5} and after == {"gw": 30, "intl": 0}
    # 20 more in 4 s; a provider whose count fell (a claim given back) is not negative.
    assert interval_rates(before, after, 4.0) == {"gw": 5.0, "intl": 0.0}
    assert interval_rates(before, after, 0.0) == {"gw": 0.0, "intl": 0.0}
    # Cancelled and expired messages were never handed over: not a send rate.
    assert handed({"gw": {"cancelled": 50, "expired": 3, "failed": 1}}) == {"gw": 1}


def test_following_ends_when_every_recipient_is_final():
    """The loop itself, with its clock and its wait given: three looks, the rate between
    each two, and no wait after the last."""
    looks = iter(
        [
            SimpleNamespace(counts={"gw": {"queued": 10}}, summary=SimpleNamespace(done=False)),
            SimpleNamespace(
                counts={"gw": {"queued": 4, "sent": 6}}, summary=SimpleNamespace(done=False)
            ),
            SimpleNamespace(
                counts={"gw": {"sent": 2, "delivered": 8}}, summary=SimpleNamespace(done=True)
            ),
        ]
    )
    clock = iter([100.0, 102.0, 103.0])
    shown, waits = [], []
    last = follow(
        lambda: next(looks), shown.append, 2.5, clock=lambda: next(clock), wait=waits.append
    )
    assert [r.rates for r in shown] == [None, {"gw": 3.0}, {"gw": 4.0}]
    assert waits == [2.5, 2.5] and last is shown[-1] and last.seconds == 1.0


def watch(tmp_path: Path, *options: str) -> subprocess.Popen[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("LOA_")}
    return subprocess.Popen(
        [sys.executable, "-m", "scripts", "campaign", "status", CAMPAIGN, "--watch", *options],
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def waiting_campaign(tmp_path: Path) -> None:
    """A campaign outside its hours: its two messages stay queued."""
    spec = spec_with(tmp_path, "night.toml", hours=str(closed_hours()))
    launched = loa(
        "campaign", "launch", str(spec), "-r", str(small_list(tmp_path)), "--timeout", "0",
        cwd=tmp_path,
    )  # fmt: skip
    assert launched.returncode == 1, launched.stderr


def test_watching_ends_with_exit_0_when_the_campaign_becomes_final(tmp_path):
    waiting_campaign(tmp_path)
    watcher = watch(tmp_path, "--json", "--interval", "0.2")
    try:
        assert watcher.stdout is not None
        first = json.loads(watcher.stdout.readline())  # it is watching
        assert first["waiting_for"]["reason"] == "sending_hours"
        assert first["interval_rate_per_second"] is None  # no interval yet
        cancelled = loa("campaign", "cancel", CAMPAIGN, cwd=tmp_path)
        assert cancelled.returncode == 0, cancelled.stderr
        rest, errors = watcher.communicate(timeout=120)
    finally:
        watcher.kill()
    assert watcher.returncode == 0, errors
    lines = [json.loads(line) for line in rest.splitlines()]
    last = lines[-1]
    assert last["state"] == "cancelled" and last["final"] == last["recipients"] == 2
    assert last["interval_rate_per_second"] == 0  # cancelled, not sent: no rate
    assert all(line["interval_rates"] is not None for line in lines)


def test_ctrl_c_stops_watching_with_exit_130_and_no_traceback(tmp_path):
    waiting_campaign(tmp_path)
    watcher = watch(tmp_path, "--json", "--interval", "0.2")
    try:
        assert watcher.stdout is not None
        json.loads(watcher.stdout.readline())  # watching
        watcher.send_signal(signal.SIGINT)
        _, errors = watcher.communicate(timeout=60)
    finally:
        watcher.kill()
    assert watcher.returncode == 130
    assert "Traceback" not in errors and "KeyboardInterrupt" not in errors
    # The campaign goes on: Ctrl-C stopped the watching only.
    found = loa("campaign", "status", CAMPAIGN, "--json", cwd=tmp_path)
    assert json.loads(found.stdout)["state"] == "running"


def test_watching_a_finished_campaign_draws_it_once_with_its_providers(tmp_path):
    launched = loa(
        "campaign", "launch", str(EXAMPLE), "-r", str(small_list(tmp_path)), cwd=tmp_path
    )
    assert launched.returncode == 0, launched.stderr
    watched = loa("campaign", "status", CAMPAIGN, "--watch", cwd=tmp_path, env={"COLUMNS": "200"})
    assert watched.returncode == 0, watched.stderr
    assert watched.stdout.count("Theo nhà cung cấp · by provider") == 1
    assert "hoàn tất · completed" in watched.stdout and "2/2" in watched.stdout


def test_watching_without_a_terminal_prints_a_line_per_look_then_the_status(tmp_path):
    """Piped (a log, cron), the watch writes one plain line a look as it goes, not only
    at the end; then, every recipient final, the whole status once."""
    waiting_campaign(tmp_path)
    watcher = watch(tmp_path, "--interval", "0.2")
    try:
        assert watcher.stdout is not None
        first = watcher.stdout.readline()  # comes while the campaign still waits
        second = watcher.stdout.readline()
        cancelled = loa("campaign", "cancel", CAMPAIGN, cwd=tmp_path)
        assert cancelled.returncode == 0, cancelled.stderr
        rest, errors = watcher.communicate(timeout=120)
    finally:
        watcher.kill()
    assert watcher.returncode == 0, errors
    for line in (first, second):
        assert f"{CAMPAIGN}: đang chạy · running" in line, line
        assert "đã chuyển cho nhà cung cấp · handed 0/2" in line and "queued 2" in line
        assert "│" not in line and "\x1b" not in line  # plain text, no table, no colour
    lines = rest.splitlines()
    last_look = [line for line in lines if line.startswith(tuple("0123456789"))][-1]
    assert "đã huỷ · cancelled" in last_look and "Đã huỷ · cancelled 2" in last_look
    assert rest.count("Theo nhà cung cấp · by provider") == 1  # the status, once, at the end
    assert rest.index(last_look) < rest.index("Theo nhà cung cấp")
