"""The ``smpp`` provider: straight to a carrier's SMSC over SMPP 3.4, the way carriers
themselves send (../shared/reference/providers.md, SMPP section).

A message goes as one submit_sm per part (``parts``), each part's id kept: a receipt
comes per part, and the message's final state follows from all of them
(``ledger.receipts``: delivered only when every part is). Receipts and handset messages
arrive on the binds as deliver_sm; each is stored in the ledger through the worker's
``Inbox`` before it is answered, so one lost in a crash comes again.

What can go wrong, and what it means for the message (``statuses``):

- the first part refused: classified by its command_status (throttling and a full
  queue pause the provider; an invalid number fails the message; a credential halts);
- a part after the first refused or unanswered: the handset may already show the start
  of the text, so the message is never sent again from the start. A refusal that is
  retryable (throttling) is retried for that part alone, for up to ``PART_PATIENCE``
  seconds; otherwise the message becomes ``unknown`` (code ``partial``);
- no submit_sm_resp, or the bind lost while waiting: the SMSC may have the message
  (``ambiguous``: ``unknown``, never resent blindly);
- no bind (the SMSC unreachable): nothing was sent; the provider pauses and retries.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

import structlog

from campaigns.limits import Limits
from providers.base import (
    CODE_LENGTH,
    AccountCheck,
    ErrorKind,
    Inbox,
    OutgoingMessage,
    Provider,
    ProviderConfig,
    Receipt,
    ReceiptSink,
    SendError,
    SendResult,
    storable,
)
from providers.smpp import parts as partition
from providers.smpp import pdu as codec
from providers.smpp import receipts
from providers.smpp.config import SmppConfig
from providers.smpp.errors import (
    BindRefused,
    GenericNack,
    MalformedPdu,
    NotBound,
    PduError,
    SmppError,
)
from providers.smpp.pdu import Pdu
from providers.smpp.pool import Binds, modes_for
from providers.smpp.session import Bind, Mode
from providers.smpp.statuses import code as status_code
from providers.smpp.statuses import describe, meaning

log = structlog.get_logger("loa.providers.smpp")

#: Seconds a part after the first may keep being retried (throttled, queue full, no
#: bind) before the message is given up as ``unknown``: its first parts are out.
PART_PATIENCE = 30.0
#: A brandname is at most 11 characters (Vietnamese carriers' rule, and SMPP's TON 5).
BRANDNAME_MAX = 11


def validity_period(until: datetime, now: datetime) -> str | None:
    """SMPP's relative validity (``YYMMDDhhmmss000R``, §7.1.1) for ``until``; ``None``
    when already past or beyond 99 days (the SMSC's own default then applies)."""
    seconds = int((until - now).total_seconds())
    if seconds <= 0:
        return None
    days, rest = divmod(seconds, 86400)
    if days > 99:
        return None
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"0000{days:02d}{hours:02d}{minutes:02d}{seconds:02d}000R"


def _error(status: int) -> SendError:
    """The SendError for a submit_sm the SMSC refused with ``status``."""
    found = meaning(status)
    detail = f"{found.name}: {found.detail}" if found.name else found.detail
    if found.setting:
        detail += f" (check the setting {found.setting})"
    return SendError(
        found.kind,
        status_code(status),
        detail,
        provider_wide=found.provider_wide,
        throttled=found.throttled,
    )


class _Partial(Exception):
    """A part after the first could not go: the message is given up as unknown."""


class SmppProvider(Provider):
    type: ClassVar[str] = "smpp"
    config_model: ClassVar[type[ProviderConfig]] = SmppConfig
    listens: ClassVar[bool] = True
    config: SmppConfig

    def __init__(
        self,
        name: str,
        config: Any,
        receipt_sink: ReceiptSink | None = None,
        inbox: Inbox | None = None,
    ) -> None:
        super().__init__(name, config, receipt_sink, inbox)
        cfg = self.config
        sender_max = 20 if cfg.source_ton in (1, 2) else BRANDNAME_MAX
        #: Per instance: a 16-bit reference leaves fewer units per part, and an SMSC
        #: reading Latin-1 or ASCII for GSM texts cannot carry some GSM characters.
        self.limits = Limits(
            max_sender=sender_max,
            part_header=7 if cfg.concatenation == "udh16" else 6,
            uncarried=partition.uncarried(cfg.alphabet),
        )
        self._binds: Binds | None = None

    # ---- the binds

    def _bind(self, mode: Mode) -> Bind:
        cfg = self.config
        return Bind(
            cfg.host,
            cfg.port,
            system_id=cfg.system_id,
            password=cfg.password.get_secret_value(),
            system_type=cfg.system_type,
            mode=mode,
            window=cfg.window,
            response_timeout=cfg.response_timeout,
            enquire_link_interval=cfg.enquire_link_interval or None,
            on_deliver=self._delivered if mode != "transmitter" else None,
        )

    @property
    def binds(self) -> Binds:
        """This process's binds to the SMSC (made on first use, on the sending loop)."""
        if self._binds is None:
            cfg = self.config
            self._binds = Binds(
                self._bind,
                modes_for(cfg.bind_mode, cfg.binds),
                cfg.reconnect_min,
                cfg.reconnect_max,
                self.name,
            )
        return self._binds

    async def open(self) -> None:
        """Bind now, not at the first send: receipts and handset messages come to a bound
        receiver whether or not this process sends anything."""
        self.binds.start()

    async def aclose(self) -> None:
        if self._binds is not None:
            await self._binds.close(self.config.response_timeout)

    # ---- sending

    def _addresses(self, message: OutgoingMessage) -> dict[str, Any]:
        cfg = self.config
        sender = cfg.source_addr or message.sender
        digits = sender.removeprefix("+")
        numeric = digits.isdigit()
        ton = cfg.source_ton if cfg.source_ton is not None else (1 if numeric else 5)
        npi = cfg.source_npi if cfg.source_npi is not None else (1 if numeric else 0)
        return {
            "source_addr_ton": ton,
            "source_addr_npi": npi,
            "source_addr": digits if numeric else sender,
            "dest_addr_ton": cfg.dest_ton,
            "dest_addr_npi": cfg.dest_npi,
            "destination_addr": message.to.removeprefix("+"),
            "registered_delivery": 1 if cfg.registered_delivery else 0,
            "validity_period": validity_period(message.valid_until, datetime.now(UTC)),
        }

    def submissions(self, message: OutgoingMessage) -> list[dict[str, Any]]:
        """Every submit_sm of ``message``, whole (addresses and part), in part order.

        Raises:
            SendError: permanent, a text this SMSC's coding cannot carry (planning
                refuses those first) or one of more than 255 parts.
        """
        cfg = self.config
        try:
            pieces = partition.submissions(
                message.text,
                message.encoding,
                reference=message.message_id,
                concatenation=cfg.concatenation,
                alphabet=cfg.alphabet,
                gsm_data_coding=cfg.gsm_data_coding,
            )
        except UnicodeEncodeError:
            raise SendError(
                ErrorKind.PERMANENT, "uncarried", f"a character {cfg.alphabet} cannot carry"
            ) from None
        except ValueError as exc:
            raise SendError(ErrorKind.PERMANENT, "too_long", str(exc)) from None
        common = self._addresses(message)
        return [{**common, **piece} for piece in pieces]

    async def send(self, message: OutgoingMessage) -> SendResult:
        submits = self.submissions(message)
        if self.config.concatenation != "payload" and message.parts not in (0, len(submits)):
            # Planned and billed under other settings than these (the launching machine's
            # CONCATENATION is not this worker's): sent, the SMSC would get other parts
            # than were billed. Nothing goes until a person makes the settings agree.
            raise SendError(
                ErrorKind.HALT,
                "parts_mismatch",
                f"planned as {message.parts} parts, cut as {len(submits)} here "
                f"(concatenation {self.config.concatenation}): the launching machine and "
                "the workers must share the provider's settings",
            )
        ids: list[str] = []
        for index, fields in enumerate(submits):
            try:
                ids.append(await self._submit(fields, later=index > 0))
            except _Partial as why:
                detail = f"{index} of {len(submits)} parts accepted, then {why}"
                raise SendError(ErrorKind.AMBIGUOUS, "partial", detail) from None
        canonical = [receipts.canonical_id(i, self.config.receipt_ids, False) for i in ids]
        return SendResult(canonical[0], tuple(canonical) if len(canonical) > 1 else ())

    async def _submit(self, fields: Mapping[str, Any], later: bool) -> str:
        """One submit_sm, answered with an id; ``later``: a part after the first, retried
        while retryable (``PART_PATIENCE``), else ``_Partial``."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + PART_PATIENCE
        pause = 0.1
        while True:
            try:
                return await self._submit_once(fields)
            except SendError as error:
                if not later:
                    raise
                if error.kind is not ErrorKind.RETRYABLE or loop.time() >= give_up:
                    raise _Partial(f"{error.code} {error.detail}".strip()) from None
            await asyncio.sleep(min(pause, max(0.0, give_up - loop.time())))
            pause = min(pause * 2, 2.0)

    async def _submit_once(self, fields: Mapping[str, Any]) -> str:
        cfg = self.config
        while True:
            try:
                bind = await self.binds.take(cfg.response_timeout)
            except BindRefused as refused:
                raise self._refusal(refused) from None
            except NotBound as exc:
                raise SendError(
                    ErrorKind.RETRYABLE, "not_bound", str(exc), provider_wide=True
                ) from None
            try:
                status, message_id = await bind.submit_sm(**fields)
            except NotBound:
                continue  # closed before it was written: another bind (or a new one) takes it
            except GenericNack as nack:
                raise SendError(
                    ErrorKind.RETRYABLE, "generic_nack", f"the SMSC could not read it: {nack}"
                ) from None
            except PduError as exc:
                raise SendError(ErrorKind.PERMANENT, "invalid_pdu", str(exc)) from None
            except MalformedPdu as exc:
                raise SendError(ErrorKind.AMBIGUOUS, "bad_answer", str(exc)) from None
            except SmppError as exc:  # ResponseTimeout, ConnectionLost: the SMSC may have it
                raise SendError(ErrorKind.AMBIGUOUS, "no_answer", str(exc)) from None
            if status != codec.ESME_ROK:
                raise _error(status)
            if not message_id:
                # Taken, but with nothing to match its receipts by: recorded ``sent`` it
                # would wait for a receipt that can never be matched (and every such
                # message would share the id ""). Whether it reaches the handset is
                # unknown; it is not sent again.
                log.warning("smpp.accepted_without_id", provider=self.name)
                raise SendError(
                    ErrorKind.AMBIGUOUS,
                    "no_message_id",
                    "the SMSC accepted it without a message_id: its receipt cannot be matched",
                )
            return message_id

    def _refusal(self, refused: BindRefused) -> SendError:
        """The halt for a refused bind: its code carries the status (``bind_0x0E``), its
        detail the status's name and meaning, and the setting to check."""
        found = meaning(refused.status)
        detail = "the SMSC refused the bind"
        if found.name:
            detail += f": {found.name}, {found.detail}"
        if found.setting:
            detail += f"; check the setting {found.setting} of provider {self.name!r}"
        return SendError(ErrorKind.HALT, f"bind_{status_code(refused.status)}", detail)

    # ---- what arrives on the binds

    async def _delivered(self, incoming: Pdu) -> int:
        """Store a deliver_sm / data_sm; the command_status to answer it with."""
        if self.inbox is None:
            return codec.ESME_RX_T_APPN  # nowhere to keep it: the SMSC keeps it for later
        fields = receipts.fields_of(incoming)
        if incoming.is_receipt:
            try:
                receipt = self.parse_receipt(fields)
            except ValueError as exc:
                # Sent again it would be as unreadable: answered, and said.
                log.warning("smpp.receipt_unreadable", provider=self.name, why=str(exc))
                return codec.ESME_ROK
            try:
                await self.inbox.receipt(receipt, fields)
            except ValueError as exc:  # one the ledger can never hold
                log.warning("smpp.receipt_refused", provider=self.name, why=str(exc))
            return codec.ESME_ROK
        # SMPP gives a handset's message no id: the same words from the same handset are
        # the same fields, and were once stored once ("OK" sent twice was one message).
        # Each delivery is a message of its own, then; the price is one stored twice if
        # the SMSC sends it again because our answer was lost in a crash, which is rarer
        # than a person sending the same words twice.
        fields["delivery"] = uuid.uuid4().hex
        message = receipts.handset_message(incoming, fields, self.config.alphabet)
        await self.inbox.handset(message)
        return codec.ESME_ROK

    def parse_receipt(self, payload: Mapping[str, str]) -> Receipt:
        return receipts.parse(payload, self.config.receipt_ids)

    def describe(self, code: str) -> str | None:
        return describe(code) or super().describe(code)

    async def check_account(self) -> AccountCheck:
        """Bind once, as the worker would, and unbind: the SMSC judges our system_id and
        password without anything being sent."""
        cfg = self.config
        mode: Mode = "transceiver" if cfg.bind_mode == "transceiver" else "transmitter"
        bind = self._bind(mode)
        bind.on_deliver = None  # anything delivered meanwhile stays at the SMSC
        try:
            answer = await bind.connect()
        except BindRefused as refused:
            error = self._refusal(refused)
            problem = f"{error.detail} (command_status {status_code(refused.status)})"
            return AccountCheck(True, problem, refused=meaning(refused.status).setting != "")
        except (OSError, SmppError) as exc:
            why = str(exc) or type(exc).__name__
            return AccountCheck(problem=f"cannot bind to {cfg.host}:{cfg.port}: {why}")
        smsc = storable(answer.text("system_id") or "", CODE_LENGTH)
        await bind.unbind()
        said = f"bind {mode} accepted" + (f" by SMSC {smsc!r}" if smsc else "")
        return AccountCheck(True, facts={"smsc_system_id": smsc, "mode": mode}, said=said)
