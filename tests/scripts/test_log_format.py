"""``LOA_LOG_FORMAT`` (default ``auto``): console lines on a terminal, JSON lines
otherwise, and either one when asked for by name."""

from __future__ import annotations

import io
import json

import pytest
import structlog

from tests.scripts.test_cli import EXAMPLE, loa, small_list
from worker.logging import configure_logging


def test_console_asked_by_name_is_not_json_even_off_a_terminal(tmp_path):
    """(Off a terminal, ``auto`` gives JSON: ``test_cli``'s launch reads its events so.)"""
    env = {"LOA_LOG_LEVEL": "INFO", "LOA_LOG_FORMAT": "console"}  # a launch's INFO lines
    launched = loa(
        "campaign", "launch", str(EXAMPLE), "-r", str(small_list(tmp_path)), cwd=tmp_path, env=env
    )
    assert launched.returncode == 0, launched.stderr
    assert "campaign.launched" in launched.stderr
    assert not [line for line in launched.stderr.splitlines() if line.startswith("{")]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("tty", "as_json"), [(True, False), (False, True)])
def test_auto_is_console_on_a_terminal_and_json_elsewhere(tty, as_json, monkeypatch):
    stderr = Terminal() if tty else io.StringIO()
    monkeypatch.setattr("sys.stderr", stderr)
    configure_logging("INFO", "auto")
    try:
        structlog.get_logger("test").info("campaign.launched", batches=2)
    finally:
        configure_logging("INFO", "json")
    (line,) = stderr.getvalue().splitlines()
    assert "campaign.launched" in line
    assert line.startswith("{") is as_json
    if as_json:
        assert json.loads(line)["batches"] == 2
