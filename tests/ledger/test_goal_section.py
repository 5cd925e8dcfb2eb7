"""A campaign's goal section (``ledger.goals.section``), on both ledgers: every
breakdown adds up to its summary (the areas' recipients and those elsewhere to the
campaign's, the areas' outcomes to the imports), the share against the pace, the areas
behind it first, the days left, and the recipients matched to the numbers that acted."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from campaigns.goals import GoalSpec
from campaigns.recipients import ListRow
from campaigns.status import Status
from ledger.goals.outcomes import import_counts, import_numbers
from ledger.goals.section import goal_section
from ledger.retention import pseudonymiser
from ledger.schema import campaigns, key_of, messages, recipient_pseudonyms
from ledger.summary import load_campaign
from tests.helpers import record
from tests.worker.test_dispatch import SPEC

KEY = "khoa-giu-lai-mot-hai-ba-bon-nam-sau"
AREAS = {"ninh hai": ("Ninh Hải", 100), "ninh son": ("Ninh Sơn", 200), "bac ai": ("Bác Ái", 50)}
GOAL = GoalSpec(name="Cài Bluezone", target=0.5, deadline=date(2020, 9, 30),
                population="p.csv", areas=AREAS)  # fmt: skip
DISTRICTS = ["Ninh Hải"] * 6 + ["ninh son"] * 3 + ["Đà Lạt"]  # the last: no area of the goal


def launched(engine, pseudonym_of=None):
    spec = SPEC.model_copy(update={"goal": GOAL})
    rows = [ListRow(i + 2, f"09123{i:05d}", (d,)) for i, d in enumerate(DISTRICTS)]
    record(engine, spec, rows, columns=("district",), pseudonym_of=pseudonym_of)
    with engine.begin() as conn:  # four delivered
        ids = conn.scalars(sa.select(messages.c.id).order_by(messages.c.id)).all()
        conn.execute(messages.update().where(messages.c.id.in_([ids[0], ids[1], ids[6], ids[9]]))
                     .values(status="delivered"))  # fmt: skip
    with engine.begin() as conn:  # as if launched on 1 September 2020, 07:00 in Vietnam
        conn.execute(campaigns.update().values(created_at=datetime(2020, 9, 1, 0, 0, tzinfo=UTC)))
    return load_campaign(engine, SPEC.id)


def counts_file(tmp_path, text):
    path = tmp_path / "counts.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_every_breakdown_adds_up_and_the_areas_behind_come_first(engine, tmp_path):
    campaign = launched(engine)
    import_counts(engine, GOAL, AREAS, counts_file(tmp_path, "area,date,count\n"
                  "Ninh Hải,2020-09-05,30\nNinh Sơn,2020-09-05,20\nNinh Hải,2020-09-10,25\n"))  # fmt: skip
    section = goal_section(engine, campaign, day=date(2020, 9, 15))
    found = section.as_dict()
    assert found["recipients"] == len(DISTRICTS) and found["elsewhere"] == 1
    # Every recipient reached counted in the total, those elsewhere too (one in Đà Lạt).
    assert (found["reached"], found["elsewhere_reached"]) == (4, 1)
    assert sum(a["recipients"] for a in found["areas"]) + found["elsewhere"] == len(DISTRICTS)
    assert found["outcomes"] == sum(a["outcomes"] for a in found["areas"]) == 75
    assert found["population"] == 350 and found["share"] == round(75 / 350, 4)
    by_area = {a["area"]: a for a in found["areas"]}
    assert (by_area["Ninh Hải"]["recipients"], by_area["Ninh Hải"]["reached"]) == (6, 2)
    assert by_area["Ninh Sơn"]["by_channel"] == {"sms": 1}
    # Half the way from the launch (1 Sep) to the deadline (30 Sep): the pace is ~0.24.
    assert found["pace"] == round(0.5 * 14 / 29, 4) and found["days_left"] == 15
    assert by_area["Ninh Hải"]["share"] == 0.55 and not by_area["Ninh Hải"]["behind"]
    assert by_area["Ninh Sơn"]["behind"] and by_area["Bác Ái"]["behind"]
    assert [a["area"] for a in found["areas"]][-1] == "Ninh Hải"  # ahead: last
    assert [d["outcomes"] for d in found["by_day"]] == [50, 75]  # cumulative
    earlier = goal_section(engine, campaign, day=date(2020, 9, 6)).as_dict()
    assert earlier["outcomes"] == 50  # as of a day: what was known by then


@pytest.mark.parametrize("at_launch", ["all", "none", "some"])
def test_the_recipients_who_acted_are_matched_by_their_keyed_hmac(engine, tmp_path, at_launch):
    """Matched by a join where each recipient's HMAC was written at launch (the retention
    key set), else HMACed at the report: both ways, and a mixture, give the same."""
    campaign = launched(engine, pseudonymiser(KEY) if at_launch != "none" else None)
    with engine.begin() as conn:
        written = conn.scalar(sa.select(sa.func.count()).select_from(recipient_pseudonyms))
        assert written == (len(DISTRICTS) if at_launch != "none" else 0)
        if at_launch == "some":  # the first recipient's (who acted) and a later one's
            conn.execute(recipient_pseudonyms.delete().where(
                recipient_pseudonyms.c.list_row.in_([2, 5])))  # fmt: skip
    acted = tmp_path / "da-cai.csv"
    acted.write_text("phone,date\n0912300000,2020-09-03\n0912300007,2020-09-04\n"
                     "0999999999,2020-09-04\n", encoding="utf-8")  # fmt: skip
    import_numbers(engine, GOAL, acted, KEY)
    found = goal_section(engine, campaign, key=KEY, day=date(2020, 9, 15)).as_dict()
    by_area = {a["area"]: a for a in found["areas"]}
    assert found["measured_by"] == "acted"  # no counts imported: the matched numbers
    assert (by_area["Ninh Hải"]["acted"], by_area["Ninh Sơn"]["acted"]) == (1, 1)
    assert found["outcomes"] == 2  # the stranger who acted is no recipient
    assert goal_section(engine, campaign, day=date(2020, 9, 15)).as_dict()["measured_by"] == "none"


def test_a_campaign_without_a_goal_has_no_section(engine):
    record(engine, SPEC, [ListRow(2, "0912345678", ())])
    assert goal_section(engine, load_campaign(engine, SPEC.id)) is None
    with engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(messages).where(
            messages.c.campaign_key == key_of(SPEC.id))) == 1  # fmt: skip


def test_the_chart_and_the_table_count_the_same_areas(engine, tmp_path):
    """Counts of an area the campaign's goal lacks (kept under the goal's name by another
    population) once entered the day-by-day chart but not the table."""
    from ledger.schema import now, outcome_counts

    campaign = launched(engine)
    import_counts(engine, GOAL, AREAS, counts_file(tmp_path, "area,date,count\n"
                  "Ninh Hải,2020-09-05,30\n"))  # fmt: skip
    with engine.begin() as conn:
        conn.execute(outcome_counts.insert().values(goal=GOAL.name, area="khac",
                     day=date(2020, 9, 5), count=1000, imported_at=now()))  # fmt: skip
    found = goal_section(engine, campaign, day=date(2020, 9, 15)).as_dict()
    assert found["outcomes"] == 30 and [d["outcomes"] for d in found["by_day"]] == [30]


def test_the_pace_starts_on_vietnam_s_day_of_the_goal_s_first_campaign(engine):
    """Launched at 23:30 UTC on 31 August, 06:30 on 1 September in Vietnam: the pace
    starts on the 1st (it started on the UTC day, a day early), and a follow-up launched
    later keeps the first one's start."""
    campaign = launched(engine)
    with engine.begin() as conn:
        conn.execute(campaigns.update().values(
            created_at=datetime(2020, 8, 31, 23, 30, tzinfo=UTC)))  # fmt: skip
    later = SPEC.model_copy(update={"id": "nhac-lai", "goal": GOAL})
    record(engine, later, [ListRow(2, "0912399999", ("Ninh Hải",))], columns=("district",))
    for which in (SPEC.id, "nhac-lai"):
        found = goal_section(engine, load_campaign(engine, which), day=date(2020, 9, 1))
        assert found.start == date(2020, 9, 1) and found.pace(date(2020, 9, 1)) == 0
    assert campaign.spec.goal is not None


