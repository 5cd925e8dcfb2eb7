"""``LOA_RETENTION_DAYS`` (default 90) as ``loa retention apply`` reads it: a finished
message's number is replaced by its keyed HMAC once it has been final that long, and not
before."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import sqlalchemy as sa

from campaigns.recipients import ListRow
from ledger.db import make_engine
from ledger.migrate import upgrade
from ledger.schema import messages, now
from tests.helpers import record
from tests.scripts.test_cli import loa
from tests.worker.test_dispatch import SPEC

KEY = "khoá-bí-mật-của-sở-tttt-ninh-thuận"
#: Days since each recipient's message became final.
ENDED = {"0912345601": 20, "0912345602": 40, "0912345603": 100}


@pytest.mark.parametrize(
    ("days", "replaced"),
    [
        ("30", {"0912345602", "0912345603"}),
        (None, {"0912345603"}),  # the default, 90
        ("365", set()),
    ],
)
def test_numbers_are_replaced_once_final_for_loa_retention_days(days, replaced, tmp_path):
    url = f"sqlite:///{(tmp_path / 'ledger.db').as_posix()}"
    engine = make_engine(url)
    upgrade(engine)
    rows = [ListRow(row=i + 2, phone=phone, values=()) for i, phone in enumerate(ENDED)]
    record(engine, SPEC, rows)
    with engine.begin() as conn:
        for phone, ago in ENDED.items():
            conn.execute(
                sa.update(messages)
                .where(messages.c.recipient == "+84" + phone[1:])
                .values(status="delivered", final_at=now() - timedelta(days=ago))
            )
    env = {"LOA_DATABASE_URL": url, "LOA_RETENTION_KEY": KEY}
    if days is not None:
        env["LOA_RETENTION_DAYS"] = days
    applied = loa("retention", "apply", "--json", cwd=tmp_path, env=env)
    assert applied.returncode == 0, applied.stderr
    done = json.loads(applied.stdout)
    assert done["older_than_days"] == int(days or 90)
    assert done["numbers"] == len(replaced)
    with engine.connect() as conn:
        left = set(conn.scalars(sa.select(messages.c.recipient)))
    engine.dispose()
    kept = {"+84" + phone[1:] for phone in ENDED if phone not in replaced}
    assert {r for r in left if not r.startswith("h:")} == kept
