"""A campaign's real target (issue #24): not messages delivered but an outcome, such as
half of a province's smartphone users having installed Bluezone by a date, district by
district, as the 2020 order asked. Delivery is the means; the goal is what the Department
reports against.

A goal names the outcome (``name``), the share of each area's population to reach
(``target``, 0–1), the ``deadline``, and the population per area it is measured against
(a file of ``area,population``); the areas are the values of one column of the list
(``area_column``, ``district`` by default). A goal lives in a file of its own, shared by
the campaigns that serve it, or inline in a campaign file (``[goal]``)::

    name = "Cài đặt Bluezone"
    target = 0.5
    deadline = 2020-09-30
    population = "dan-so-ninh-thuan.csv"   # beside this file
    area_column = "district"

Areas are matched folded (``fold``): case, diacritics, ``đ`` and punctuation aside, so
``Phan Rang–Tháp Chàm`` in the population file is the list's ``phan rang - thap cham``.
"""

from __future__ import annotations

import csv
import re
import tomllib
import unicodedata
from collections.abc import Callable, Mapping
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from campaigns.limits import figure

#: Words that name the population file's columns, folded: a header holding one of them
#: (``Huyện/Thành phố``, ``Số người dùng điện thoại thông minh``) is that column.
AREA_HEADERS = ("area", "district", "khu vuc", "huyen", "quan", "dia ban", "thanh pho")
POPULATION_HEADERS = ("population", "dan so", "so dan", "so nguoi", "nguoi dung")


def column(header: list[str], words: tuple[str, ...]) -> int | None:
    """The first column of ``header`` whose folded name holds one of ``words`` (whole
    words), in the order of ``words``; ``None`` for none."""
    folded = [f" {fold(cell)} " for cell in header]
    for word in words:
        for place, name in enumerate(folded):
            if f" {word} " in name:
                return place
    return None


class GoalError(ValueError):
    """A goal or population file that cannot be used; the message names the file, the
    row and the field."""


@lru_cache(maxsize=65536)
def fold(text: str) -> str:
    """An area's name as compared: without case, diacritics, ``đ``, or punctuation, its
    words separated by one space (``Phan Rang–Tháp Chàm`` → ``phan rang thap cham``).
    Remembered: a list of a million rows names a few dozen areas."""
    text = unicodedata.normalize("NFKD", text.replace("đ", "d").replace("Đ", "D"))
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    return " ".join(re.sub(r"[^\w]+", " ", text).split())


#: The words of an administrative division a district's name may be written with or
#: without (folded), and their abbreviations: "TP. Phan Rang – Tháp Chàm", "Huyện Bác
#: Ái", "TX Cai Lậy", "H. Châu Thành", "Q.1" as exports write them.
DIVISIONS = {
    "thanh pho": "thanh pho", "tp": "thanh pho", "thi xa": "thi xa", "tx": "thi xa",
    "huyen": "huyen", "h": "huyen", "quan": "quan", "q": "quan", "thi tran": "thi tran",
    "tt": "thi tran", "huyen dao": "huyen dao",
}  # fmt: skip
#: An area's name that is a total row's, not an area's (a spreadsheet's habit).
TOTALS = frozenset({"tong", "tong cong", "cong", "total", "toan tinh", "tong so"})


def divided(folded: str) -> tuple[str | None, str]:
    """``(division, name)`` of a folded area: ``("thi xa", "cai lay")`` for ``thi xa cai
    lay`` or ``tx cai lay``; ``(None, folded)`` without a division's word in front (or
    with nothing after it: ``quan 1`` is ``("quan", "1")``, ``quan`` alone a name)."""
    words = folded.split(" ")
    for size in (2, 1):
        head = " ".join(words[:size])
        if head in DIVISIONS and len(words) > size:
            return DIVISIONS[head], " ".join(words[size:])
    return None, folded


def area_matcher(areas: Mapping[str, Any]) -> Callable[[str], str | None]:
    """A function from an area as a list or a file writes it to its key in ``areas``
    (folded names), ``None`` for no area, or none alone, of the goal.

    The folded name itself first; else by its name and its division, read both ways (a
    district may be named with a division's word: ``Quan Hóa`` is ``Huyện Quan Hóa``):
    the name must be the same, and the division too when both say one (``Thị trấn Tân
    Phú`` is not ``Huyện Tân Phú``); one area alone must answer (``Thị xã Cai Lậy`` and
    ``Huyện Cai Lậy`` are two: ``Cai Lậy`` names neither)."""
    by_name: dict[str, list[tuple[str | None, str]]] = {}
    for key in areas:
        division, name = divided(key)
        by_name.setdefault(name, []).append((division, key))
        if division is not None:  # "quan hoa" is a name too
            by_name.setdefault(key, []).append((None, key))

    @lru_cache(maxsize=4096)
    def area_of(text: str) -> str | None:
        folded = fold(text)
        if folded in areas:
            return folded
        found = set()
        for division, name in {divided(folded), (None, folded)}:
            for theirs, key in by_name.get(name, ()):
                if division is None or theirs is None or division == theirs:
                    found.add(key)
        return found.pop() if len(found) == 1 else None

    return area_of


