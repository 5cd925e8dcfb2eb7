"""``loa campaign pause|resume|cancel`` on the embedded default."""

from __future__ import annotations

import json

from tests.scripts.demo_run import example_launched
from tests.scripts.test_cli import EXAMPLE, loa, small_list


def test_cancel_then_resume_is_refused_and_pause_resume_works(tmp_path):
    # A campaign whose sending hours are closed for the next hours keeps its rows queued.
    spec = tmp_path / "night.toml"
    from datetime import datetime

    from campaigns.hours import VIETNAM

    opens = (datetime.now(VIETNAM).hour + 3) % 24
    spec.write_text(
        EXAMPLE.read_text(encoding="utf-8").replace(
            'validity = "12h"',
            f'validity = "12h"\nsending_hours = "{opens:02d}:00-{(opens + 1) % 24:02d}:00"',
        ),
        encoding="utf-8",
    )
    launched = loa(
        "campaign",
        "launch",
        str(spec),
        "-r",
        str(small_list(tmp_path)),
        "--timeout",
        "3",
        "--json",
        cwd=tmp_path,
    )
    assert launched.returncode == 1  # not finished: the window is closed
    assert json.loads(launched.stdout)["statuses"]["queued"] == 2

    paused = loa("campaign", "pause", "bluezone-ninh-thuan-2020", "--json", cwd=tmp_path)
    assert paused.returncode == 0 and json.loads(paused.stdout)["state"] == "paused"

    cancelled = json.loads(
        loa("campaign", "cancel", "bluezone-ninh-thuan-2020", "--json", cwd=tmp_path).stdout
    )
    assert (cancelled["cancelled"], cancelled["statuses"]["cancelled"], cancelled["final"]) == (
        2,
        2,
        2,
    )

    again = loa("campaign", "resume", "bluezone-ninh-thuan-2020", cwd=tmp_path)
    assert again.returncode == 2 and "cancelled" in again.stderr


def test_a_finished_campaign_cannot_be_paused_or_cancelled(tmp_path, tmp_path_factory):
    example_launched(tmp_path, tmp_path_factory)  # finished
    for action in ("pause", "cancel"):
        refused = loa("campaign", action, "bluezone-ninh-thuan-2020", "--json", cwd=tmp_path)
        assert refused.returncode == 2 and "nothing left to send" in refused.stderr
        assert "Traceback" not in refused.stderr
    status = loa("campaign", "status", "bluezone-ninh-thuan-2020", "--json", cwd=tmp_path)
    assert json.loads(status.stdout)["state"] == "completed"  # unchanged


def test_status_reports_rate_eta_and_providers_and_watch_ends_with_the_campaign(
    tmp_path, tmp_path_factory
):
    example_launched(tmp_path, tmp_path_factory)
    watched = loa(
        "campaign", "status", "bluezone-ninh-thuan-2020", "--watch", "--json", cwd=tmp_path
    )
    assert watched.returncode == 0, watched.stderr
    (line,) = watched.stdout.strip().splitlines()  # completed: one snapshot, then it stops
    snapshot = json.loads(line)
    assert snapshot["state"] == "completed" and snapshot["eta_seconds"] == 0
    assert sum(snapshot["by_provider"]["sandbox"].values()) == 2
    # Over the last minute: the shared launch may be older than that on a loaded machine
    # (the rate itself: tests/scripts/test_status_cli.py, tests/ledger/test_tally.py).
    assert snapshot["rate_per_second"] >= 0 and snapshot["rate_window_seconds"] > 0


def test_launch_at_a_time_is_checked_first(tmp_path):
    from tests.scripts.test_cli import EXAMPLE, loa, small_list

    listing = str(small_list(tmp_path))
    redis = {"LOA_REDIS_URL": "redis://127.0.0.1:6379/15"}
    cases = {
        (): "--at needs LOA_REDIS_URL",
        ("redis", "tomorrow"): "not a time",
        ("redis", "2020-08-01T07:00"): "that time has passed",
        ("redis", "2999-12-31T07:00"): "more than a year ahead",
        ("redis", "9999-12-31T20:00"): "more than a year ahead",  # was an OverflowError
    }
    for case, needle in cases.items():
        env = redis if case else {}
        at = case[1] if case else "2999-01-01T07:00"
        result = loa(
            "campaign", "launch", str(EXAMPLE), "-r", listing, "--at", at, cwd=tmp_path, env=env
        )
        assert result.returncode == 2 and needle in result.stderr, (case, result.stderr)
    assert not (tmp_path / "var" / "loa.db").exists()  # refused before the ledger


def test_a_command_asked_again_changes_nothing_and_exits_0_saying_so(tmp_path):
    """A script that pauses or cancels twice does not fail the second time; a cancel says
    how many messages workers already hold, which are still sent and settled."""
    from ledger.db import make_engine
    from ledger.messages import claim_batch
    from tests.scripts.test_status_cli import closed_hours, spec_with

    listing = tmp_path / "five.csv"
    listing.write_text("phone\n" + "".join(f"091234567{i}\n" for i in range(5)), "utf-8")
    spec = spec_with(tmp_path, "night.toml", hours=str(closed_hours()))
    env = {"LOA_BATCH_SIZE": "2"}  # three batches, all waiting for the sending hours
    launched = loa(
        "campaign", "launch", str(spec), "-r", str(listing), "--timeout", "0", cwd=tmp_path,
        env=env,
    )  # fmt: skip
    assert launched.returncode == 1, launched.stderr
    campaign = "bluezone-ninh-thuan-2020"

    def run(action: str, *more: str):
        return loa("campaign", action, campaign, *more, cwd=tmp_path, env=env)

    first = json.loads(run("pause", "--json").stdout)
    assert (first["changed"], first["already"]) == (1, False)
    again = run("pause", "--json")
    assert again.returncode == 0, again.stderr
    assert (json.loads(again.stdout)["changed"], json.loads(again.stdout)["already"]) == (0, True)
    said = run("pause")
    assert said.returncode == 0
    assert "it was already paused: nothing changed" in " ".join(said.stdout.split())

    # A worker took the first batch (two messages) before the operator cancels.
    engine = make_engine(f"sqlite:///{tmp_path / 'var' / 'loa.db'}")
    try:
        assert len(claim_batch(engine, campaign, 1)) == 2
    finally:
        engine.dispose()
    cancelled = run("cancel", "--json")
    assert cancelled.returncode == 0, cancelled.stderr
    found = json.loads(cancelled.stdout)
    assert (found["cancelled"], found["still_sending"], found["already"]) == (3, 2, False)
    assert found["statuses"]["sending"] == 2
    shown = " ".join(run("cancel").stdout.split())  # again: for people
    assert "it was already cancelled: nothing changed" in shown
    assert "held by workers: still sent and settled: 2" in shown
    twice = run("cancel", "--json")
    assert twice.returncode == 0, twice.stderr  # re-running a cancel does not fail
    assert (json.loads(twice.stdout)["cancelled"], json.loads(twice.stdout)["already"]) == (0, True)
    # Still refused where it means something else: a cancelled campaign is not resumed.
    refused = run("resume")
    assert refused.returncode == 2 and "cancelled" in refused.stderr
