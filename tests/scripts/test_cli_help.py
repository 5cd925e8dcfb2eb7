"""Every ``loa`` command, option and argument says what it is for in ``--help``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer
from typer.testing import CliRunner

from scripts.cli import app


def commands(command: Any, path: tuple[str, ...] = ("loa",)) -> Iterator[tuple[str, Any]]:
    """(``loa campaign plan``, its click command) for every command and group of ``command``."""
    yield " ".join(path), command
    if hasattr(command, "list_commands"):  # a group
        context = typer.Context(command)
        for name in command.list_commands(context):
            yield from commands(command.get_command(context, name), (*path, name))


def test_every_command_option_and_argument_has_a_help_text():
    found = list(commands(typer.main.get_command(app)))
    assert len(found) > 30  # the walk reached the subcommands
    missing = []
    for path, command in found:
        if not (command.help or "").strip():
            missing.append(f"{path}: no help")
        for param in command.params:
            if not (getattr(param, "help", None) or "").strip():
                missing.append(f"{path} {'/'.join(param.opts)}: no help")
    assert not missing, "\n".join(missing)


def test_the_help_texts_are_shown():
    result = CliRunner().invoke(app, ["webhook", "--help"], env={"COLUMNS": "240"})
    assert result.exit_code == 0, result.output
    assert "Also apply stored receipts" in result.output  # --drain/--no-drain


def test_the_arrivals_columns_are_documented_where_operators_look():
    """Every field the arrivals parser reads is in `loa arrivals ingest --help` and in the
    README's arrivals section, and nothing else is documented as one."""
    import campaigns.arrivals

    source = Path(campaigns.arrivals.__file__).read_text(encoding="utf-8")
    read = set(re.findall(r'record\.get\("(\w+)"\)', source))
    assert {"event_id", "phone", "arrived_at", "area", "home"} <= read
    result = CliRunner().invoke(app, ["arrivals", "ingest", "--help"], env={"COLUMNS": "240"})
    assert result.exit_code == 0, result.output
    documented = set(re.findall(r"• (\w+) \((?:required|optional)\)", result.output))
    assert documented == read, result.output
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Tourist arrivals") : readme.index("## Delivery receipts")]
    rows = set(re.findall(r"^\| `(\w+)` \| (?:required|optional) \|", section, re.MULTILINE))
    assert rows == read
