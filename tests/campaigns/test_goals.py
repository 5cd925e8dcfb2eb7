"""Goals and their populations (``campaigns.goals``): read as a province writes them,
refused naming the file, the row and the field."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from campaigns.goals import GoalError, GoalSpec, fold, load_goal, load_population, parse_goal

SPEC_FILE = Path(__file__).resolve().parents[2] / "examples" / "bluezone.toml"


def test_an_area_is_the_same_written_either_way():
    assert fold("Phan Rang–Tháp Chàm") == fold("phan rang - thap cham") == "phan rang thap cham"
    assert fold("Đơn Dương") == fold("don duong")
    assert fold("Ninh Hải") != fold("Ninh Sơn")


def test_a_goal_file_says_its_target_as_a_share_or_a_percentage(tmp_path):
    path = tmp_path / "muc-tieu.toml"
    path.write_text(
        'name = "Cài đặt Bluezone"\ntarget = "50%"\ndeadline = 2020-09-30\n'
        'population = "dan-so.csv"\n',
        encoding="utf-8",
    )
    goal = load_goal(path)
    assert (goal.target, goal.deadline, goal.area_column) == (0.5, date(2020, 9, 30), "district")


@pytest.mark.parametrize(
    ("data", "said"),
    [
        ({"name": "x", "target": 1.5, "deadline": "2020-09-30", "population": "p"}, "target"),
        ({"name": "x", "target": 0.5, "deadline": "soon", "population": "p"}, "deadline"),
        ({"name": "x", "target": 0.5, "deadline": "2020-09-30"}, "population"),
        ({"name": "x", "target": 0.5, "deadline": "2020-09-30", "population": "p", "y": 1}, "y"),
    ],
    ids=["share-above-one", "no-date", "no-population", "unknown-key"],
)
def test_a_goal_with_a_wrong_field_is_refused_naming_it(data, said):
    with pytest.raises(GoalError, match=rf"bluezone.toml: .*{said}"):
        parse_goal(data, "bluezone.toml")


def test_a_population_file_in_vietnamese_with_its_thousands_dots(tmp_path):
    path = tmp_path / "dan-so.csv"
    path.write_text('Huyện,Dân số\nPhan Rang–Tháp Chàm,"167.394"\nNinh Hải,92520\n', "utf-8")
    assert load_population(path) == {
        "phan rang thap cham": ("Phan Rang–Tháp Chàm", 167_394),
        "ninh hai": ("Ninh Hải", 92_520),
    }


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("ten,so\nA,1\n", "row 1: the header needs an area column"),
        ("area,population\n,10\n", "row 2: area: '' names no area"),
        ("area,population\n---,10\n", "row 2: area: '---' names no area"),
        ("area,population\n" + "A" * 201 + ",10\n", "row 2: area: not an area's name"),
        ("area,population\nA,2.5\n", "row 2: population: '2.5' is not a population"),
        ('area,population\nA,"1,5"\n', "row 2: population: '1,5' is not a population"),
        ("area,population\nA,²\n", "row 2: population: '²' is not a population"),
        ("area,population\nA," + "9" * 5000 + "\n", "row 2: population: '999"),
        ('area,population\nA,"1\r\n2"\n', "row 2: population: '1\\r\\n2' is not"),
        ("area,population\nA,-5\n", "row 2: population: '-5' is not a population"),
        ("area,population\nA,mười\n", "row 2: population: 'mười'"),
        ("area,population\nA,10\na,20\n", "row 3: area: 'a' is there twice"),
        ("area,population\n", "no area in it"),
    ],
    ids=[
        "header",
        "empty-area",
        "punctuation-area",
        "long-area",
        "decimal",
        "decimal-comma",
        "superscript",
        "5000-digits",
        "two-lines",
        "negative",
        "words",
        "twice",
        "none",
    ],
)
def test_a_population_file_with_a_bad_row_is_refused_naming_it(tmp_path, text, said):
    path = tmp_path / "dan-so.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(GoalError) as refused:
        load_population(path)
    assert str(refused.value).startswith(f"{path}: ") and said in str(refused.value)


def test_populations_as_people_write_them_and_a_semicolon_file(tmp_path):
    path = tmp_path / "dan-so.csv"
    path.write_text("Huyện;Dân số\nNinh Hải;1.400\nNinh Sơn;12 500\nBác Ái;2,000\n", "utf-8")
    assert {area: n for area, (_, n) in load_population(path).items()} == {
        "ninh hai": 1400, "ninh son": 12_500, "bac ai": 2000}  # fmt: skip


@pytest.mark.parametrize("kind", ["fifo", "device", "directory", "large"])
def test_only_a_regular_file_of_a_sane_size_is_read(tmp_path, kind):
    import os

    path = tmp_path / "dan-so.csv"
    if kind == "fifo":
        os.mkfifo(path)  # never waited on
    elif kind == "device":
        path.symlink_to("/dev/zero")  # never read
    elif kind == "directory":
        path.mkdir()
    else:
        path.write_text("area,population\n" + "A,1\n" * 3_000_000, "utf-8")
    with pytest.raises(GoalError) as refused:
        load_population(path)
    said = {"fifo": "not a regular file", "device": "not a regular file",
            "directory": "not a regular file", "large": "over 8.192 KB"}[kind]  # fmt: skip
    assert str(refused.value).startswith(f"{path}: ") and said in str(refused.value)


def test_a_target_of_true_and_inline_areas_are_refused(tmp_path):
    from campaigns.goals import resolve_goal

    (tmp_path / "p.csv").write_text("area,population\nA,10\n", "utf-8")
    table = {"name": "G", "target": 0.5, "deadline": "2020-09-30", "population": "p.csv"}
    with pytest.raises(GoalError, match="not true or false"):
        resolve_goal({**table, "target": True}, tmp_path)
    with pytest.raises(GoalError, match="the areas come from the population file"):
        resolve_goal({**table, "areas": {"a": ["A", -5]}}, tmp_path)
    assert resolve_goal(table, tmp_path).areas == {"a": ("A", 10)}


@pytest.mark.parametrize("named", ["/etc/passwd", "../p.csv", "sub/p.csv"])
def test_beside_only_a_goal_reads_no_file_but_those_sent_with_it(tmp_path, named):
    """The API's uploads: a campaign file names only the files uploaded with it."""
    from campaigns.goals import resolve_goal

    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "p.csv").write_text("area,population\nA,10\n", "utf-8")
    table = {"name": "G", "target": 0.5, "deadline": "2020-09-30", "population": named}
    with pytest.raises(GoalError, match="by its name alone"):
        resolve_goal(table, tmp_path / "sub", beside_only=True)
    with pytest.raises(GoalError, match="by its name alone"):
        resolve_goal(named, tmp_path / "sub", beside_only=True)
    assert resolve_goal({**table, "population": "p.csv"}, tmp_path / "sub", beside_only=True)


