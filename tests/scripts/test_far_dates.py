"""Dates and intervals at the edges of what Python's clocks hold: one line, exit 2."""

from __future__ import annotations

import pytest

from tests.scripts.test_cli import loa


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("campaign", "list", "--since", "0001-01-01"), "--since '0001-01-01': a year from"),
        (("campaign", "list", "--until", "9999-12-31"), "--until '9999-12-31': a year from"),
        (("report", "--daily", "0001-01-01", "-o", "d.html"), "--daily '0001-01-01'"),
        (("campaign", "status", "any", "--watch", "--interval", "inf"), "--interval"),
    ],
)
def test_far_dates_and_endless_intervals_are_bad_input(tmp_path, args, said) -> None:
    result = loa(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert said in result.stderr and "Traceback" not in result.stderr


def test_an_argument_that_is_not_utf8_is_bad_input(tmp_path) -> None:
    """Bytes that are not UTF-8 (a shell in another encoding) as a campaign id."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("LOA_")}
    for command in (["campaign", "status"], ["campaign", "pause"], ["report"]):
        done = subprocess.run(
            [sys.executable.encode(), b"-m", b"scripts", *(c.encode() for c in command), b"\xff\xfe"],
            cwd=tmp_path, env=env, capture_output=True, check=False,
        )  # fmt: skip
        said = done.stderr.decode()
        assert done.returncode == 2, said
        assert "is not UTF-8" in said and "Traceback" not in said