class Goal(BaseModel):
    """A goal as its file says it (``population`` as written: a path)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=200)
    target: float = Field(gt=0, le=1, description="share of each area's population")
    deadline: date
    population: str = Field(min_length=1, description="file of area,population")
    area_column: str = Field(default="district", min_length=1, max_length=100)

    @field_validator("name")
    @classmethod
    def _printable(cls, value: str) -> str:
        """A name is shown in reports and kept in the ledger: no control character (a NUL
        passed a launch and then broke every report on PostgreSQL)."""
        if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in value) or not value.strip():
            raise ValueError("a name of printable characters, on one line")
        return value

    @field_validator("deadline")
    @classmethod
    def _sane_day(cls, value: date) -> date:
        if not 2000 <= value.year <= 2100:
            raise ValueError("a day between 2000 and 2100")
        return value

    @field_validator("target", mode="before")
    @classmethod
    def _share(cls, value: Any) -> Any:
        """``0.5`` or ``"50%"``: both a half."""
        if isinstance(value, bool):
            raise ValueError('a share (0.5) or a percentage ("50%"), not true or false')
        if isinstance(value, str) and value.strip().endswith("%"):
            return float(value.strip()[:-1].replace(",", ".")) / 100
        return value


class GoalSpec(Goal):
    """A goal as a campaign carries it into the ledger: with its population read
    (``areas``: folded area → the area as written, its population), so that a report
    never needs the files again."""

    areas: dict[str, tuple[str, int]]

    @property
    def people(self) -> int:
        """Everyone the goal is measured against (every area's population)."""
        return sum(people for _, people in self.areas.values())


#: The largest goal file and population file read (a province's districts fit in a few
#: kilobytes; a path to ``/dev/zero`` would otherwise be read until memory ran out).
GOAL_FILE_LIMIT = 64 * 1024
POPULATION_FILE_LIMIT = 8 * 1024 * 1024
#: The largest population of an area: more people than live on Earth is a mistake.
MOST_PEOPLE = 10_000_000_000
#: The most areas a goal has (Vietnam has some 10,600 communes; a report's queries name
#: them all at once).
MOST_AREAS = 20_000


def resolve_goal(value: Any, base: Path, *, beside_only: bool = False) -> GoalSpec:
    """A campaign file's ``goal``: the path of a goal file (relative to ``base``, the
    campaign file's folder) or an inline table; its population file read (relative to
    the file that names it). ``beside_only``: each file named by a plain name and read
    from ``base`` alone (the API: a campaign file uploaded names only the files uploaded
    with it, never a path on the server).

    Raises:
        GoalError: naming the goal or population file, the row and the field.
    """
    if isinstance(value, str):
        path = base / _named(value, "goal", beside_only, base)
        goal, folder = load_goal(path), path.parent
    elif isinstance(value, dict):
        if "areas" in value:  # the ledger's form: never a campaign file's
            raise GoalError("[goal]: areas: the areas come from the population file")
        goal, folder = parse_goal(value, "[goal]"), base
    else:
        raise GoalError("goal: the name of a goal file, or a [goal] table")
    areas = load_population(folder / _named(goal.population, "population", beside_only, folder))
    return GoalSpec(**{**goal.model_dump(), "areas": areas})


def _named(name: str, field: str, beside_only: bool, base: Path) -> str:
    """``name`` as read (beside_only: by its name alone, as the upload was saved)."""
    if not beside_only:
        return name
    from campaigns.files import plain_file_name

    if Path(name).name != name or name in (".", "..") or "\\" in name:
        raise GoalError(
            f"{field}: {name!r}: name a file sent with the campaign file, by its name alone"
        )
    if not (base / plain_file_name(name)).exists():
        raise GoalError(f"{field}: {name!r} was not sent with the campaign file: send it too "
                        "(goal_files)")  # fmt: skip
    return plain_file_name(name)


def read_text(path: Path, limit: int, what: str) -> str:
    """A small text file (UTF-8, a BOM dropped), read only if it is a regular file of at
    most ``limit`` bytes: a FIFO is never waited on, a device never read.

    Raises:
        GoalError: missing, not a regular file, too large, or not UTF-8 (named).
    """
    import os
    import stat

    try:
        handle = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise GoalError(f"{path}: cannot read the {what} ({exc.strerror})") from None
    try:
        facts = os.fstat(handle)
        if not stat.S_ISREG(facts.st_mode):
            raise GoalError(f"{path}: the {what} is not a regular file")
        if facts.st_size > limit:
            raise GoalError(
                f"{path}: the {what} is over {figure(limit // 1024)} KB; is it the right file?"
            )
        raw = os.read(handle, limit + 1)
    finally:
        os.close(handle)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise GoalError(f"{path}: the {what} is not UTF-8 text; save it as UTF-8") from None


def whole_number(text: str) -> int | None:
    """A count or a population as people write it: digits, thousands grouped by ``.``,
    ``,`` or a space in threes (``1.400``, ``1,400``, ``12 500``); ``None`` for anything
    else (``2.5``, ``1,5``, ``²``, a sign, or more than 12 digits)."""
    text = text.strip()
    if re.fullmatch(r"[0-9]{1,12}", text):
        return int(text)
    for separator in (".", ",", " "):
        if re.fullmatch(rf"[0-9]{{1,3}}(?:{re.escape(separator)}[0-9]{{3}}){{1,3}}", text):
            return int(text.replace(separator, ""))
    return None


def parse_goal(data: dict[str, Any], where: str) -> Goal:
    """A goal from its table (a goal file, or a campaign file's ``[goal]``).

    Raises:
        GoalError: naming ``where`` and each field that is wrong.
    """
    try:
        return Goal(**data)
    except ValidationError as exc:
        said = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'goal'}: {e['msg']}" for e in exc.errors()
        )
        raise GoalError(f"{where}: {said}") from None
    except TypeError:
        raise GoalError(f"{where}: a goal is a table of name, target, deadline …") from None