def test_a_campaign_file_names_its_goal_and_carries_its_population(tmp_path):
    import shutil

    from campaigns.spec import load_spec
    from tests.worker.test_dispatch import SPEC

    examples = SPEC_FILE.parent
    for name in ("bluezone-goal.toml", "bluezone-population.csv"):
        shutil.copy(examples / name, tmp_path / name)
    spec = tmp_path / "bluezone.toml"
    spec.write_text('goal = "bluezone-goal.toml"\n' + SPEC_FILE.read_text("utf-8"), "utf-8")
    goal = load_spec(spec).goal
    assert goal is not None and goal.name == "Cài đặt Bluezone" and goal.target == 0.5
    assert goal.areas["phan rang thap cham"] == ("Phan Rang–Tháp Chàm", 1500)
    assert goal.people == sum(people for _, people in goal.areas.values())
    # As the ledger keeps it: read back whole, without the files.
    assert type(SPEC).model_validate_json(load_spec(spec).model_dump_json()).goal == goal


def test_a_campaign_whose_goal_is_wrong_is_refused_naming_both_files(tmp_path):
    from campaigns.spec import SpecError, load_spec

    (tmp_path / "p.csv").write_text("area,population\nNinh Hải,-1\n", "utf-8")
    spec = tmp_path / "c.toml"
    spec.write_text(SPEC_FILE.read_text("utf-8") + '\n[goal]\nname = "x"\ntarget = 0.5\n'
                    'deadline = 2020-09-30\npopulation = "p.csv"\n', "utf-8")  # fmt: skip
    with pytest.raises(SpecError) as refused:
        load_spec(spec)
    said = str(refused.value)
    assert said.startswith(f"{spec}: goal: ") and "p.csv: row 2: population" in said


