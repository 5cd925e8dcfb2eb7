"""Fallback decisions at scale (issue #22): a two-channel campaign (Zalo, then SMS) of a
million recipients on PostgreSQL, decided by ``ledger.channels.fallback.sweep`` as the
housekeeper runs it every two seconds.

Printed, all measured in this one run, in the same database, subject and reference in
turn (``benchmarks.figures``: medians of the rounds):

- a sweep while every Zalo message is sent and none is due yet (its window not passed):
  what a sweep costs on a campaign waiting on a million deliveries, every two seconds
  (the sweep must not read the campaign: it reads an index of the undecided by status
  and send time); its reference, one bare due lookup (the largest kind: sent, past the
  window, ``LIMIT 2000``) through the same index and driver, 30 of each in turn;
- a sweep deciding every recipient at once: a third delivered (their SMS spared), a
  third unreachable (their SMS queued at once), a third past the window (their SMS
  queued late): decisions a second, each with its event;
- the reference, in the same database: the same moves as three bare ``UPDATE … FROM``
  statements without events, marks or locks, the least the job needs; the ratio says
  what deciding recipient by recipient, safely, costs above that floor. Each round of
  either starts from the same ledger (the SMS back to ``standby``, the marks open, the
  events gone, vacuumed; untimed).

    uv run python -m benchmarks.fallback                  # 1,000,000 recipients, 1 round
    uv run python -m benchmarks.fallback --quick          # 20,000 recipients, 3 rounds
    uv run python -m benchmarks.fallback --recipients 100000 --rounds 3
"""

from __future__ import annotations

import argparse
import time
from datetime import timedelta

import sqlalchemy as sa

from benchmarks import figures
from benchmarks.figures import Figure
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


#: Each round starts from the same ledger: the next messages back to ``standby``, the
#: marks open again, the sweep's events gone (triggers off for this one, untimed,
#: transaction: ``events`` is append-only), then vacuumed so neither side meets the
#: other's dead rows.
_RESET = (
    """UPDATE messages SET status = 'standby', error_code = NULL, final_at = NULL,
       updated_at = NULL WHERE channel = 1 AND status <> 'standby'""",
    "UPDATE messages SET fallback = 0 WHERE channel = 0 AND fallback <> 0",
    "SET LOCAL session_replication_role = replica",
    "DELETE FROM events",
)
#: The idle floor: the largest kind of the due lookup (sent, past the window), bare.
_DUE = """
SELECT id, recipient, status, fallback, error_code FROM messages
WHERE campaign_key = %(key)s AND channel = 0 AND status = 'sent' AND fallback = 0
    AND sent_at <= %(cutoff)s
LIMIT 2000
"""


def reset(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        for sql in _RESET:
            conn.exec_driver_sql(sql)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE messages, events")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, help="default 1,000,000 (--quick: 20,000)")
    parser.add_argument("--rounds", type=int, help="of each side (default 1; --quick: 3)")
    parser.add_argument("--quick", action="store_true", help="small sizes, ~15 s in all")
    parser.add_argument("--postgres", default=POSTGRES_URL)
    parser.add_argument("--prefix", default="loa_bench_fallback")
    args = parser.parse_args()
    n = args.recipients or (20_000 if args.quick else 1_000_000)
    rounds = args.rounds or (3 if args.quick else 1)
    with scratch_database(args.postgres, args.prefix) as url:
        engine = make_engine(url)
        upgrade(engine)
        started = time.perf_counter()
        campaign(engine, n)
        print(f"ledger: postgresql, {n:,} recipients x 2 channels written in "
              f"{time.perf_counter() - started:.1f} s")  # fmt: skip
        with engine.connect() as conn:
            key = conn.exec_driver_sql("SELECT key FROM campaigns").scalar()

        def idle_sweep() -> float:
            took = figures.seconds_of(lambda: sweep(engine)) * 1000
            return took

        def idle_floor() -> float:
            cutoff = now() - timedelta(minutes=30)
            with engine.begin() as conn:
                return figures.seconds_of(
                    lambda: conn.exec_driver_sql(_DUE, {"key": key, "cutoff": cutoff}).all()
                ) * 1000  # fmt: skip

        assert sweep(engine).decided == 0
        waiting, waiting_floor = figures.interleaved(idle_sweep, idle_floor, 30)
        print(f"sweep with {n:,} Zalo messages sent, none due: {waiting:.1f} ms "
              f"(median of 30; one bare due lookup {waiting_floor:.2f} ms)")  # fmt: skip

        with engine.begin() as conn:
            conn.exec_driver_sql(_OUTCOMES, {"past": now() - timedelta(hours=1)})
        spared_counts: list[int] = []

        def deciding() -> float:
            reset(engine)
            started = time.perf_counter()
            swept = sweep(engine)
            took = time.perf_counter() - started
            queued = sum(swept.queued.values())
            assert queued + swept.spared == n, (queued, swept.spared, n)
            spared_counts.append(swept.spared)
            return took

        def bare() -> float:
            reset(engine)
            cutoff = now() - timedelta(minutes=30)
            started = time.perf_counter()
            with engine.begin() as conn:
                moved = sum(conn.exec_driver_sql(sql, {"cutoff": cutoff}).rowcount for sql in _BARE)
            took = time.perf_counter() - started
            assert moved == n, (moved, n)
            return took

        seconds, floor = figures.interleaved(deciding, bare, rounds)
        spared = spared_counts[-1]
        print(
            f"sweep deciding every recipient: {n:,} decisions ({n - spared:,} SMS queued, "
            f"{spared:,} spared) in {seconds:.2f} s = {n / seconds:,.0f}/s (median of {rounds})"
        )
        again = time.perf_counter()
        assert sweep(engine).decided == 0
        print(f"the sweep after (nothing left): {(time.perf_counter() - again) * 1000:.1f} ms")
        print(
            f"reference, same moves as three bare UPDATE ... FROM (no events, marks, locks): "
            f"{floor:.2f} s = {n / floor:,.0f}/s; the sweep takes {seconds / floor:.1f}x the floor"
        )
        engine.dispose()
    figures.report(
        [
            Figure(
                benchmark="fallback",
                measure=f"sweep, {n:,} Zalo sent, none due",
                value=waiting,
                unit="ms",
                reference=waiting_floor,
                reference_name="one bare due lookup",
                better="lower",
            ),
            Figure(
                benchmark="fallback",
                measure=f"sweep deciding {n:,} recipients",
                value=n / seconds,
                unit="decisions/s",
                reference=n / floor,
                reference_name="3 bare UPDATE … FROM",
                better="higher",
            ),
        ]
    )


if __name__ == "__main__":
    main()
