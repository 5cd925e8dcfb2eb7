"""Every command, setting and campaign-file key the README's tables describe has tests
that check what the README says of it, named in ``tests/promises.toml``; this keeps it so.

It fails when a README command, setting or key has no entry there (a promise added
without a test), when an entry names one the README no longer has (the list would
drift from the README), and when an entry names a test that does not exist (a test
renamed or removed). Tests are found by reading the files with ``ast``: no collection,
so this stays fast. Whether a named test really checks its promise is for review to
judge; this holds the list complete and true to the files."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PROMISES = ROOT / "tests" / "promises.toml"

#: A README table by the title of its first column, and the section of promises.toml
#: that maps its entries.
TABLES = {"command": "commands", "variable": "settings", "key": "campaign_file"}

#: A pipe that separates cells (one written ``\\|`` is inside a cell).
_CELL = re.compile(r"(?<!\\)\|")
#: A placeholder in a command's synopsis: ``ID``, ``SPEC``, ``FILE`` …
_PLACEHOLDER = re.compile(r"^[A-Z][A-Z_]*\b")


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in _CELL.split(line.strip())[1:-1]]


def _spans(cell: str) -> list[str]:
    """The code spans of a cell, with escaped pipes as plain ones."""
    return [span.replace("\\|", "|") for span in re.findall(r"`([^`]+)`", cell)]


def _tables(text: str) -> dict[str, list[str]]:
    """The first cells of every row of the tables named in ``TABLES``, by section."""
    found: dict[str, list[str]] = {section: [] for section in TABLES.values()}
    section: str | None = None
    for line in text.splitlines():
        if not line.startswith("|"):
            section = None
            continue
        first = _cells(line)[0] if _cells(line) else ""
        if section is None:  # a table's header row
            section = TABLES.get(first.lower(), "")
        elif section and not set(first) <= set("-: "):
            found[section].append(first)
    return found


def _commands(cell: str) -> list[str]:
    """The commands a command table's cell names: ``loa campaign pause|resume|cancel ID``
    is three; a span without ``loa`` continues the one before it (``add|remove NUMBER``
    after ``loa suppress import FILE``); an option before any placeholder is part of the
    command (``loa report --daily DATE``)."""
    names: list[str] = []
    group: list[str] = []
    for span in _spans(cell):
        words = span.split()
        if words[0] == "loa":
            words = words[1:]
        elif group:
            words = [*group, *words]
        else:
            continue
        kept: list[str] = []
        for word in words:
            if word.startswith("[") or _PLACEHOLDER.match(word) or word == "…":
                break
            kept.append(word)
        if not kept:
            continue
        *head, last = kept
        group = head
        names += [" ".join(["loa", *head, choice]) for choice in last.split("|")]
    return names


def readme_items(text: str) -> dict[str, set[str]]:
    """What the README's tables name: commands, ``LOA_`` settings, campaign-file keys."""
    tables = _tables(text)
    return {
        "commands": {name for cell in tables["commands"] for name in _commands(cell)},
        "settings": {
            span for cell in tables["settings"] for span in _spans(cell) if span.startswith("LOA_")
        },
        "campaign_file": {span for cell in tables["campaign_file"] for span in _spans(cell)},
    }


