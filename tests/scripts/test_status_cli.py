"""``loa campaign status`` says what a campaign waits for and until when, through the real
command on a real ledger: its sending hours, a pause, a halted provider, a cooldown, its
start; and the time left at the agreed rate."""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from campaigns.hours import VIETNAM, SendingWindow
from tests.conftest import REDIS_URL
from tests.scripts.test_cli import EXAMPLE, loa, small_list

CAMPAIGN = "bluezone-ninh-thuan-2020"
#: Wide enough that rich does not wrap a line the test looks for.
WIDE = {"COLUMNS": "240"}


def spec_with(tmp_path: Path, name: str, *, hours: str | None = None, new_id: str | None = None):
    text = EXAMPLE.read_text(encoding="utf-8")
    if hours is not None:
        text = text.replace('validity = "12h"', f'validity = "12h"\nsending_hours = "{hours}"')
    if new_id is not None:
        text = text.replace(f'id = "{CAMPAIGN}"', f'id = "{new_id}"')
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def closed_hours() -> SendingWindow:
    """An hour that opens in two to three hours: still closed if an hour turns meanwhile."""
    opens = (datetime.now(VIETNAM).hour + 3) % 24
    return SendingWindow(time(opens), time((opens + 1) % 24))


def status(tmp_path: Path, env: dict[str, str] | None = None, campaign: str = CAMPAIGN) -> dict:
    result = loa("campaign", "status", campaign, "--json", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def human(tmp_path: Path, env: dict[str, str] | None = None) -> str:
    result = loa("campaign", "status", CAMPAIGN, cwd=tmp_path, env={**WIDE, **(env or {})})
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_outside_its_hours_then_paused_it_says_what_it_waits_for(tmp_path):
    window = closed_hours()
    spec = spec_with(tmp_path, "night.toml", hours=str(window))
    launched = loa(
        "campaign", "launch", str(spec), "-r", str(small_list(tmp_path)), "--timeout", "0",
        "--json", cwd=tmp_path,
    )  # fmt: skip
    assert launched.returncode == 1  # not finished: it waits for its hours
    opening = window.next_opening(datetime.now(VIETNAM))
    assert json.loads(launched.stdout)["waiting_for"]["reason"] == "sending_hours"

    found = status(tmp_path)
    waiting = found["waiting_for"]
    assert found["state"] == "running" and waiting["reason"] == "sending_hours"
    assert waiting["until"] == opening.isoformat(timespec="seconds")  # Vietnam's, +07:00
    assert waiting["until"].endswith("+07:00") and waiting["messages"] == 2
    # No time left while it waits for its hours: when it goes on instead.
    assert found["eta_seconds"] is None and found["resumes_at"] == waiting["until"]
    # Embedded, a cooldown lives in the sending process: not known here, and not "0".
    assert found["providers"]["sandbox"]["cooldown_seconds"] is None
    shown = human(tmp_path)
    assert "ngoài giờ gửi · outside its sending hours" in shown
    assert f"{opening:%H:%M %d/%m/%Y} giờ Việt Nam (UTC+07:00)" in shown
    assert "gửi tiếp lúc · resumes at" in shown

    before = datetime.now(VIETNAM)
    paused = loa("campaign", "pause", CAMPAIGN, "--json", cwd=tmp_path)
    assert paused.returncode == 0, paused.stderr
    assert json.loads(paused.stdout)["waiting_for"]["reason"] == "paused"
    found = status(tmp_path)
    waiting = found["waiting_for"]
    assert found["state"] == "paused" and waiting["reason"] == "paused"
    since = datetime.fromisoformat(waiting["since"])
    assert before - timedelta(seconds=2) <= since <= datetime.now(VIETNAM)
    assert waiting["lifted_by"] == f"loa campaign resume {CAMPAIGN}"
    assert found["eta_seconds"] is None and found["resumes_at"] is None  # nobody knows when
    shown = human(tmp_path)
    assert "tạm dừng · paused" in shown and f"loa campaign resume {CAMPAIGN}" in shown
    assert "— (tạm dừng · paused)" in shown


def test_a_halted_provider_is_named_with_why_since_when_and_what_lifts_it(tmp_path):
    import sqlalchemy as sa

    from ledger.halts import halt

    assert loa("db", "upgrade", cwd=tmp_path).returncode == 0
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'var' / 'loa.db'}")
    before = datetime.now(VIETNAM)
    halt(engine, "sandbox", "http_401 credentials refused")
    engine.dispose()
    launched = loa(
        "campaign", "launch", str(EXAMPLE), "-r", str(small_list(tmp_path)), cwd=tmp_path
    )
    assert launched.returncode == 1  # it cannot finish: its only provider is halted

    found = status(tmp_path)
    waiting = found["waiting_for"]
    assert found["state"] == "halted" and waiting["reason"] == "provider_halted"
    assert waiting["providers"] == ["sandbox"] and waiting["messages"] == 2
    assert waiting["why"] == "sandbox: http_401 credentials refused"
    assert waiting["lifted_by"] == "loa provider resume sandbox"
    assert datetime.fromisoformat(waiting["since"]) >= before - timedelta(seconds=2)
    assert found["eta_seconds"] is None
    assert found["providers"]["sandbox"]["halted"]["why"] == "http_401 credentials refused"
    shown = human(tmp_path)
    assert "nhà cung cấp bị dừng · provider halted" in shown
    assert "loa provider resume sandbox" in shown


