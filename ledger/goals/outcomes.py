"""Importing a goal's outcomes as they really arrive (issue #24): counts per area and day
(the app's backend publishes installs per district), or the numbers that acted.

Counts: a CSV of ``area,date,count`` (``khu vực``/``huyện``, ``ngày``, ``số lượng`` as
well; dates ``YYYY-MM-DD`` or ``DD/MM/YYYY``). Each count is that day's new outcomes in
that area. Importing a day again replaces it, never adds twice: one row per area and day
(``ledger.schema.outcome_counts``).

Numbers: a list of phone numbers (and, optionally, the day each acted). A number is never
stored: only its keyed HMAC under the retention key (``ledger.retention.pseudonym``),
which is what a recipient's number becomes when retention runs, so the two still meet.
A number acting twice counts once, on its first day.

Checked before anything is written, each named by its row (the header is row 1) and
field: an area the goal's population does not have, a date in the future (Vietnam's
day), a count that is negative or not a whole number, an area whose counts would add up
to more than its population. The whole file is refused (nothing written), or, told
``skip_bad``, its good rows taken and the bad ones listed. One import is one transaction
and one event in the audit log (how many rows, days and areas; never a number).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from campaigns.goals import AREA_HEADERS, Goal, area_matcher, column, fold, whole_number
from campaigns.hours import VIETNAM
from campaigns.limits import figure
from campaigns.recipients import sniff_delimiter
from ledger.audit.actions import record_action
from ledger.bulk import refresh_statistics
from ledger.schema import now, outcome_acts, outcome_counts

#: The words naming each column (folded), as ``campaigns.goals.column`` matches them;
#: the area's are the population file's (``AREA_HEADERS``).
DAY = ("date", "day", "ngay")
COUNT = ("count", "installs", "so luong", "so cai dat", "luot cai", "so nguoi")
PHONE = ("phone", "number", "so dien thoai", "sdt", "dien thoai")
CHUNK = 10_000
#: Bad rows listed at most (all of them are counted).
MAX_LISTED = 1000


class OutcomeError(ValueError):
    """An outcome file refused whole; the message names the file, and each bad row and
    field (``rows``: those lines)."""

    def __init__(self, message: str, rows: list[str] | None = None) -> None:
        super().__init__(message)
        self.rows = rows or []


@dataclass
class Imported:
    """What an import took: rows read and taken, the days and areas it touched, the
    counts it replaced, and the bad rows it skipped (``skip_bad``)."""

    kind: str
    rows_read: int = 0
    taken: int = 0
    replaced: int = 0
    days: list[str] = field(default_factory=list)
    areas: int = 0
    skipped: list[str] = field(default_factory=list)  # at most MAX_LISTED of them
    skipped_count: int = 0  # all of them
    #: Campaigns in the ledger serving the goal (none: the import is kept for those to come).
    served_by: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        # Counts replace a day's; numbers are new, or known already (kept before, or
        # repeated in the file): each kept once, on its first day.
        again = "replaced" if self.kind == "counts" else "already"
        return {
            "kind": self.kind,
            "rows_read": self.rows_read,
            "taken": self.taken,
            again: self.replaced,
            "days": self.days,
            "areas": self.areas,
            "skipped": self.skipped,
            "skipped_count": self.skipped_count,
            "served_by": self.served_by,
        }


def today() -> date:
    """Vietnam's day now."""
    return datetime.now(VIETNAM).date()


#: The earliest day an outcome can have: before it, a date is a typo (``25/08/20`` read
#: as the year 20), not an outcome.
EARLIEST = date(2000, 1, 1)


@lru_cache(maxsize=4096)
def parse_day(text: str) -> date | None:
    """``2020-08-25`` or ``25/08/2020`` (Vietnam's order; ``-`` or ``/``), the year in
    four digits and from 2000; ``None`` for anything else."""
    parts = text.strip().replace("/", "-").split("-")
    if len(parts) != 3 or not all(part.isascii() and part.isdigit() for part in parts):
        return None
    if len(parts[0]) == 4:
        year, month, day = parts
    elif len(parts[2]) == 4:
        day, month, year = parts
    else:
        return None
    if len(month) > 2 or len(day) > 2:
        return None
    try:
        found = date(int(year), int(month), int(day))
    except ValueError:
        return None
    return found if found >= EARLIEST else None


def _columns(header: list[str], wanted: dict[str, tuple[str, ...]]) -> dict[str, int]:
    found = {}
    for name, words in wanted.items():
        place = column(header, words)
        if place is not None:
            found[name] = place
    return found


