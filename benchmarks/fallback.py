"""Fallback decisions at scale (issue #22): a two-channel campaign (Zalo, then SMS) of a
million recipients on PostgreSQL, decided by ``ledger.channels.fallback.sweep`` as the
housekeeper runs it every two seconds.

Printed, all measured in this one run:

- a sweep while every Zalo message is sent and none is due yet (its window not passed):
  what a sweep costs on a campaign waiting on a million deliveries, every two seconds
  (the sweep must not read the campaign: it reads an index of the undecided by status
  and send time);
- a sweep deciding every recipient at once: a third delivered (their SMS spared), a
  third unreachable (their SMS queued at once), a third past the window (their SMS
  queued late): decisions a second, each with its event;
- the reference, in the same database: the same moves as three bare ``UPDATE … FROM``
  statements without events, marks or locks, the least the job needs; the ratio says
  what deciding recipient by recipient, safely, costs above that floor.

    uv run python -m benchmarks.fallback                  # 1,000,000 recipients
    uv run python -m benchmarks.fallback --recipients 100000
"""

from __future__ import annotations

import argparse
import time
from datetime import timedelta

import sqlalchemy as sa

from ledger.channels.fallback import sweep
from ledger.db import make_engine
from ledger.migrate import upgrade
from ledger.schema import now
from tests.rig import scratch_database

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
SPEC = {
    "id": "bench-fallback",
    "name": "Zalo, then SMS",
    "category": "public_service",
    "brandname": "NinhThuan",
    "provider": "sms",
    "validity": "720m",
    "messages": {"vi": {"text": "Cài Bluezone", "strip_diacritics": False}},
    "channels": [
        {"kind": "template", "name": "zalo", "provider": "zalo", "template": "1",
         "deliver_within": "30m"},
        {"kind": "text", "name": "sms"},
    ],
}  # fmt: skip

_CAMPAIGN = """
INSERT INTO campaigns (id, name, category, brandname, provider, spec, list_name, list_columns,
    intake, state, batches, created_at, valid_until)
VALUES ('bench-fallback', 'bench', 'public_service', 'NinhThuan', 'sms', %(spec)s, 'list.csv',
    '[]', '{}', 'running', 0, %(at)s, %(until)s)
RETURNING key
"""
_MESSAGES = """
INSERT INTO messages (campaign_key, recipient, country, carrier, list_row, language, encoding,
    parts, batch, status, provider, channel, fallback, sent_at)
SELECT %(key)s, '+849' || lpad(i::text, 8, '0'), 'VN', 'viettel', i, 'vi', 'ucs2', 1,
    i / 500 + c * 10000, CASE WHEN c = 0 THEN 'sent' ELSE 'standby' END,
    CASE WHEN c = 0 THEN 'zalo' ELSE 'sms' END, c, CASE WHEN c = 0 THEN 0 END,
    CASE WHEN c = 0 THEN %(sent)s END
FROM generate_series(1, %(n)s) AS i, generate_series(0, 1) AS c
"""
#: A third each: delivered, unreachable, and sent long enough ago to be late.
_OUTCOMES = """
UPDATE messages SET
    status = CASE list_row %% 3 WHEN 0 THEN 'delivered' WHEN 1 THEN 'unreachable' ELSE 'sent' END,
    sent_at = %(past)s
WHERE channel = 0
"""
#: The floor: the same moves, three statements, nothing else.
_BARE = (
    """UPDATE messages s SET status = 'unneeded' FROM messages z
       WHERE z.channel = 0 AND s.channel = 1 AND s.recipient = z.recipient
       AND z.status = 'delivered' AND s.status = 'standby'""",
    """UPDATE messages s SET status = 'queued' FROM messages z
       WHERE z.channel = 0 AND s.channel = 1 AND s.recipient = z.recipient
       AND z.status = 'unreachable' AND s.status = 'standby'""",
    """UPDATE messages s SET status = 'queued' FROM messages z
       WHERE z.channel = 0 AND s.channel = 1 AND s.recipient = z.recipient
       AND z.status = 'sent' AND z.sent_at <= %(cutoff)s AND s.status = 'standby'""",
)


def campaign(engine: sa.Engine, recipients: int) -> None:
    import json

    moment = now()
    with engine.begin() as conn:
        key = conn.exec_driver_sql(
            _CAMPAIGN,
            {"spec": json.dumps(SPEC), "at": moment, "until": moment + timedelta(hours=12)},
        ).scalar()
        conn.exec_driver_sql(_MESSAGES, {"key": key, "sent": moment, "n": recipients})
    with engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE messages")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=1_000_000)
    args = parser.parse_args()
    n = args.recipients
    with scratch_database(POSTGRES_URL, "loa_bench_fallback") as url:
        engine = make_engine(url)
        upgrade(engine)
        started = time.perf_counter()
        campaign(engine, n)
        print(f"ledger: postgresql, {n:,} recipients x 2 channels written in "
              f"{time.perf_counter() - started:.1f} s")  # fmt: skip

        started = time.perf_counter()
        idle = sweep(engine)
        waiting = time.perf_counter() - started
        assert idle.decided == 0
        print(f"sweep with {n:,} Zalo messages sent, none due: {waiting * 1000:.1f} ms")

        with engine.begin() as conn:
            conn.exec_driver_sql(_OUTCOMES, {"past": now() - timedelta(hours=1)})
            conn.exec_driver_sql("ANALYZE messages")
        started = time.perf_counter()
        swept = sweep(engine)
        seconds = time.perf_counter() - started
        queued = sum(swept.queued.values())
        decided = queued + swept.spared
        assert decided == n, (decided, n)
        print(
            f"sweep deciding every recipient: {decided:,} decisions ({queued:,} SMS queued, "
            f"{swept.spared:,} spared) in {seconds:.1f} s = {decided / seconds:,.0f}/s"
        )
        again = time.perf_counter()
        assert sweep(engine).decided == 0
        print(f"the sweep after (nothing left): {(time.perf_counter() - again) * 1000:.1f} ms")

    with scratch_database(POSTGRES_URL, "loa_bench_fallback") as url:
        engine = make_engine(url)
        upgrade(engine)
        campaign(engine, n)
        with engine.begin() as conn:
            conn.exec_driver_sql(_OUTCOMES, {"past": now() - timedelta(hours=1)})
            conn.exec_driver_sql("ANALYZE messages")
        started = time.perf_counter()
        with engine.begin() as conn:
            moved = sum(
                conn.exec_driver_sql(sql, {"cutoff": now() - timedelta(minutes=30)}).rowcount
                for sql in _BARE
            )
        bare = time.perf_counter() - started
        assert moved == n
        print(
            f"reference, same moves as three bare UPDATE ... FROM (no events, marks, locks): "
            f"{bare:.1f} s = {n / bare:,.0f}/s; the sweep takes {seconds / bare:.1f}x the floor"
        )


if __name__ == "__main__":
    main()