def load_goal(path: Path) -> Goal:
    """A goal file (TOML).

    Raises:
        GoalError: unreadable, not TOML, or a field wrong (named).
    """
    text = read_text(path, GOAL_FILE_LIMIT, "goal file")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise GoalError(f"{path}: not a TOML goal file ({exc})") from None
    return parse_goal(data.get("goal", data), str(path))


def load_population(path: Path) -> dict[str, tuple[str, int]]:
    """The population file: folded area → (the area as written, its population).

    Raises:
        GoalError: unreadable; no area or population column; a row without an area, with
            a population that is not a whole number above zero, or an area twice: each
            named by its row (the header is row 1) and field.
    """
    import io

    from campaigns.recipients import sniff_delimiter

    text = read_text(path, POPULATION_FILE_LIMIT, "population file")
    try:
        delimiter = sniff_delimiter(text.split("\n", 1)[0])
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as exc:
        raise GoalError(f"{path}: not CSV ({exc})") from None
    if not rows:
        raise GoalError(f"{path}: empty; it needs a header (area,population) and a row per area")
    area, people = column(rows[0], AREA_HEADERS), column(rows[0], POPULATION_HEADERS)
    if area is None or people is None:
        raise GoalError(
            f"{path}: row 1: the header needs an area column (area, district, huyện …) and a "
            f"population column (population, dân số …); it has {', '.join(rows[0]) or 'none'}"
        )
    found: dict[str, tuple[str, int]] = {}
    problems = []
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        name = row[area].strip() if area < len(row) else ""
        raw = row[people].strip() if people < len(row) else ""
        count = whole_number(raw)
        if not fold(name):
            problems.append(f"row {number}: {rows[0][area]}: {name!r} names no area")
        elif len(name) > 200 or len(fold(name)) > 200 or "\x00" in name:
            problems.append(f"row {number}: {rows[0][area]}: not an area's name (over 200 "
                            "characters, or a NUL)")  # fmt: skip
        elif count is None or not 0 < count <= MOST_PEOPLE:
            problems.append(f"row {number}: {rows[0][people]}: {raw!r} is not a population "
                            "(a whole number of people above zero)")  # fmt: skip
        elif fold(name) in TOTALS:
            problems.append(f"row {number}: {rows[0][area]}: {name!r} is a total, not an area; "
                            "remove the row (Loa adds the areas up itself)")  # fmt: skip
        elif fold(name) in found:
            problems.append(f"row {number}: {rows[0][area]}: {name!r} is there twice")
        else:
            found[fold(name)] = (name, count)
    bare: dict[str, str] = {}
    for key, (name, _) in found.items():  # "Mỹ Tho" beside "Thành phố Mỹ Tho": one place
        division, short = divided(key)
        other = bare.get(short)
        if other is not None and (division is None or divided(other)[0] is None):
            problems.append(f"{rows[0][area]}: {found[other][0]!r} and {name!r} name one "
                            "area twice (one with its division's word); keep one")  # fmt: skip
        bare.setdefault(short, key)
    if len(found) > MOST_AREAS:
        problems.append(f"{figure(len(found))} areas, more than {figure(MOST_AREAS)}: is it a "
                        "list of people rather than of districts?")  # fmt: skip
    if problems:
        raise GoalError(f"{path}: " + "; ".join(problems[:20]))
    if not found:
        raise GoalError(f"{path}: no area in it")
    return found
