"""What an SMSC's codes mean for Loa: ``command_status`` of a submit_sm_resp or a bind
response, and the states a delivery receipt reports.

Sources: the SMPP v3.4 specification, §5.1.3 (command_status) and §5.2.28
(message_state), Appendix B (the receipt text's ``stat``), as summarised in
../shared/reference/providers.md. What each code means for a message follows
``providers.base``: retryable (not processed, send again), permanent (refused for good),
halt (nothing will succeed until a person fixes a setting).
"""

from __future__ import annotations

from dataclasses import dataclass

from campaigns.status import Status
from providers.base import ErrorKind


@dataclass(frozen=True, slots=True)
class Meaning:
    """One command_status: its SMPP name, what it means for a message, and, for a halt,
    the setting a person must check."""

    name: str
    kind: ErrorKind
    detail: str
    #: The SMSC as a whole cannot take messages now (throttling, a full queue, its own
    #: fault): the worker pauses the provider instead of charging the message an attempt.
    provider_wide: bool = False
    #: A refusal of our rate (ESME_RTHROTTLED): the worker lowers the rate.
    throttled: bool = False
    #: The setting to check, for a halt (said in the halt's reason).
    setting: str = ""


R, P, H = ErrorKind.RETRYABLE, ErrorKind.PERMANENT, ErrorKind.HALT

#: command_status -> meaning. A status not listed (vendor codes 0x400–0x4FF and the rest)
#: is a permanent refusal of this message: resending what an SMSC refused for a reason we
#: cannot read risks nothing but the same answer, and the code is kept for the report.
COMMAND_STATUSES: dict[int, Meaning] = {
    # Our PDU was wrong: the same bytes would be refused again.
    0x01: Meaning("ESME_RINVMSGLEN", P, "message length is invalid"),
    0x02: Meaning("ESME_RINVCMDLEN", P, "command length is invalid"),
    0x03: Meaning("ESME_RINVCMDID", P, "invalid command id"),
    # The bind is not in a state to submit (a receiver bind, a half-closed session): the
    # session is rebuilt and the message goes on another bind.
    0x04: Meaning("ESME_RINVBNDSTS", R, "incorrect bind status", provider_wide=True),
    0x05: Meaning("ESME_RALYBND", R, "already bound", provider_wide=True),
    # The SMSC's own fault, not the message's: pause, then send again.
    0x08: Meaning("ESME_RSYSERR", R, "system error at the SMSC", provider_wide=True),
    # The brandname is not registered for this account (Vietnamese carriers register each
    # per carrier): every message with this sender is refused, other senders are fine.
    0x0A: Meaning("ESME_RINVSRCADR", P, "invalid source address (brandname not registered?)"),
    0x0B: Meaning("ESME_RINVDSTADR", P, "invalid destination number"),
    0x0C: Meaning("ESME_RINVMSGID", P, "invalid message id"),
    # Credentials: nothing will bind until a person fixes the setting.
    0x0D: Meaning("ESME_RBINDFAIL", H, "bind failed", setting="system_id and password"),
    0x0E: Meaning("ESME_RINVPASWD", H, "invalid password", setting="password"),
    0x0F: Meaning("ESME_RINVSYSID", H, "invalid system_id", setting="system_id"),
    0x11: Meaning("ESME_RCANCELFAIL", P, "cancel_sm failed"),
    0x13: Meaning("ESME_RREPLACEFAIL", P, "replace_sm failed"),
    0x14: Meaning("ESME_RMSGQFUL", R, "message queue full", provider_wide=True),
    0x15: Meaning("ESME_RINVSERTYP", P, "invalid service type"),
    0x33: Meaning("ESME_RINVNUMDESTS", P, "invalid number of destinations"),
    0x34: Meaning("ESME_RINVDLNAME", P, "invalid distribution list name"),
    0x40: Meaning("ESME_RINVDESTFLAG", P, "invalid destination flag"),
    0x42: Meaning("ESME_RINVSUBREP", P, "invalid submit-with-replace request"),
    0x43: Meaning("ESME_RINVESMCLASS", P, "invalid esm_class"),
    0x44: Meaning("ESME_RCNTSUBDL", P, "cannot submit to a distribution list"),
    # "submit failed" says nothing more: another attempt may pass (bounded by attempts).
    0x45: Meaning("ESME_RSUBMITFAIL", R, "submit_sm failed"),
    # Address settings every message shares: all would be refused alike.
    0x48: Meaning("ESME_RINVSRCTON", H, "invalid source TON", setting="source_ton"),
    0x49: Meaning("ESME_RINVSRCNPI", H, "invalid source NPI", setting="source_npi"),
    0x50: Meaning("ESME_RINVDSTTON", H, "invalid destination TON", setting="dest_ton"),
    0x51: Meaning("ESME_RINVDSTNPI", H, "invalid destination NPI", setting="dest_npi"),
    0x53: Meaning("ESME_RINVSYSTYP", H, "invalid system_type", setting="system_type"),
    0x54: Meaning("ESME_RINVREPFLAG", P, "invalid replace_if_present flag"),
    0x55: Meaning("ESME_RINVNUMMSGS", P, "invalid number of messages"),
    0x58: Meaning("ESME_RTHROTTLED", R, "throttled", provider_wide=True, throttled=True),
    0x61: Meaning("ESME_RINVSCHED", P, "invalid scheduled delivery time"),
    0x62: Meaning("ESME_RINVEXPIRY", P, "invalid validity period"),
    0x63: Meaning("ESME_RINVDFTMSGID", P, "predefined message not found"),
    0x64: Meaning("ESME_RX_T_APPN", R, "temporary application error"),
    0x65: Meaning("ESME_RX_P_APPN", P, "permanent application error"),
    0x66: Meaning("ESME_RX_P_APPN", P, "rejected by the application"),
    0xC0: Meaning("ESME_RINVOPTPARSTREAM", P, "error in the optional parameters"),
    0xC1: Meaning("ESME_ROPTPARNOTALLWD", P, "optional parameter not allowed"),
    0xC2: Meaning("ESME_RINVPARLEN", P, "invalid parameter length"),
    0xC3: Meaning("ESME_RMISSINGOPTPARAM", P, "expected optional parameter missing"),
    0xC4: Meaning("ESME_RINVOPTPARAMVAL", P, "invalid optional parameter value"),
    0xFE: Meaning("ESME_RDELIVERYFAILURE", P, "delivery failure"),
    # Unknown to the SMSC itself: another attempt may pass (bounded by attempts).
    0xFF: Meaning("ESME_RUNKNOWNERR", R, "unknown error at the SMSC"),
}

