"""Structured logging for every Loa process.

JSON lines when stderr is not a terminal (for log shippers), a readable console on one.
``campaign_id`` and ``message_id`` travel in contextvars, so every line inside a batch
carries them without being passed around. Phone numbers are personal data: a processor
masks anything that looks like one, in every value, at every level, and message bodies
are dropped unless the level is DEBUG.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from campaigns.phones import mask_text
from ledger.redact import redact

#: Keys whose values are message text: never at INFO or above.
BODY_KEYS = frozenset({"body", "text", "content", "message_text"})

bind = structlog.contextvars.bind_contextvars
unbind = structlog.contextvars.unbind_contextvars
bound = structlog.contextvars.bound_contextvars


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
