"""Structured logging for every Loa process.

JSON lines when stderr is not a terminal (for log shippers), a readable console on one.
``campaign_id`` and ``message_id`` travel in contextvars, so every line inside a batch
carries them without being passed around. Phone numbers are personal data: a processor
masks anything that looks like one, in every value, at every level, and message bodies
are dropped unless the level is DEBUG.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from campaigns.phones import mask
from ledger.redact import redact

#: A run of 9 to 15 digits, optionally behind '+', possibly grouped by single spaces,
#: dots or dashes, not inside a word.
PHONE_LIKE = re.compile(r"(?<![\w+])\+?\d(?:[ .\-]?\d){8,14}(?!\w)")
#: What such a run must look like to be a phone number: E.164 behind '+' or '00', or a
#: Vietnamese one (``0…`` national, ``84…`` without the '+', or the bare nine digits of a
#: mobile). Other long runs (a timestamp in a campaign id, an amount) are left as they
#: are: ``chaos-redis-2026113001203`` is a campaign, not a number.
_NUMBER = re.compile(r"\+\d{8,15}|00\d{7,13}|0\d{8,10}|84\d{9,10}|[35789]\d{8}")
#: Keys whose values are message text: never at INFO or above.
BODY_KEYS = frozenset({"body", "text", "content", "message_text"})

bind = structlog.contextvars.bind_contextvars
unbind = structlog.contextvars.unbind_contextvars
bound = structlog.contextvars.bound_contextvars


def _mask_match(match: re.Match[str]) -> str:
    digits = re.sub(r"[ .\-]", "", match.group())
    return mask(digits) if _NUMBER.fullmatch(digits) else match.group()


def mask_text(value: str) -> str:
    """Mask every phone number in ``value`` (``PHONE_LIKE`` runs that look like one)."""
    return PHONE_LIKE.sub(_mask_match, value)


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return redact(mask_text(value))  # numbers, and passwords of connection strings
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


def scrub_personal_data(
    _logger: Any, method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: drop bodies above DEBUG, mask phone numbers everywhere."""
    if method != "debug":
        for key in BODY_KEYS & event_dict.keys():
            event_dict[key] = "[body withheld]"
    for key, value in event_dict.items():
        event_dict[key] = _scrub(value)
    return event_dict


def configure_logging(level: str = "INFO", fmt: str = "auto") -> None:
    """Configure structlog (and the stdlib logging dramatiq uses) for this process.

    Parameters:
        level: DEBUG, INFO, WARNING or ERROR.
        fmt: ``json``, ``console``, or ``auto`` (console when stderr is a terminal).
    """
    console = fmt == "console" or (fmt == "auto" and sys.stderr.isatty())
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=True)
        if console
        else structlog.processors.JSONRenderer(ensure_ascii=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            scrub_personal_data,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        # Looked up on every call, so a replaced sys.stderr (tests, daemons) is honoured.
        logger_factory=lambda *_: structlog.PrintLogger(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    # dramatiq and friends log through the standard library: keep them quiet unless asked.
    logging.basicConfig(
        level=logging.DEBUG if level == "DEBUG" else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
