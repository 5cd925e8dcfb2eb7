"""A campaign launched with ``--at``: recorded now, nothing queued, ``scheduled`` with its
validity running from its start; started once when its time comes, on both ledgers."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from dramatiq.brokers.stub import StubBroker
from pydantic import SecretStr

from ledger.schema import campaigns, now
from ledger.summary import load_campaign
from tests.scripts.test_cli import EXAMPLE, small_list
from worker.campaign.control import start_scheduled
from worker.campaign.launch import launch
from worker.queues.broker import use_broker
from worker.runtime import Runtime
from worker.settings import Settings


def test_a_scheduled_campaign_starts_when_its_time_comes(engine, tmp_path):
    url = SecretStr(str(engine.url.render_as_string(hide_password=False)))
    runtime = Runtime(Settings(database_url=url, var_dir=tmp_path), engine=engine)
    broker = use_broker(StubBroker(), runtime.settings)
    queue = broker.queues["sms.sandbox"].queue
    start = now() + timedelta(hours=2)
    launched = launch(runtime, EXAMPLE, small_list(tmp_path), start_at=start)
    campaign = load_campaign(engine, launched.campaign_id)
    assert (campaign.state, launched.batches_enqueued, len(queue)) == ("scheduled", 0, 0)
    assert campaign.valid_until == start + campaign.spec.validity
    assert start_scheduled(runtime) == {}  # not yet

    # Launched again meanwhile: still nothing queued.
    assert launch(runtime, EXAMPLE, small_list(tmp_path), start_at=start).batches_enqueued == 0
    with engine.begin() as conn:  # time passes
        conn.execute(sa.update(campaigns).values(start_at=now() - timedelta(seconds=1)))
    assert start_scheduled(runtime) == {launched.campaign_id: 1}
    assert load_campaign(engine, launched.campaign_id).state == "running" and len(queue) == 1
    assert start_scheduled(runtime) == {}  # started once