def test_with_redis_the_time_left_at_the_agreed_rate_a_cooldown_and_a_start(
    tmp_path, redis_namespace
):
    from worker.runtime import Runtime
    from worker.settings import Settings

    env = {
        "LOA_REDIS_URL": REDIS_URL,
        "LOA_REDIS_NAMESPACE": redis_namespace,
        "LOA_PROVIDERS__SANDBOX__RATE_PER_SECOND": "0.5",
    }
    listing = str(small_list(tmp_path))
    # With Redis the jobs wait there for a `loa worker`; none runs, so nothing moves.
    launched = loa("campaign", "launch", str(EXAMPLE), "-r", listing, cwd=tmp_path, env=env)
    assert launched.returncode == 0, launched.stderr
    found = status(tmp_path, env)
    assert found["waiting_for"] is None and found["state"] == "running"
    sandbox = found["providers"]["sandbox"]
    assert sandbox["rate_per_second"] == pytest.approx(0.5 * 0.95, abs=0.01)  # less headroom
    assert sandbox["queued"] == 2 and sandbox["cooldown_seconds"] == 0
    # Two messages at 0.475 a second: about four seconds (hours: any, for this campaign).
    assert found["eta_seconds"] == round(2 / 0.475) and found["finishes_at"] is not None
    assert found["provider_cooldown_seconds"] == 0

    # A cooldown as the workers start it, through the very object they use.
    settings = Settings(
        redis_url=SecretStr(REDIS_URL), redis_namespace=redis_namespace, var_dir=tmp_path / "var"
    )
    runtime = Runtime(settings)
    try:
        runtime.cooldown("sandbox").start(floor=60)
    finally:
        runtime.close()
    started = datetime.now(VIETNAM)
    found = status(tmp_path, env)
    waiting = found["waiting_for"]
    assert waiting["reason"] == "cooldown" and waiting["providers"] == ["sandbox"]
    ends = datetime.fromisoformat(waiting["until"])
    assert started + timedelta(seconds=40) < ends <= started + timedelta(seconds=61)
    assert 40 < found["provider_cooldown_seconds"] <= 60
    assert found["eta_seconds"] > 40  # the time left starts after the cooldown
    assert "nhà cung cấp đang nghỉ · provider cooling down" in human(tmp_path, env)

    # A campaign launched for tomorrow at 07:30 waits for its start.
    tomorrow = (datetime.now(VIETNAM) + timedelta(days=1)).replace(
        hour=7, minute=30, second=0, microsecond=0
    )
    later = spec_with(tmp_path, "later.toml", new_id="bluezone-later")
    at = tomorrow.strftime("%Y-%m-%dT%H:%M")
    scheduled = loa(
        "campaign", "launch", str(later), "-r", listing, "--at", at, cwd=tmp_path, env=env
    )
    assert scheduled.returncode == 0, scheduled.stderr
    found = status(tmp_path, env, "bluezone-later")
    assert found["state"] == "scheduled" and found["waiting_for"]["reason"] == "scheduled"
    assert found["waiting_for"]["until"] == tomorrow.isoformat(timespec="seconds")
    assert found["resumes_at"] == found["waiting_for"]["until"] and found["eta_seconds"] is None