@pytest.mark.parametrize("at_launch", [True, False])
def test_retention_keeps_the_goal_s_districts_and_who_acted(engine, tmp_path, at_launch):
    """A goal whose district column has a name of its own ("Khu vực"): retention once
    dropped its cells with the other personal ones, and every recipient fell outside."""
    from datetime import timedelta

    from ledger.handover import record_sent
    from ledger.messages import apply_receipt, claim_batch
    from ledger.retention import apply
    from tests.helpers import backdate

    goal = GOAL.model_copy(update={"area_column": "Khu vực"})
    spec = SPEC.model_copy(update={"goal": goal})
    rows = [ListRow(i + 2, f"09123{i:05d}", ("An", d)) for i, d in enumerate(DISTRICTS)]
    record(engine, spec, rows, columns=("Họ tên", "Khu vực"),
           pseudonym_of=pseudonymiser(KEY) if at_launch else None)  # fmt: skip
    claimed = claim_batch(engine, SPEC.id, 1)
    record_sent(engine, SPEC.id, [(m.id, f"P{m.id}") for m in claimed])
    for m in claimed:
        apply_receipt(engine, "sandbox", f"P{m.id}", Status.DELIVERED, None)
    import_numbers(engine, GOAL, written_numbers(tmp_path), KEY)
    campaign = load_campaign(engine, SPEC.id)
    before = goal_section(engine, campaign, key=KEY, day=date.today()).as_dict()
    backdate(engine, timedelta(days=100))
    assert apply(engine, KEY, timedelta(days=90)).numbers == len(DISTRICTS)
    after = goal_section(engine, campaign, key=KEY, day=date.today()).as_dict()
    for found in (before, after):
        by_area = {a["area"]: a for a in found["areas"]}
        assert (by_area["Ninh Hải"]["recipients"], by_area["Ninh Sơn"]["recipients"]) == (6, 3)
        assert (by_area["Ninh Hải"]["acted"], by_area["Ninh Sơn"]["acted"]) == (1, 1)
    with engine.connect() as conn:  # the name is gone, the district kept
        cells = conn.scalars(sa.select(messages.c.fields)).all()
    assert all(cell[0] is None for cell in cells) and cells[0][1] == "Ninh Hải"