def test_a_list_without_the_goal_s_area_column_is_refused_before_its_first_row():
    from campaigns.plan import PlanError, Planner
    from tests.worker.test_dispatch import SPEC

    goal = GoalSpec(name="G", target=0.5, deadline=date(2020, 9, 30), population="p.csv",
                    area_column="district", areas={"a": ("A", 10)})  # fmt: skip
    spec = SPEC.model_copy(update={"goal": goal})
    with pytest.raises(PlanError, match=r"goal\.area_column: .*'district'.*ten, tuoi"):
        Planner(spec, ["ten", "tuoi"])
    assert Planner(spec, ["ten", "Huyện/Thành phố"])  # the district's own aliases


def test_an_area_with_or_without_its_division_s_word():
    """Exports write "TP. Phan Rang – Tháp Chàm" and "Huyện Bác Ái"; a name without its
    word matches only when one area alone has it (Cai Lậy is a town and a district)."""
    from campaigns.goals import area_matcher

    areas = {fold(n): n for n in ("Phan Rang–Tháp Chàm", "Bác Ái", "Thị xã Cai Lậy",
                                  "Huyện Cai Lậy", "Thành phố Mỹ Tho")}  # fmt: skip
    area_of = area_matcher(areas)
    assert area_of("TP. Phan Rang – Tháp Chàm") == "phan rang thap cham"
    assert area_of("Huyện Bác Ái") == area_of("bac ai") == "bac ai"
    assert area_of("Mỹ Tho") == area_of("TP Mỹ Tho") == "thanh pho my tho"
    assert area_of("Huyện Cai Lậy") == "huyen cai lay"
    assert area_of("Cai Lậy") is None and area_of("Đà Lạt") is None
    assert area_of("TX Cai Lậy") == area_of("tx. cai lậy") == "thi xa cai lay"
    assert area_of("H. Cai Lậy") == "huyen cai lay" and area_of("TT Cai Lậy") is None


def test_districts_whose_own_name_starts_like_a_division_and_other_levels():
    from campaigns.goals import area_matcher

    area_of = area_matcher({fold(n): n for n in ("Quan Hóa", "Huyện Tân Phú", "Quận 1",
                                                 "Châu Thành")})  # fmt: skip
    assert area_of("Huyện Quan Hóa") == area_of("quan hoa") == "quan hoa"
    assert area_of("Thị trấn Tân Phú") is None  # another level of another place
    assert area_of("Tân Phú") == area_of("H. Tân Phú") == "huyen tan phu"
    assert area_of("Q.1") == area_of("Q 1") == "quan 1"
    assert area_of("H. Châu Thành") == "chau thanh"


def test_a_goal_written_after_the_columns_table_is_refused_not_lost(tmp_path):
    from campaigns.spec import SpecError, load_spec

    base = (Path(__file__).resolve().parents[2] / "examples" / "bluezone.toml").read_text(
        "utf-8")  # fmt: skip
    path = tmp_path / "c.toml"
    path.write_text(base + '\n[columns]\ndistrict = "Huyện"\ngoal = "muc-tieu.toml"\n', "utf-8")
    with pytest.raises(SpecError, match=r"columns\.goal: .*before the first \[table\]"):
        load_spec(path)