def _rows(path: Path) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise OutcomeError(f"{path}: cannot read it ({exc.strerror})") from None
    try:
        first = handle.readline()
        handle.seek(0)
        reader = csv.reader(handle, delimiter=sniff_delimiter(first))
        header = next(reader, [])
    except (UnicodeDecodeError, csv.Error):
        handle.close()
        raise OutcomeError(f"{path}: not CSV in UTF-8; save it as CSV UTF-8") from None

    def rows() -> Iterator[tuple[int, list[str]]]:
        with handle:
            try:
                for number, row in enumerate(reader, start=2):
                    if any(cell.strip() for cell in row):
                        yield number, row
            except (UnicodeDecodeError, csv.Error) as exc:
                raise OutcomeError(f"{path}: row {reader.line_num}: unreadable ({exc})") from None

    return header, rows()


def import_counts(
    engine: Engine,
    goal: Goal,
    population: dict[str, tuple[str, int]],
    path: Path,
    *,
    skip_bad: bool = False,
    source: str | None = None,
) -> Imported:
    """Import a file of counts per area and day for ``goal`` (see the module).

    Raises:
        OutcomeError: a header without its columns; bad rows without ``skip_bad`` (named,
            nothing written).
    """
    header, rows = _rows(path)
    areas = (*AREA_HEADERS, fold(goal.area_column))  # the list's own word for it too
    places = _columns(header, {"area": areas, "day": DAY, "count": COUNT})
    missing = [name for name in ("area", "day", "count") if name not in places]
    if missing:
        raise OutcomeError(
            f"{path}: row 1: the header needs {', '.join(missing)} (area, date, count; "
            f"khu vực, ngày, số lượng); it has {', '.join(header) or 'none'}"
        )
    said = {name: header[place] for name, place in places.items()}
    done = Imported("counts")
    good: dict[tuple[str, date], tuple[int, int]] = {}  # (area, day) -> (count, row)
    bad: list[str] = []
    latest = today()
    area_of = area_matcher(population)
    for number, row in rows:
        done.rows_read += 1
        cell = {
            name: (row[place].strip() if place < len(row) else "") for name, place in places.items()
        }
        area, day, raw = area_of(cell["area"]), parse_day(cell["day"]), cell["count"]
        count = whole_number(raw)
        if area not in population:
            bad.append(f"row {number}: {said['area']}: {cell['area']!r} is no area of the goal")
        elif day is None:
            bad.append(f"row {number}: {said['day']}: {cell['day']!r} is not a date "
                       "(YYYY-MM-DD or DD/MM/YYYY, from 2000)")  # fmt: skip
        elif day > latest:
            bad.append(f"row {number}: {said['day']}: {day.isoformat()} is in the future")
        elif count is None:
            bad.append(
                f"row {number}: {said['count']}: {raw!r} is not a count (a whole number ≥ 0)"
            )
        elif (area, day) in good:
            bad.append(f"row {number}: {said['area']}: {cell['area']} on {day.isoformat()} twice "
                       f"(row {good[(area, day)][1]} too)")  # fmt: skip
        else:
            good[(area, day)] = (count, number)
    with engine.begin() as conn:
        done.served_by = begin_import(conn, goal, population)
        kept = _kept_totals(conn, goal.name, {day for _, day in good})
        totals: dict[str, int] = dict(kept)
        for (area, _), (count, _) in good.items():
            totals[area] = totals.get(area, 0) + count
        over = {area for area, total in totals.items() if total > population[area][1]}
        for (area, _day), (_count, number) in sorted(good.items(), key=lambda item: item[1][1]):
            if area in over:
                bad.append(
                    f"row {number}: {said['count']}: {population[area][0]} would count "
                    f"{figure(totals[area])} of a population of {figure(population[area][1])}"
                )
        for area in over:
            good = {key: value for key, value in good.items() if key[0] != area}
        if bad and not skip_bad:
            raise OutcomeError(f"{path}: {len(bad)} rows refused, nothing imported", bad)
        done.skipped, done.skipped_count = bad[:MAX_LISTED], len(bad)
        replaced = _replace(conn, goal.name, good)
        done.taken, done.replaced = len(good), replaced
        done.days = sorted({day.isoformat() for _, day in good})
        done.areas = len({area for area, _ in good})
        record_action(conn, "outcomes_imported", goal=goal.name, kind="counts",
                      source=source, rows=done.rows_read, taken=done.taken,
                      replaced=replaced, skipped=len(bad), days=done.days)  # fmt: skip
    return done


