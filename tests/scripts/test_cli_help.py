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


#: What typer writes in Python's words when left alone: a type after each flag (`<bool>`),
#: `<str>`, `<float range> [x>=0.1]`, `<list[Path]>`, a required argument as `{spec}`.
PYTHON_WORDS = re.compile(r"<(bool|str|int|float|path|file|dir)\b|list\[|[{}]|x[<>]=|[<>]=x")


def test_every_help_reads_as_words_not_python_types():
    """Each command's `--help`, as a terminal of 100 columns shows it: flags without a
    tag, values named (FILE, ID, DATE …), arguments in capitals in the usage line too,
    ranges in words."""
    runner = CliRunner()
    found = list(commands(typer.main.get_command(app)))
    problems = []
    for path, _ in found:
        args = [*path.split()[1:], "--help"]
        result = runner.invoke(app, args, env={"COLUMNS": "100", "TERMINAL_WIDTH": "100"})
        assert result.exit_code == 0, f"{path}: {result.output}"
        for line in result.stdout.splitlines():  # the help; a warning on stderr is not it
            if PYTHON_WORDS.search(line):
                problems.append(f"{path}: {line.strip()}")
    assert not problems, "\n".join(problems)
    # What each now says instead (spot checks across kinds of parameter).
    shown = {
        path: runner.invoke(app, [*path.split()[1:], "--help"], env={"COLUMNS": "100"}).output
        for path in ("loa campaign status", "loa campaign launch", "loa campaign list")
    }
    status = shown["loa campaign status"]
    assert "Usage: loa campaign status [OPTIONS] ID" in status
    assert re.search(r"--interval\s+SECONDS \[0\.1 to 3600\]", status), status
    assert re.search(r"--json\s+Print JSON", status), status  # a flag: no tag
    assert re.search(r"--help\s+Show this message", status), status
    assert "Usage: loa campaign launch [OPTIONS] FILE" in shown["loa campaign launch"]
    assert re.search(r"--recipients\s+-r\s+FILE", shown["loa campaign launch"])
    assert re.search(r"--state\s+STATE", shown["loa campaign list"])


def test_the_help_names_a_value_as_typer_would_not():
    """The fallbacks, for a parameter given no metavar: a short choice list as is, a path
    as PATH, anything else by its name; a range in words."""
    from scripts.helptext import range_words

    assert range_words(0.1, None) == "at least 0.1"
    assert range_words(None, 9) == "at most 9"
    assert range_words(1, 64) == "1 to 64"
    assert range_words(None, None) is None
    report = CliRunner().invoke(app, ["report", "--help"], env={"COLUMNS": "120"}).output
    assert re.search(r"--format\s+-f\s+html\|csv\|xlsx", report), report
    assert re.search(r"--out\s+-o\s+PATH", report), report
    assert "CAMPAIGN_ID" in report  # an argument without a metavar: its name


def test_a_usage_error_is_one_line_naming_the_help_and_exits_2(tmp_path):
    """What the shell got wrong (a state that is none, a missing file, an unknown option
    or command) is said the way every other bad input is: one line, exit 2, no box of
    several lines; ``loa`` alone still shows the help."""
    from tests.scripts.test_cli import loa

    cases = {
        ("campaign", "list", "--state", "bogus"): (
            "'bogus' is not one of 'scheduled', 'running'",
            "(see `loa campaign list --help`)",
        ),
        ("campaign", "plan"): ("Missing argument 'FILE'", "(see `loa campaign plan --help`)"),
        ("nosuch",): ("No such command 'nosuch'", "(see `loa --help`)"),
        ("campaign", "status", "x", "--interval"): ("'--interval' requires an argument", ""),
    }
    for args, (said, hint) in cases.items():
        result = loa(*args, cwd=tmp_path)
        assert result.returncode == 2, (args, result.stderr)
        (line,) = result.stderr.splitlines()
        assert line.startswith("error: ") and said in line and line.endswith(hint or "."), line
        assert "Value error" not in line and result.stdout == ""
    alone = loa(cwd=tmp_path)
    assert alone.returncode == 2 and "Usage: loa [OPTIONS] COMMAND" in alone.stdout