def _numbers(tmp_path: Path, count: int) -> Path:
    path = tmp_path / "numbers.csv"
    rows = "\n".join(f"0912{i:06d}" for i in range(count))
    path.write_text(f"phone\n{rows}\n", encoding="utf-8")
    return path


def test_the_rate_of_a_campaign_that_began_sending_lately_is_over_that_time(tmp_path):
    """Five seconds into sending, the rate is what was handed over in those seconds, not
    that spread over a minute; once it has sent for longer, over the last minute."""
    import sqlalchemy as sa

    from ledger.schema import messages

    launched = loa(
        "campaign", "launch", str(EXAMPLE), "-r", str(_numbers(tmp_path, 40)), cwd=tmp_path
    )
    assert launched.returncode == 0, launched.stderr
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'var' / 'loa.db'}")
    # Handed over: a provider took (or refused) them; when, is when they were sent.
    handed_over = messages.c.status.in_(
        ["sent", "delivered", "undelivered", "failed", "unknown", "unreachable"]
    )
    began = datetime.now(VIETNAM) - timedelta(seconds=5)
    with engine.begin() as conn:
        conn.execute(messages.update().where(handed_over).values(sent_at=began))
        ids = conn.scalars(
            sa.select(messages.c.id).where(handed_over).order_by(messages.c.id)
        ).all()
    counted = len(ids)
    assert counted >= 30  # the list's numbers, each taken (or refused) by the provider once

    found = status(tmp_path)
    window = found["rate_window_seconds"]
    assert 5 <= window < 60  # since sending began, not a minute
    assert found["rate_per_second"] == pytest.approx(counted / window, rel=0.05)
    assert found["rate_per_second"] > 2 * counted / 60
    shown = " ".join(human(tmp_path).split())
    assert "từ lúc bắt đầu gửi · over the" in shown and "since sending began" in shown

    # One handed over ten minutes ago: it has sent for longer than a minute.
    with engine.begin() as conn:
        conn.execute(
            messages.update()
            .where(messages.c.id == ids[0])
            .values(sent_at=began - timedelta(minutes=10))
        )
    engine.dispose()
    found = status(tmp_path)
    assert found["rate_window_seconds"] == 60
    assert found["rate_per_second"] == pytest.approx((counted - 1) / 60, abs=0.01)
    assert "1 phút qua · over the last minute" in human(tmp_path)


def test_the_agreed_rate_is_shown_as_configured_and_the_headroom_said(tmp_path):
    launched = loa(
        "campaign", "launch", str(EXAMPLE), "-r", str(small_list(tmp_path)), cwd=tmp_path
    )
    assert launched.returncode == 0, launched.stderr
    env = {"LOA_PROVIDERS__SANDBOX__RATE_PER_SECOND": "20"}
    sandbox = status(tmp_path, env)["providers"]["sandbox"]
    assert sandbox["agreed_rate_per_second"] == 20  # as configured
    assert sandbox["rate_per_second"] == 19  # what the worker aims at: 5 % under
    shown = " ".join(human(tmp_path, env).split())
    assert "20 tin/giây" in shown and "(Loa dùng 19 để chừa 5 %)" in shown
    assert "19,0" not in shown

    plain = {**env, "LOA_RATE_HEADROOM": "0"}
    assert status(tmp_path, plain)["providers"]["sandbox"]["rate_per_second"] == 20
    shown = " ".join(human(tmp_path, plain).split())
    assert "20 tin/giây" in shown and "Loa dùng" not in shown
