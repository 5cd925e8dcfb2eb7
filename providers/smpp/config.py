"""The settings of one SMPP provider instance: what a carrier's SMSC operator hands over
when they open an account (host, port, system_id, password, system_type, the agreed
throughput and window) and what their SMSC expects of a message (address types, data
codings, how long messages are joined, how receipts write ids).

Every field is checked when the settings are read, against SMPP 3.4's sizes
(../shared/reference/providers.md, SMPP section): a password of nine characters cannot be
carried at all, and is said so at start-up rather than at the first bind.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator

from providers.base import ProviderConfig

#: The longest values SMPP 3.4's bind carries (C-strings, without their NUL).
SYSTEM_ID_MAX, PASSWORD_MAX, SYSTEM_TYPE_MAX = 15, 8, 12

BindMode = Literal["transceiver", "transmitter+receiver"]
#: How a long message is joined: a user data header with an 8- or 16-bit reference, the
#: SAR TLVs, or the whole text in ``message_payload`` (the SMSC splits it).
Concatenation = Literal["udh8", "udh16", "sar", "payload"]
#: What the SMSC reads under data_coding 0x00 (its "default alphabet"): GSM 03.38 for most,
#: Latin-1 or ASCII for some.
Alphabet = Literal["gsm", "latin1", "ascii"]
#: How the SMSC writes ids in receipts, relative to submit_sm_resp: the same, or in
#: decimal where submit_sm_resp gave hex, or in hex where it gave decimal (Kannel's
#: ``msg-id-type``: the classic cause of receipts that never match).
ReceiptIds = Literal["same", "decimal", "hex"]


class SmppConfig(ProviderConfig):
    """One SMSC account.

    Throughput is the SMSC's agreed TPS, in submit_sm (``rate_unit = "parts"``, the
    default here: an SMSC counts each part), shared by every process through the worker's
    limiter; ``window`` bounds what is unanswered on each bind.
    """

    type: str = "smpp"
    rate_unit: Literal["messages", "parts"] = "parts"
    host: str = Field(min_length=1, description="the SMSC's host name or address")
    port: int = Field(default=2775, ge=1, le=65535)
    system_id: str = Field(min_length=1, max_length=SYSTEM_ID_MAX)
    password: SecretStr
    system_type: str = Field(default="", max_length=SYSTEM_TYPE_MAX)
    bind_mode: BindMode = Field(
        default="transceiver",
        description="transceiver binds send and receive; transmitter+receiver opens "
        "`binds` transmitters and one receiver",
    )
    binds: int = Field(default=1, ge=1, le=64, description="sending binds per worker process")
    window: int = Field(default=10, ge=1, le=1000, description="submit_sm unanswered per bind")
    response_timeout: float = Field(default=10.0, gt=0, le=120, description="seconds")
    enquire_link_interval: float = Field(default=30.0, ge=0, le=3600, description="0: never")
    reconnect_min: float = Field(default=1.0, gt=0, le=60, description="first wait, seconds")
    reconnect_max: float = Field(default=60.0, gt=0, le=3600, description="longest wait")
    #: None: by the sender's shape: a brandname 5/0 (alphanumeric), digits 1/1.
    source_ton: int | None = Field(default=None, ge=0, le=6)
    source_npi: int | None = Field(default=None, ge=0, le=18)
    dest_ton: int = Field(default=1, ge=0, le=6)
    dest_npi: int = Field(default=1, ge=0, le=18)
    gsm_data_coding: Literal[0, 1, 3] = Field(
        default=0, description="data_coding of GSM-7 texts: 0 default alphabet, 1 IA5, 3 Latin-1"
    )
    default_alphabet: Alphabet = Field(
        default="gsm", description="what the SMSC reads under data_coding 0"
    )
    concatenation: Concatenation = "udh8"
    receipt_ids: ReceiptIds = "same"
    registered_delivery: bool = Field(default=True, description="ask for delivery receipts")
    source_addr: str | None = Field(
        default=None,
        max_length=20,
        description="the sender every message carries, when not the campaign's",
    )

    @field_validator("password")
    @classmethod
    def _password(cls, value: SecretStr) -> SecretStr:
        """SMPP 3.4 carries at most 8 characters: a longer one could only be cut, and a
        cut password is a wrong one (said now, not at the first bind)."""
        secret = value.get_secret_value()
        if not secret:
            raise ValueError("the SMSC account's password is empty")
        if len(secret) > PASSWORD_MAX:
            raise ValueError(
                f"is {len(secret)} characters; SMPP 3.4 carries at most {PASSWORD_MAX} "
                "(ask the SMSC's operator for one that fits)"
            )
        if not secret.isascii() or "\0" in secret:
            raise ValueError("must be ASCII without NUL (a C-string in the bind)")
        return value

    @field_validator("system_id", "system_type", "host")
    @classmethod
    def _ascii(cls, value: str) -> str:
        if not value.isascii() or not value.isprintable():
            raise ValueError("must be printable ASCII")
        return value

    @property
    def alphabet(self) -> Alphabet:
        """The alphabet GSM-7 texts are written in, as ``gsm_data_coding`` says."""
        if self.gsm_data_coding == 1:
            return "ascii"
        if self.gsm_data_coding == 3:
            return "latin1"
        return self.default_alphabet
