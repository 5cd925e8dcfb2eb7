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
