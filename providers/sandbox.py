"""A simulated carrier, for the demo, the tests and the benchmarks.

It answers like an SMSC: after a configurable latency it accepts a message (and later
sends a delivery receipt, ``DELIVRD`` or ``UNDELIV``, after a random delay) or fails it
with one of the four error kinds, each at its own rate. Every decision is drawn from a
random generator seeded by ``(seed, message id, attempt)``, so a given seed gives the same
outcomes whatever the order or concurrency of sends, and a retry may succeed.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import random
from collections.abc import Mapping
from typing import ClassVar

from pydantic import Field, model_validator

from campaigns.limits import Limits
from campaigns.status import Status
from providers.base import (
    ErrorKind,
    InboundRequest,
    OutgoingMessage,
    Provider,
    ProviderConfig,
    Receipt,
    SendError,
    SendResult,
)

#: Receipt ``stat`` values (SMPP 3.4 delivery-receipt vocabulary) -> common status.
RECEIPT_STATUSES: dict[str, Status] = {
    "ACCEPTD": Status.SENT,  # accepted by the SMSC, nothing final yet
    "DELIVRD": Status.DELIVERED,  # the handset has it
    "UNDELIV": Status.UNDELIVERED,  # the network gave up (handset off too long, …)
    "EXPIRED": Status.EXPIRED,  # validity ran out in the SMSC's queue
    "REJECTD": Status.FAILED,  # the SMSC refused it
    "DELETED": Status.FAILED,  # deleted by the operator before delivery
    "UNKNOWN": Status.UNKNOWN,  # the SMSC itself does not know
}

#: Error codes the simulated SMSC answers with (SMPP command_status values).
CODES: dict[ErrorKind, str] = {
    ErrorKind.RETRYABLE: "0x58",  # ESME_RTHROTTLED: not processed, try later
    ErrorKind.PERMANENT: "0x0B",  # ESME_RINVDSTADR: invalid destination
    ErrorKind.HALT: "0x0E",  # ESME_RINVPASWD: our credentials were refused
}


#: What the simulated SMSC's codes mean (SMPP names), for reports.
MEANINGS: dict[str, str] = {
    "0x58": "ESME_RTHROTTLED: throttled, not processed",
    "0x0B": "ESME_RINVDSTADR: invalid destination number",
    "0x0E": "ESME_RINVPASWD: credentials refused",
    "001": "not delivered: the handset could not be reached",
}


class SandboxConfig(ProviderConfig):
    type: str = "sandbox"
    seed: int = 2020
    latency_ms: float = Field(default=5.0, ge=0, le=10_000)
    retryable_rate: float = Field(default=0.02, ge=0, le=1)
    permanent_rate: float = Field(default=0.01, ge=0, le=1)
    ambiguous_rate: float = Field(default=0.005, ge=0, le=1)
    halt_rate: float = Field(default=0.0, ge=0, le=1)
    undelivered_rate: float = Field(default=0.04, ge=0, le=1)
    #: Behave like a gateway with an idempotency key: a resend of an accepted message id
    #: is answered "already accepted" with the same provider id, and nothing is sent twice.
    idempotency_keys: bool = False
    receipt_min_delay_ms: float = Field(default=200.0, ge=0)
    receipt_max_delay_ms: float = Field(default=1500.0, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> SandboxConfig:
        failing = self.retryable_rate + self.permanent_rate + self.ambiguous_rate
        if failing + self.halt_rate > 1:
            raise ValueError("the failure rates add up to more than 1")
        if self.receipt_max_delay_ms < self.receipt_min_delay_ms:
            raise ValueError("receipt_max_delay_ms is below receipt_min_delay_ms")
        return self


class SandboxProvider(Provider):
    type: ClassVar[str] = "sandbox"
    config_model: ClassVar[type[ProviderConfig]] = SandboxConfig
    #: A simulated carrier takes any text and any sender: none of its own rules to model
    #: (and no account to check: ``check_account`` finds nothing wrong).
    limits: ClassVar[Limits] = Limits()
    config: SandboxConfig

    @property
    def idempotent(self) -> bool:
        return self.config.idempotency_keys

    def _draw(self, message: OutgoingMessage) -> random.Random:
        return random.Random(f"{self.config.seed}:{message.message_id}:{message.attempt}")

    async def send(self, message: OutgoingMessage) -> SendResult:
        cfg = self.config
        draw = self._draw(message)
        if cfg.latency_ms:
            await asyncio.sleep(cfg.latency_ms / 1000 * (0.5 + draw.random()))  # round trip
        roll = draw.random()
        for kind, rate in (
            (ErrorKind.HALT, cfg.halt_rate),
            (ErrorKind.RETRYABLE, cfg.retryable_rate),
            (ErrorKind.PERMANENT, cfg.permanent_rate),
        ):
            if roll < rate:
                raise SendError(kind, CODES[kind], "simulated")
            roll -= rate
        if roll < cfg.ambiguous_rate:
            # The request went out and no answer came back: the SMSC may have taken it.
            raise TimeoutError("simulated read timeout")
        digest = hashlib.sha1(f"{cfg.seed}:{message.message_id}".encode()).hexdigest()
        provider_id = f"SB{digest[:20]}"
        if self.receipt_sink is not None:
            stat = "UNDELIV" if draw.random() < cfg.undelivered_rate else "DELIVRD"
            delay_ms = draw.uniform(cfg.receipt_min_delay_ms, cfg.receipt_max_delay_ms)
            receipt = {
                "id": provider_id,
                "stat": stat,
                "err": "000" if stat == "DELIVRD" else "001",
            }
            self.receipt_sink(receipt, delay_ms / 1000)
        return SendResult(provider_message_id=provider_id)

    def describe(self, code: str) -> str | None:
        return MEANINGS.get(code) or super().describe(code)

    def authenticate(self, request: InboundRequest) -> bool:
        """The simulated carrier lives on this machine: receipts from loopback only, and
        never relayed. A reverse proxy on this machine connects from the loopback too,
        so a request it forwards (it says so in ``Forwarded`` or ``X-Forwarded-For``, or
        ``X-Real-IP``) came from elsewhere, whatever its peer address."""
        if any(name in request.headers for name in RELAYED):
            return False
        return _loopback(request.client)

    def parse_receipt(self, payload: Mapping[str, str]) -> Receipt:
        try:
            provider_id, stat = payload["id"], payload["stat"]
        except KeyError as missing:
            raise ValueError(f"sandbox receipt without {missing.args[0]!r}") from None
        return Receipt(
            provider_message_id=provider_id,
            status=RECEIPT_STATUSES.get(stat),
            raw_status=stat,
            code=payload.get("err"),
        )

    def classify(self, error: Exception) -> SendError:
        if isinstance(error, TimeoutError):
            return SendError(ErrorKind.AMBIGUOUS, "read_timeout", "no answer after sending")
        return super().classify(error)


#: Headers a proxy adds to what it relays (names in lower case, as the webhook gives them).
RELAYED = ("forwarded", "x-forwarded-for", "x-real-ip")


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False