def written_numbers(tmp_path):
    path = tmp_path / "da-cai.csv"
    path.write_text("phone,date\n0912300000,2020-09-03\n0912300007,2020-09-04\n", "utf-8")
    return path


OTHER = "mot-khoa-khac-hoan-toan-bay-tam-chin-muoi"


def test_numbers_and_recipients_under_two_keys_are_never_matched_silently(engine, tmp_path):
    """Recipients HMACed at launch under one key, the numbers imported under another: a
    join would have matched nobody ("acted 0") while a follow-up chose by the key given."""
    from ledger.goals.followup import Chosen, FollowUpError, choose
    from ledger.goals.outcomes import OutcomeError

    campaign = launched(engine, pseudonymiser(KEY))  # the launch's key
    import_numbers(engine, GOAL, written_numbers(tmp_path), OTHER)  # the numbers' key
    with pytest.raises(OutcomeError, match="kept under another LOA_RETENTION_KEY"):
        import_numbers(engine, GOAL, written_numbers(tmp_path), KEY)
    found = goal_section(engine, campaign, key=OTHER, day=date(2020, 9, 15)).as_dict()
    assert found["acted"] == 2 and not found["acted_under_another_key"]  # each HMACed anew
    other = goal_section(engine, campaign, key=KEY, day=date(2020, 9, 15)).as_dict()
    assert other["acted"] is None and other["acted_under_another_key"]
    with engine.begin() as conn:  # a follow-up needs every message final
        conn.execute(messages.update().values(status="delivered"))
    with pytest.raises(FollowUpError, match="another LOA_RETENTION_KEY"):
        list(choose(engine, campaign, ("not-acted",), KEY, Chosen()))
    assert len(list(choose(engine, campaign, ("not-acted",), OTHER, Chosen()))) == 8


def test_follow_ups_of_follow_ups_and_reach_together_after_retention(engine):
    """A follow-up's own follow-up was left out of the first's report; after retention
    replaced the first's numbers, reached-together counted each person twice (178 %)."""
    from ledger.goals.followup import follow_ups
    from ledger.retention import pseudonym

    launched(engine)  # ten recipients, four delivered
    for spec_id, follows, numbers in (("nhac-1", SPEC.id, range(2, 6)),
                                      ("nhac-2", "nhac-1", range(6, 8))):  # fmt: skip
        rows = [ListRow(i + 2, f"09123{i:05d}", ("Ninh Hải",)) for i in numbers]
        record(engine, SPEC.model_copy(update={"id": spec_id}), rows, columns=("district",),
               follows={"campaign": follows, "by_reason": {}})  # fmt: skip
        with engine.begin() as conn:
            conn.execute(messages.update().where(messages.c.campaign_key == key_of(spec_id))
                         .values(status="delivered"))  # fmt: skip
    found = follow_ups(engine, SPEC.id, KEY)
    assert [(f["campaign"], f["follows"]) for f in found["follow_ups"]] == [
        ("nhac-1", SPEC.id), ("nhac-2", "nhac-1")]  # fmt: skip
    # The first reached 0, 1, 6, 9; the follow-ups 2-5 and 6-7: 0-7 and 9 together.
    assert found["reached_together"] == 9
    with engine.begin() as conn:  # retention replaces the first campaign's numbers
        for number in conn.scalars(sa.select(messages.c.recipient).where(
                messages.c.campaign_key == key_of(SPEC.id))).all():  # fmt: skip
            conn.execute(messages.update().where(messages.c.recipient == number,
                         messages.c.campaign_key == key_of(SPEC.id))
                         .values(recipient=pseudonym(KEY, number)))  # fmt: skip
    assert follow_ups(engine, SPEC.id, KEY)["reached_together"] == 9
    assert follow_ups(engine, SPEC.id)["reached_together"] is None  # unknown, not 13