def defined_tests(path: Path) -> set[str]:
    """The tests a file defines, as node ids after the path: ``test_x``, ``TestY::test_x``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
            "test_"
        ):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            names |= {
                f"{node.name}::{item.name}"
                for item in node.body
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
                and item.name.startswith("test_")
            }
    return names


def problems(items: dict[str, set[str]], promises: dict[str, dict], root: Path) -> list[str]:
    """Everything that keeps the promises from matching the README and the tests."""
    found: list[str] = []
    files: dict[Path, set[str]] = {}
    for section, names in items.items():
        mapped = promises.get(section, {})
        found += [
            f"[{section}] {n!r} is in the README but has no entry"
            for n in sorted(names - set(mapped))
        ]
        found += [
            f"[{section}] {n!r} is no longer in the README" for n in sorted(set(mapped) - names)
        ]
        for name, node_ids in sorted(mapped.items()):
            if not node_ids:
                found.append(f"[{section}] {name!r} names no test")
            for node_id in node_ids:
                path, _, test = node_id.partition("::")
                file = root / path
                if file not in files:
                    files[file] = defined_tests(file) if file.is_file() else set()
                if test not in files[file]:
                    found.append(f"[{section}] {name!r}: {node_id} does not exist")
    return found


def test_every_readme_command_setting_and_key_has_tests_that_exist():
    promises = tomllib.loads(PROMISES.read_text(encoding="utf-8"))
    found = problems(readme_items(README.read_text(encoding="utf-8")), promises, ROOT)
    assert not found, (
        "README.md and tests/promises.toml disagree; give each row its tests there, as\n"
        '  [settings] LOA_X = ["tests/path.py::test_name"]\n' + "\n".join(found)
    )


def test_the_readme_tables_are_all_read():
    """The parser finds each table and what is known to be in it: a README reshaped so
    that a table is missed must fail here, not pass with nothing to check."""
    items = readme_items(README.read_text(encoding="utf-8"))
    commands = items["commands"]
    assert {"loa demo", "loa report", "loa report --daily", "loa suppress show"} <= commands
    assert {"loa campaign pause", "loa campaign resume", "loa campaign cancel"} <= commands
    assert {"loa dead-letters list", "loa dead-letters requeue"} <= commands
    assert {"LOA_DATABASE_URL", "LOA_RATE_HEADROOM", "LOA_AD_DAILY_CAP"} <= items["settings"]
    assert {"LOA_METRICS_PORT", "LOA_METRICS_HOST"} <= items["settings"]
    assert {"id", "provider", "sending_hours", "[routing]"} <= items["campaign_file"]


SAMPLE = """
| command | what it does |
|---|---|
| `loa thing do ID [--json]` | does |
| `loa thing stop\\|go ID`, `loa other --daily DATE` | the rest |

| variable | default | meaning |
|---|---|---|
| `LOA_ONE`, `LOA_TWO` | `1`, `2` | numbers, not `LOA_THREE` |

| key | meaning |
|---|---|
| `id` | the id |

| fault | what recovers it |
|---|---|
| `loa not this` | a table of another kind |
"""


def test_the_check_fails_for_a_missing_entry_a_stale_one_and_a_test_that_is_gone(tmp_path):
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text(
        "def test_a():\n    pass\n\n\nclass TestB:\n    def test_c(self):\n        pass\n",
        encoding="utf-8",
    )
    items = readme_items(SAMPLE)
    assert items == {
        "commands": {"loa thing do", "loa thing stop", "loa thing go", "loa other --daily"},
        "settings": {"LOA_ONE", "LOA_TWO"},
        "campaign_file": {"id"},
    }
    a, c = "tests/test_x.py::test_a", "tests/test_x.py::TestB::test_c"
    complete = {
        "commands": {name: [a] for name in items["commands"]},
        "settings": {"LOA_ONE": [a], "LOA_TWO": [c]},
        "campaign_file": {"id": [c]},
    }
    assert problems(items, complete, tmp_path) == []

    missing = {**complete, "settings": {"LOA_ONE": [a]}}
    assert problems(items, missing, tmp_path) == [
        "[settings] 'LOA_TWO' is in the README but has no entry"
    ]
    stale = {**complete, "campaign_file": {"id": [c], "gone": [a]}}
    assert problems(items, stale, tmp_path) == ["[campaign_file] 'gone' is no longer in the README"]
    renamed = {**complete, "settings": {"LOA_ONE": ["tests/test_x.py::test_b"], "LOA_TWO": []}}
    assert problems(items, renamed, tmp_path) == [
        "[settings] 'LOA_ONE': tests/test_x.py::test_b does not exist",
        "[settings] 'LOA_TWO' names no test",
    ]
    elsewhere = {**complete, "campaign_file": {"id": ["tests/test_y.py::test_a"]}}
    assert problems(items, elsewhere, tmp_path) == [
        "[campaign_file] 'id': tests/test_y.py::test_a does not exist"
    ]