def begin_import(conn: Any, goal: Goal, population: dict[str, tuple[str, int]] | None) -> list[str]:
    """What every import does first, in its transaction: waits for any other import of
    the same goal to end (PostgreSQL: a lock on the goal's name; two imports at once
    would each check the population against counts the other is writing, or meet on the
    same number), and checks the goal as given against the goal the ledger's campaigns
    carry under its name.

    Returns:
        The campaigns serving the goal (none: the outcomes are kept for those to come).

    Raises:
        OutcomeError: a campaign carries a goal of this name with other areas or
            populations (a goal's name names one population: counts would be checked
            against one and reported against another).
    """
    from ledger.goals.serving import serving

    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:goal))"), {"goal": goal.name})
    served = []
    for campaign in serving(conn, goal.name):
        carried = campaign.goal["areas"]
        areas = {area: (name, people) for area, (name, people) in carried.items()}
        if population is not None and areas != population:
            raise OutcomeError(
                f"goal {goal.name!r}: campaign {campaign.id} carries it with other areas or "
                "populations than this goal file's: a goal's name names one population. "
                "Import with the goal file that campaign was launched with, or give this "
                "goal a name of its own."
            )
        served.append(campaign.id)
    return served


def _same_key(conn: Any, goal: str, key: str) -> None:
    """Record the key the goal's numbers are kept under, or check it is the one before.

    Raises:
        OutcomeError: they were kept under another key (the two would never meet).
    """
    from ledger.retention import fingerprint
    from ledger.schema import goal_keys

    mine = fingerprint(key)
    kept = conn.scalar(sa.select(goal_keys.c.fingerprint).where(goal_keys.c.goal == goal))
    if kept is None:
        conn.execute(goal_keys.insert().values(goal=goal, fingerprint=mine, recorded_at=now()))
    elif kept != mine:
        raise OutcomeError(
            f"goal {goal!r}: its numbers that acted were kept under another "
            f"LOA_RETENTION_KEY (fingerprint {kept}; this one's is {mine}): numbers kept "
            "under two keys never meet. Import with the key they were kept under."
        )


def _kept_totals(conn: Any, goal: str, days: set[date]) -> dict[str, int]:
    """Per area, the counts already kept on days this import does not replace."""
    query = (
        sa.select(outcome_counts.c.area, sa.func.sum(outcome_counts.c.count))
        .where(outcome_counts.c.goal == goal)
        .group_by(outcome_counts.c.area)
    )
    if days:
        query = query.where(outcome_counts.c.day.not_in(sorted(days)))
    return {area: int(total) for area, total in conn.execute(query)}


def _replace(conn: Any, goal: str, good: dict[tuple[str, date], tuple[int, int]]) -> int:
    """Write ``good``'s counts, each replacing its area and day; returns how many were
    there before."""
    replaced = 0
    stamp = now()
    pairs = list(good.items())
    for start in range(0, len(pairs), CHUNK):
        chunk = pairs[start : start + CHUNK]
        replaced += conn.execute(  # one statement a chunk, not one a row (26 s for 84,000)
            outcome_counts.delete().where(
                outcome_counts.c.goal == goal,
                sa.tuple_(outcome_counts.c.area, outcome_counts.c.day).in_(
                    [(area, day) for (area, day), _ in chunk]
                ),
            )
        ).rowcount
        conn.execute(
            outcome_counts.insert(),
            [
                {"goal": goal, "area": area, "day": day, "count": count, "imported_at": stamp}
                for (area, day), (count, _) in chunk
            ],
        )
    return replaced


def import_numbers(
    engine: Engine,
    goal: Goal,
    path: Path,
    key: str,
    *,
    skip_bad: bool = False,
    source: str | None = None,
    population: dict[str, tuple[str, int]] | None = None,
) -> Imported:
    """Import the numbers that acted (see the module): each kept as its keyed HMAC under
    ``key`` (the retention key), on its first day. ``population``: the goal's, checked
    against the campaigns carrying the goal (``begin_import``). Streamed in chunks of
    ``CHUNK`` rows within one transaction, so memory stays flat whatever the file's size.

    Raises:
        OutcomeError: no phone column; bad rows without ``skip_bad`` (nothing written).
    """
    from campaigns.phones import PhoneRejected, normalise
    from ledger.retention import pseudonymiser

    header, rows = _rows(path)
    places = _columns(header, {"phone": PHONE, "day": DAY})
    if "phone" not in places:
        raise OutcomeError(
            f"{path}: row 1: the header needs a phone column (phone, số điện thoại); it has "
            f"{', '.join(_masked(cell) for cell in header) or 'none'}"
        )
    said = {name: header[place] for name, place in places.items()}
    phone_at, day_at = places["phone"], places.get("day")
    pseudonym_of = pseudonymiser(key)
    done = Imported("numbers")
    latest = today()
    bad: list[str] = []
    refused = 0
    days: set[date] = set()
    with engine.begin() as conn:
        done.served_by = begin_import(conn, goal, population)
        _same_key(conn, goal.name, key)
        writer = _ActsWriter(conn, goal.name)
        chunk: dict[str, date] = {}
        for number, row in rows:
            done.rows_read += 1
            raw = row[phone_at].strip() if phone_at < len(row) else ""
            text = row[day_at].strip() if day_at is not None and day_at < len(row) else ""
            day = parse_day(text) if text else latest
            why = None
            try:
                e164 = normalise(raw).e164
            except PhoneRejected as rejected:
                why = (f"row {number}: {said['phone']}: {_masked(raw)!r} is not a textable "
                       f"number ({rejected.reason.value})")  # fmt: skip
            else:
                if day is None:
                    why = f"row {number}: {said['day']}: {_masked(text)!r} is not a date"
                elif day > latest:
                    why = f"row {number}: {said['day']}: {day.isoformat()} is in the future"
            if why is not None:
                refused += 1
                if len(bad) < MAX_LISTED:
                    bad.append(why)
                continue
            assert day is not None
            who = pseudonym_of(e164)
            chunk[who] = min(day, chunk.get(who, day))
            if len(chunk) >= CHUNK:
                writer.write(chunk)
                days.update(chunk.values())
                chunk = {}
        writer.write(chunk)
        days.update(chunk.values())
        if refused and not skip_bad:
            raise OutcomeError(f"{path}: {refused} rows refused, nothing imported", bad)
        writer.finish()
        refresh_statistics(conn, outcome_acts)  # a goal section may follow at once
        done.skipped, done.skipped_count = bad, refused
        # Known: kept before this import, or repeated in the file.
        done.taken, done.replaced = writer.new, done.rows_read - refused - writer.new
        done.days = sorted(day.isoformat() for day in days)
        record_action(conn, "outcomes_imported", goal=goal.name, kind="numbers",
                      source=source, rows=done.rows_read, taken=done.taken,
                      already=done.replaced, skipped=refused)  # fmt: skip
    return done


