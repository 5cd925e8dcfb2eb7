"""Twilio's errors: its codes, how the worker treats each, and what an answer the SDK
could not read was (``providers.twilio`` sends; this classifies what came back).
"""

from __future__ import annotations

from contextvars import ContextVar

from twilio.base.exceptions import TwilioRestException, TwilioServiceException

from providers.base import ErrorKind, SendError
from providers.http import classify_status

#: The last answer's HTTP status and content type in this task, set by the transport: what
#: to say of an answer the SDK could not read (an HTML page where JSON was due).
last_answer: ContextVar[tuple[int, str] | None] = ContextVar("twilio_answer", default=None)
#: Twilio error code -> how the worker treats it (the practice of the reference table;
#: Twilio publishes codes, not a classification). Codes not listed fall back on the
#: HTTP status (``providers.http.classify_status``).
ERROR_CODES: dict[int, tuple[ErrorKind, str]] = {
    20003: (ErrorKind.HALT, "credentials refused"),
    21211: (ErrorKind.PERMANENT, "invalid 'To' number"),
    21408: (ErrorKind.HALT, "region not enabled on the account"),
    21610: (ErrorKind.PERMANENT, "recipient unsubscribed (STOP)"),
    21614: (ErrorKind.PERMANENT, "not a mobile number"),
    21617: (ErrorKind.PERMANENT, "body over 1,600 characters"),
    30002: (ErrorKind.HALT, "account suspended"),
    30003: (ErrorKind.RETRYABLE, "unreachable handset"),
    30004: (ErrorKind.PERMANENT, "message blocked"),
    30005: (ErrorKind.PERMANENT, "unknown handset"),
    30006: (ErrorKind.PERMANENT, "landline or unreachable carrier"),
    30007: (ErrorKind.PERMANENT, "carrier filtering: check the sender and the text"),
    30008: (ErrorKind.RETRYABLE, "unknown error"),
    30019: (ErrorKind.PERMANENT, "content too long for the carrier (long UCS-2 text)"),
    30500: (ErrorKind.RETRYABLE, "Twilio internal error"),
}
#: Refusals that concern the whole account or sender: nothing sent to it now would pass,
#: so the worker pauses the provider (a cooldown) rather than charge each message.
PROVIDER_WIDE: dict[int, str] = {
    20429: "too many concurrent requests",
    21611: "sender queue full",
    30001: "sender queue overflow",
}
#: Of those, the ones that mean "slower", not "down": the rate adapts to them.
THROTTLES = frozenset({20429})
#: The recipient told Twilio to stop: Loa adds the number to its own opt-out list.
OPTED_OUT = 21610


def unreadable(answer: tuple[int, str] | None) -> str:
    """An answer the SDK could not read, said with what it was: ``unreadable: HTTP 200,
    text/html``."""
    if answer is None:
        return "unreadable"
    status, kind = answer
    return f"unreadable: HTTP {status}, {kind or 'no content type'}"


def classify_rest_error(
    error: TwilioRestException | TwilioServiceException, retry_after: float | None = None
) -> SendError:
    """A Twilio error answer: by its error code where the table knows it, else by the
    HTTP status; ``retry_after``: the answer's ``Retry-After`` in seconds, if it had one
    (the SDK's exception does not keep it: the transport does). The code and status come
    from the answer's JSON: anything but a number there is taken for none (the status
    then the one the transport saw)."""
    code = _number(error.code)
    answer = last_answer.get()
    status = answer[0] if answer is not None else _number(error.status) or 500
    if code in PROVIDER_WIDE:
        return SendError(
            ErrorKind.RETRYABLE,
            str(code),
            PROVIDER_WIDE[code],
            retry_after,
            provider_wide=True,
            throttled=code in THROTTLES or status == 429,
        )
    if code in ERROR_CODES:
        kind, detail = ERROR_CODES[code]
        return SendError(kind, str(code), detail, retry_after, opt_out=code == OPTED_OUT)
    by_status = classify_status(status, None)
    if code is None or code == status:  # no Twilio code: the SDK puts the status there
        code = by_status.code
    return SendError(
        by_status.kind,
        str(code),
        by_status.detail,
        retry_after,
        by_status.provider_wide,
        throttled=by_status.throttled,
    )


def _number(value: object) -> int | None:
    """A Twilio code or status as the JSON gave it, if it is a whole number."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 10:
        return int(value)
    return None