UNLISTED = Meaning("", P, "refused by the SMSC")


def code(status: int) -> str:
    """The ledger's code for a command_status: ``0x58``, ``0x0B``, ``0x00000401``."""
    return f"0x{status:02X}" if status <= 0xFF else f"0x{status:08X}"


def meaning(status: int) -> Meaning:
    """What ``status`` means (``UNLISTED`` when the table does not say)."""
    return COMMAND_STATUSES.get(status, UNLISTED)


def describe(ledger_code: str) -> str | None:
    """What a code kept in the ledger (``code``'s form) means, for reports."""
    try:
        status = int(ledger_code, 16)
    except ValueError:
        return None
    found = COMMAND_STATUSES.get(status)
    return f"{found.name}: {found.detail}" if found else None


#: A receipt's ``stat`` (Appendix B) -> common status. ENROUTE and ACCEPTD say nothing
#: final yet; DELETED and REJECTD mean the SMSC will not deliver it.
RECEIPT_STATS: dict[str, Status] = {
    "ENROUTE": Status.SENT,
    "ACCEPTD": Status.SENT,
    "DELIVRD": Status.DELIVERED,
    "EXPIRED": Status.EXPIRED,
    "DELETED": Status.FAILED,
    "UNDELIV": Status.UNDELIVERED,
    "UNKNOWN": Status.UNKNOWN,
    "REJECTD": Status.FAILED,
}

#: The ``message_state`` TLV (§5.2.28) -> its name in receipts' text, so both forms of a
#: receipt are kept the same way (``raw_status``) and mapped by one table.
MESSAGE_STATES: dict[int, str] = {
    1: "ENROUTE",
    2: "DELIVRD",
    3: "EXPIRED",
    4: "DELETED",
    5: "UNDELIV",
    6: "ACCEPTD",
    7: "UNKNOWN",
    8: "REJECTD",
}
