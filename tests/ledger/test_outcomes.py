"""A goal's outcomes imported as they arrive (``ledger.goals.outcomes``), on both
ledgers: a day imported again replaces it and never adds twice; a bad row refuses the
file (nothing written) or, told so, is skipped and listed; the numbers that acted kept
only as their keyed HMAC; every import one event in the log."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from campaigns.goals import parse_goal
from ledger.goals.outcomes import OutcomeError, import_counts, import_numbers, today
from ledger.retention import pseudonym
from ledger.schema import events, outcome_acts, outcome_counts

GOAL = parse_goal(
    {"name": "Cài Bluezone", "target": 0.5, "deadline": "2020-09-30", "population": "p.csv"},
    "goal",
)
POPULATION = {"phan rang thap cham": ("Phan Rang–Tháp Chàm", 1000), "ninh hai": ("Ninh Hải", 500)}
KEY = "khoa-giu-lai-mot-hai-ba-bon-nam-sau"


def counts(engine) -> dict[tuple[str, str], int]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(outcome_counts.c.area, outcome_counts.c.day,
                                      outcome_counts.c.count)).all()  # fmt: skip
    return {(area, day.isoformat()): count for area, day, count in rows}


def written(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_day_imported_again_replaces_it_and_never_adds_twice(engine, tmp_path):
    first = written(tmp_path, "d1.csv", "Huyện,Ngày,Số lượng\nPhan Rang - Thap Cham,25/08/2020,120\n"
                    "Ninh Hải,2020-08-25,40\n")  # fmt: skip
    done = import_counts(engine, GOAL, POPULATION, first)
    assert (done.taken, done.replaced, done.days) == (2, 0, ["2020-08-25"])
    again = written(tmp_path, "d1b.csv", "area,date,count\nPhan Rang–Tháp Chàm,2020-08-25,130\n"
                    "Ninh Hải,2020-08-26,10\n")  # fmt: skip
    done = import_counts(engine, GOAL, POPULATION, again)
    assert (done.taken, done.replaced) == (2, 1)
    assert counts(engine) == {
        ("phan rang thap cham", "2020-08-25"): 130,  # replaced, not 250
        ("ninh hai", "2020-08-25"): 40,
        ("ninh hai", "2020-08-26"): 10,
    }
    with engine.connect() as conn:
        kept = conn.scalars(sa.select(events.c.detail).order_by(events.c.id)).all()
    imports = [d for d in kept if d and d.get("action") == "outcomes_imported"]
    assert [d["taken"] for d in imports] == [2, 2] and imports[0]["goal"] == "Cài Bluezone"


@pytest.mark.parametrize(
    ("row", "said"),
    [
        ("Ninh Sơn,2020-08-25,5", "row 3: area: 'Ninh Sơn' is no area of the goal"),
        ("Ninh Hải,mai,5", "row 3: date: 'mai' is not a date"),
        ("Ninh Hải,{future},5", "is in the future"),
        ("Ninh Hải,2020-08-25,-5", "row 3: count: '-5' is not a count"),
        ("Ninh Hải,2020-08-25,năm", "row 3: count: 'năm' is not a count"),
        (
            "Ninh Hải,2020-08-25,501",
            "row 3: count: Ninh Hải would count 501 of a population of 500",
        ),
        (
            "Phan Rang–Tháp Chàm,2020-08-24,1",
            "row 3: area: Phan Rang–Tháp Chàm on 2020-08-24 twice",
        ),
        # Once 2.5 was stored as 25 and "1,5" as 15: thousands only in groups of three.
        ("Ninh Hải,2020-08-25,2.5", "row 3: count: '2.5' is not a count"),
        ('Ninh Hải,2020-08-25,"1,5"', "row 3: count: '1,5' is not a count"),
        ("Ninh Hải,2020-08-25,²", "row 3: count: '²' is not a count"),
        ("Ninh Hải,2020-08-25," + "9" * 5000, "row 3: count: '999"),
        ("Ninh Hải,25/08/20,5", "row 3: date: '25/08/20' is not a date"),
        ("Ninh Hải,1/1/1,5", "row 3: date: '1/1/1' is not a date"),
        ("!!,2020-08-25,5", "row 3: area: '!!' is no area of the goal"),
    ],
    ids=[
        "area",
        "date",
        "future",
        "negative",
        "words",
        "over",
        "twice",
        "decimal",
        "decimal-comma",
        "superscript",
        "digits",
        "two-digit-year",
        "year-1",
        "punctuation",
    ],
)
def test_a_bad_row_refuses_the_file_or_is_skipped_when_told(engine, tmp_path, row, said):
    future = (today() + timedelta(days=1)).isoformat()
    text = f"area,date,count\nPhan Rang–Tháp Chàm,2020-08-24,100\n{row.format(future=future)}\n"
    path = written(tmp_path, "bad.csv", text)
    with pytest.raises(OutcomeError) as refused:
        import_counts(engine, GOAL, POPULATION, path)
    assert str(refused.value).startswith(f"{path}: 1 rows refused, nothing imported")
    assert any(said in line for line in refused.value.rows), refused.value.rows
    assert counts(engine) == {}
    done = import_counts(engine, GOAL, POPULATION, path, skip_bad=True)
    assert done.skipped and said in done.skipped[0]
    assert counts(engine).get(("phan rang thap cham", "2020-08-24")) in (100, None)


def test_counts_over_the_population_across_days_are_refused(engine, tmp_path):
    import_counts(engine, GOAL, POPULATION, written(tmp_path, "a.csv",
                  "area,date,count\nNinh Hải,2020-08-24,300\n"))  # fmt: skip
    later = written(tmp_path, "b.csv", "area,date,count\nNinh Hải,2020-08-25,300\n")
    with pytest.raises(OutcomeError) as refused:
        import_counts(engine, GOAL, POPULATION, later)
    assert "would count 600 of a population of 500" in refused.value.rows[0]
    # The same day again, corrected, replaces: no sum past the population.
    import_counts(engine, GOAL, POPULATION, written(tmp_path, "c.csv",
                  "area,date,count\nNinh Hải,2020-08-24,450\n"))  # fmt: skip
    assert counts(engine) == {("ninh hai", "2020-08-24"): 450}


def test_the_numbers_that_acted_are_kept_only_as_their_keyed_hmac(engine, tmp_path):
    path = written(tmp_path, "da-cai.csv", "Số điện thoại,Ngày\n0912345678,26/08/2020\n"
                   "+84912345678,2020-08-25\n0987654321,\n")  # fmt: skip
    done = import_numbers(engine, GOAL, path, KEY)
    assert (done.rows_read, done.taken, done.replaced) == (3, 2, 1)  # one repeated in the file
    with engine.connect() as conn:
        kept = dict(conn.execute(sa.select(outcome_acts.c.who, outcome_acts.c.day)).all())
        text = str(conn.execute(sa.select(events.c.detail)).all())
    assert kept[pseudonym(KEY, "+84912345678")] == date(2020, 8, 25)  # its first day
    assert kept[pseudonym(KEY, "+84987654321")] == today()  # no day: the import's
    assert "912345678" not in str(kept) + text
    again = import_numbers(engine, GOAL, path, KEY)
    assert (again.taken, again.replaced) == (0, 3)  # every row known already
    with engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(outcome_acts)) == 2


def test_a_bad_number_refuses_the_file_naming_it_masked(engine, tmp_path):
    path = written(tmp_path, "x.csv", "phone\n0912345678\n12345678901234\n")
    with pytest.raises(OutcomeError) as refused:
        import_numbers(engine, GOAL, path, KEY)
    assert refused.value.rows[0].startswith("row 3: phone: ")
    assert "12345678901234" not in refused.value.rows[0]


def test_counts_as_people_write_them(engine, tmp_path):
    path = written(tmp_path, "c.csv", "Huyện;Ngày;Số lượng\nNinh Hải;25/08/2020;1.000\n"
                   "Phan Rang–Tháp Chàm;25/08/2020;1 000\n")  # fmt: skip
    population = {area: (name, 5000) for area, (name, _) in POPULATION.items()}
    import_counts(engine, GOAL, population, path)
    assert counts(engine) == {("ninh hai", "2020-08-25"): 1000,
                              ("phan rang thap cham", "2020-08-25"): 1000}  # fmt: skip


def test_a_goal_name_names_one_population(engine, tmp_path):
    """Counts checked against one population and reported against another once made a
    district 160 %: a goal file whose areas differ from those a campaign carries under
    the same name is refused."""
    from campaigns.goals import GoalSpec
    from campaigns.recipients import ListRow
    from tests.helpers import record
    from tests.worker.test_dispatch import SPEC

    carried = GoalSpec(**GOAL.model_dump(), areas=POPULATION)
    record(
        engine,
        SPEC.model_copy(update={"goal": carried}),
        [ListRow(2, "0912345678", ("Ninh Hải",))],
        columns=("district",),
    )
    path = written(tmp_path, "c.csv", "area,date,count\nNinh Hải,2020-08-25,900\n")
    bigger = {**POPULATION, "ninh hai": ("Ninh Hải", 5000)}
    with pytest.raises(OutcomeError, match="carries it with other areas or populations"):
        import_counts(engine, GOAL, bigger, path)
    with pytest.raises(OutcomeError, match="carries it with other areas"):
        import_numbers(engine, GOAL, written(tmp_path, "n.csv", "phone\n0912345678\n"), KEY,
                       population=bigger)  # fmt: skip
    assert counts(engine) == {}
    done = import_counts(engine, GOAL, POPULATION, written(tmp_path, "d.csv",
                         "area,date,count\nNinh Hải,2020-08-25,90\n"))  # fmt: skip
    assert done.served_by == [SPEC.id]


def test_two_imports_of_one_goal_at_once_wait_for_each_other(engine, tmp_path):
    """On PostgreSQL two imports at once each checked the population against counts the
    other was writing, and two of numbers met on the same key (a traceback): one goal's
    imports now take turns."""
    from concurrent.futures import ThreadPoolExecutor

    files = [written(tmp_path, f"n{i}.csv", "phone\n" + "".join(
        f"09123{n:05d}\n" for n in range(i * 50, i * 50 + 200))) for i in range(4)]  # fmt: skip
    with ThreadPoolExecutor(4) as pool:
        done = list(pool.map(lambda path: import_numbers(engine, GOAL, path, KEY), files))
    with engine.connect() as conn:
        kept = conn.scalar(sa.select(sa.func.count()).select_from(outcome_acts))
    assert kept == 350 and sum(d.taken for d in done) == 350


def test_an_export_s_district_words_are_read(engine, tmp_path):
    path = written(tmp_path, "c.csv", "area,date,count\nHuyện Ninh Hải,2020-08-25,40\n"
                   "TP. Phan Rang – Tháp Chàm,2020-08-25,50\n")  # fmt: skip
    import_counts(engine, GOAL, POPULATION, path)
    assert counts(engine) == {("ninh hai", "2020-08-25"): 40,
                              ("phan rang thap cham", "2020-08-25"): 50}  # fmt: skip


def test_a_number_keeps_its_earliest_day_across_imports(engine, tmp_path):
    for name, day in (("a.csv", "26/08/2020"), ("b.csv", "24/08/2020"), ("c.csv", "28/08/2020")):
        import_numbers(engine, GOAL, written(tmp_path, name, f"phone,date\n0912345678,{day}\n"),
                       KEY)  # fmt: skip
    with engine.connect() as conn:
        kept = conn.execute(sa.select(outcome_acts.c.day)).scalars().all()
    assert kept == [date(2020, 8, 24)]
