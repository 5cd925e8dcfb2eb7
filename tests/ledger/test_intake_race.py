"""Two launches of one campaign id at once, on PostgreSQL: both find no campaign, the
second's insert waits on the first's uncommitted row and is refused by the unique id once
the first commits. It used to end in an IntegrityError traceback; now the second adds
nothing and says so, as a relaunch does."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from campaigns.recipients import ListRow
from ledger.db import make_engine
from ledger.migrate import upgrade
from ledger.schema import campaigns, messages, now
from tests.helpers import record
from tests.worker.test_dispatch import SPEC

pytestmark = pytest.mark.postgres


def test_the_second_of_two_simultaneous_launches_adds_nothing(postgres_url):
    engine = make_engine(postgres_url)
    upgrade(engine)
    rows = [ListRow(i + 2, f"09123{i:05d}", ()) for i in range(5)]
    first = engine.connect()
    tx = first.begin()
    first.execute(  # the first launch, between its insert and its commit
        campaigns.insert().values(
            id=SPEC.id, name=SPEC.name, category=SPEC.category.value, brandname=SPEC.brandname,
            provider=SPEC.provider, spec=SPEC.model_dump(mode="json"), list_name="list.csv",
            list_columns=[], intake={}, state="running", batches=0, created_at=now(),
            valid_until=now() + SPEC.validity,
        )
    )  # fmt: skip
    outcome: list[object] = []

    def second() -> None:
        try:
            outcome.append(record(engine, SPEC, rows))
        except Exception as exc:  # what the launch command would have printed
            outcome.append(exc)

    launching = threading.Thread(target=second)
    launching.start()
    # Wait, on the database's own word, until the second insert waits on the first.
    with engine.connect() as watch:
        for _ in range(2000):
            waiting = watch.scalar(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database()"
                )
            )
            if waiting or not launching.is_alive():
                break
            watch.execute(sa.text("SELECT pg_sleep(0.005)"))
            watch.rollback()  # pg_stat_activity is a snapshot kept for a transaction
    assert waiting == 1, outcome
    tx.commit()
    first.close()
    launching.join(timeout=30)
    (intake,) = outcome
    assert not isinstance(intake, Exception), intake
    assert intake.created is False
    with engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(campaigns)) == 1
        assert conn.scalar(sa.select(sa.func.count()).select_from(messages)) == 0
    engine.dispose()
