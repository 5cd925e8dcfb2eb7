"""What can go wrong on a bind, sorted by what it means for a message.

The one question a sender asks of an error is whether the SMSC may have taken the message:

- **not accepted, safe to send again**: ``GenericNack`` (the SMSC could not read the
  request), ``NotBound`` (the request never left Loa), ``PduError`` (refused before
  encoding);
- **fate unknown, never resend blindly**: ``ResponseTimeout`` and ``ConnectionLost`` (the
  request was written; the SMSC may have taken it and its answer was lost), and
  ``MalformedPdu`` when it was the answer to a request that could not be read.

``BindRefused`` carries the SMSC's ``command_status`` (0x0E invalid password, 0x0F invalid
system_id, 0x0D bind failed …) so a caller can say which setting is wrong.
"""

from __future__ import annotations


class SmppError(Exception):
    """Anything a bind raises about SMPP (not programming errors)."""


class PduError(SmppError, ValueError):
    """A PDU Loa was asked to send breaks SMPP 3.4 (a field too long, a NUL inside a
    C-string, an unknown field): refused before anything was written, since smpplib would
    have truncated or dropped it silently."""


class MalformedPdu(SmppError):
    """The peer sent bytes that are not a readable PDU of a command we know.

    Attributes:
        command_id: from the header (0 when even the header was unreadable).
        sequence: from the header (0 when unknown).
    """

    def __init__(self, message: str, command_id: int = 0, sequence: int = 0) -> None:
        super().__init__(message)
        self.command_id = command_id
        self.sequence = sequence


class UnknownCommand(MalformedPdu):
    """A command id smpplib has no class for; a request is answered generic_nack 0x03."""


class BindRefused(SmppError):
    """The SMSC answered the bind with an error ``status`` (its command_status)."""

    def __init__(self, status: int) -> None:
        super().__init__(f"bind refused by the SMSC: command_status 0x{status:08X}")
        self.status = status


class GenericNack(SmppError):
    """The SMSC answered generic_nack: it could not read the request, so it was NOT
    accepted (safe to send again, once whatever made it unreadable is fixed)."""

    def __init__(self, status: int) -> None:
        super().__init__(f"generic_nack: command_status 0x{status:08X}")
        self.status = status


class ResponseTimeout(SmppError):
    """No response within ``response_timeout``: the SMSC may or may not have taken the
    request (fate unknown)."""


class ConnectionLost(SmppError):
    """The bind went away while the request was outstanding: fate unknown."""


class NotBound(SmppError):
    """The bind is closed (or closing): the request was never written, so it is safe to
    send on another bind."""