class _ActsWriter:
    """Keeps each number's first day, in the caller's transaction: the chunks go into a
    temporary table as they come (COPY's text form on PostgreSQL: the values are letters,
    digits and dates, nothing to escape), then one statement keeps each number once, on
    its earliest day, beside those kept before (an earlier day moving it). The database
    does the matching: no lookup of each chunk, no number held in Python past its chunk.
    ``finish`` counts ``new``."""

    TABLE = "loa_outcome_acts_in"

    def __init__(self, conn: Any, goal: str) -> None:
        self.conn, self.goal, self.written = conn, goal, 0
        self.new = 0
        self.postgres = conn.dialect.name == "postgresql"
        drop = " ON COMMIT DROP" if self.postgres else ""
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {self.TABLE}")
        conn.exec_driver_sql(
            f"CREATE TEMPORARY TABLE {self.TABLE} (who VARCHAR(64) NOT NULL, "
            f"day {'DATE' if self.postgres else 'VARCHAR(10)'} NOT NULL){drop}"
        )

    def write(self, chunk: dict[str, date]) -> None:
        if not chunk:
            return
        self.written += len(chunk)
        if self.postgres:
            dbapi = self.conn.connection.dbapi_connection
            with dbapi.cursor() as cursor, cursor.copy(f"COPY {self.TABLE} FROM STDIN") as copy:
                copy.write("".join([f"{who}\t{day.isoformat()}\n" for who, day in chunk.items()]))
        else:
            self.conn.exec_driver_sql(
                f"INSERT INTO {self.TABLE} VALUES (?, ?)",
                [(who, day.isoformat()) for who, day in chunk.items()],
            )

    def finish(self) -> None:
        """Keep what was written: each number once, its earliest day."""
        stamp = outcome_acts.c.imported_at.type.bind_processor(self.conn.dialect)
        kept = sa.select(sa.func.count()).where(outcome_acts.c.goal == self.goal)
        before = self.conn.scalar(kept)
        # (SQLite reads an upsert after a SELECT only with a WHERE: "WHERE true".)
        self.conn.execute(
            sa.text(
                "INSERT INTO outcome_acts (goal, who, day, imported_at) "
                f"SELECT :goal, who, MIN(day), :stamp FROM {self.TABLE} WHERE true GROUP BY who "
                "ON CONFLICT (goal, who) DO UPDATE SET day = excluded.day "
                "WHERE excluded.day < outcome_acts.day"
            ),
            {"goal": self.goal, "stamp": stamp(now()) if stamp else now()},
        )
        self.new = self.conn.scalar(kept) - before
        self.conn.exec_driver_sql(f"DROP TABLE {self.TABLE}")


def _masked(raw: str) -> str:
    """A cell that may hold a number, as said: its first four and last two characters
    when it has seven digits or more (a landline, a mistyped mobile, a number in the
    date's column: never said whole); other text as it is."""
    raw = raw.strip()
    if len(raw) <= 6 or sum(c.isdigit() for c in raw) < 7:
        return raw
    return raw[:4] + "*" * (len(raw) - 6) + raw[-2:]
