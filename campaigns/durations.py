"""Durations as campaign files write them: ``"30m"``, ``"12h"``, ``"2d"``."""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION = re.compile(r"^\s*(\d+)\s*(m|h|d)\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def parse_duration(value: object) -> object:
    """``"30m"``, ``"12h"``, ``"2d"`` -> a timedelta; anything not a string as it is.

    Raises:
        ValueError: a string in another form.
    """
    if isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise ValueError("write a duration such as '30m', '12h' or '2d'")
        return timedelta(**{_UNITS[match[2]]: int(match[1])})
    return value


def write_duration(value: timedelta) -> str:
    """A duration written back in the file's own notation (whole minutes), so that a
    stored spec validates again: ``timedelta(hours=12)`` -> ``"720m"``."""
    return f"{int(value.total_seconds() // 60)}m"
