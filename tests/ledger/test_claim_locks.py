"""The locks a release takes on PostgreSQL: the message's row for its move, and the
campaign's row only shared (to see a cancel), so that workers giving back claims of one
campaign at the same moment never wait for each other."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from campaigns.status import Status
from ledger.db import make_engine
from ledger.messages import claim_batch, record_outcome, release
from ledger.migrate import upgrade
from ledger.schema import campaigns, messages
from tests.ledger.test_claim_rules import launch
from tests.ledger.test_ledger import SPEC

pytestmark = pytest.mark.postgres


@pytest.fixture
def impatient(postgres_url):
    """A ledger whose sessions give up on a lock after a few seconds instead of waiting
    for good: a wait that should not happen fails the test instead of hanging it."""
    engine = make_engine(postgres_url)
    sa.event.listen(engine, "connect", _lock_timeout)
    upgrade(engine)
    yield engine
    engine.dispose()


def _lock_timeout(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("SET lock_timeout = '5s'")
    cursor.close()
    dbapi_connection.commit()


def test_releases_in_one_campaign_do_not_wait_for_each_other(impatient):
    launch(impatient, count=4, batch_size=2)
    first, second = claim_batch(impatient, SPEC.id, 1), claim_batch(impatient, SPEC.id, 2)
    with impatient.connect() as other_worker, other_worker.begin():
        # Another worker's release is under way: it holds its message and, shared, the
        # campaign's row (as ``_cancelled`` reads it).
        other_worker.execute(
            sa.select(campaigns.c.state).where(campaigns.c.id == SPEC.id).with_for_update(read=True)
        )
        other_worker.execute(
            sa.select(messages.c.id).where(messages.c.id == first[0].id).with_for_update()
        )
        assert release(impatient, [m.id for m in second], code="http_503") == 2
        assert record_outcome(impatient, first[1].id, Status.FAILED, "worker", "0x0b")
    with impatient.connect() as conn:
        statuses = dict(conn.execute(sa.select(messages.c.id, messages.c.status)).all())
    assert [statuses[m.id] for m in second] == ["queued", "queued"]
    assert statuses[first[1].id] == "failed"


def test_two_schedulers_start_a_campaign_once(impatient):
    """The other scheduler has set the campaign running but not committed yet when this
    one looks: this one waits for its row, then finds it started already."""
    from ledger.messages import start_due
    from ledger.schema import now
    from tests.worker.test_control import _wait_for_a_lock_wait

    launch(impatient, count=1)
    moment = now()
    with impatient.begin() as conn:
        conn.execute(campaigns.update().values(state="scheduled", start_at=moment))
    other = impatient.connect()
    transaction = other.begin()
    other.execute(
        campaigns.update()
        .where(campaigns.c.id == SPEC.id, campaigns.c.state == "scheduled")
        .values(state="running")
    )
    started: list[list[str]] = []
    slow = make_engine(impatient.url)  # this scheduler waits as long as the other takes
    thread = threading.Thread(target=lambda: started.append(start_due(slow, moment)))
    thread.start()
    try:
        _wait_for_a_lock_wait(impatient)
    finally:
        transaction.commit()
        other.close()
        thread.join(timeout=60)
        slow.dispose()
    assert started == [[]]
