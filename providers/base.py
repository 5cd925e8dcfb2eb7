"""The contract every provider module fulfils, and the closed set of send errors.

A provider does three things: send one message, parse one delivery receipt into the
common status model, and classify whatever went wrong during a send into one of four
kinds, each of which the worker handles its own way:

- ``retryable``: the provider did not process the request (connect error, 5xx, 429,
  queue full). Safe to send again later.
- ``permanent``: the provider refused this message for good (bad number, blocked).
- ``ambiguous``: the request may have reached the provider (a read timeout after the
  request went out). Resending risks a duplicate SMS, so the message becomes ``unknown``.
- ``halt``: nothing will succeed until a person acts (bad credentials, suspended account,
  no balance). The provider's queue stops taking work.
- ``unreachable``: this channel cannot reach this person at all (no Zalo account behind
  the number, ZNS refused by the user): not a failure of the message but of the channel,
  and the reason a campaign's next channel (SMS) is tried (``ledger.fallback``).

A refusal that every message of the campaign would meet (a template the provider does not
know) is ``permanent`` with ``campaign_wide``: the campaign stops at its first message,
not after a million.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from campaigns.limits import Limits
from campaigns.status import Status
from campaigns.text import Encoding
from providers.tokens import MemoryTokens, TokenStore

#: The longest each provider-given string may be, as the ledger's columns hold it
#: (``ledger.schema``; ``tests/providers/test_hostile_answers.py`` holds them equal):
#: a provider's message id (``messages.provider_message_id``), an error code
#: (``messages.error_code``), a receipt's raw status and network (``receipts``).
ID_LENGTH, CODE_LENGTH, RAW_STATUS_LENGTH, NETWORK_LENGTH = 64, 32, 64, 20
#: A human explanation (``SendError.detail``: logs, a halt's reason, ``loa provider test``).
DETAIL_LENGTH = 200
#: What stands in for a character the ledger cannot store (or a terminal would obey).
REPLACEMENT = "\ufffd"


def storable(text: str, limit: int) -> str:
    """A string a provider gave, made fit for the ledger and for logs: every character
    that is not printable (NUL, which PostgreSQL's text refuses outright, an escape
    sequence's ESC, a line break, a lone surrogate no encoder takes …) replaced by
    U+FFFD, and cut to ``limit`` characters (the column's size). What is left stays
    recognisable: ``"\\x1b[31mred\\x00"`` becomes ``"\ufffd[31mred\ufffd"``.

    Every provider answer passes through here once, where it becomes a ``SendResult``,
    a ``SendError`` or a ``Receipt``: nothing a provider says can make a result the
    ledger refuses (which once left messages ``sending``, resent by the reaper forever).
    """
    if len(text) <= limit and text.isprintable():
        return text  # the usual case, at the cost of one scan
    return "".join(ch if ch.isprintable() else REPLACEMENT for ch in text[:limit])


class ErrorKind(StrEnum):
    RETRYABLE = "retryable"
    PERMANENT = "permanent"
    AMBIGUOUS = "ambiguous"
    HALT = "halt"
    UNREACHABLE = "unreachable"


class SendError(Exception):
    """A failed send, classified.

    Parameters:
        kind: how the worker must treat it.
        code: the provider's own code (kept in the ledger), e.g. ``"21211"`` or ``"http_503"``;
            made ``storable`` (``CODE_LENGTH``), whatever the provider answered.
        detail: a short human explanation, never containing the number or the text
            (``storable``, ``DETAIL_LENGTH``).
        retry_after: seconds the provider asked us to wait, if it said.
        provider_wide: the provider as a whole is down or throttling (5xx, refused
            connection, 429), so the next messages would fail the same way: the worker
            pauses that provider and does not charge the message an attempt.
        opt_out: the recipient told the provider to send them nothing more (an STOP
            reply): the worker adds the number to the ``opt_out`` suppression list.
        throttled: a provider-wide refusal because of our rate (429, "too many
            requests", SMPP's ESME_RTHROTTLED), not an outage: the worker lowers the
            rate instead of starting a cooldown (``worker.sending.ratelimit``).
        campaign_wide: every message of this campaign would be refused the same way (its
            template is unknown to the provider, its data does not fit it): the worker
            pauses the campaign with ``detail`` as the reason, for a person to mend.
    """

    def __init__(
        self,
        kind: ErrorKind,
        code: str,
        detail: str = "",
        retry_after: float | None = None,
        provider_wide: bool = False,
        opt_out: bool = False,
        throttled: bool = False,
        campaign_wide: bool = False,
    ) -> None:
        code, detail = storable(str(code), CODE_LENGTH), storable(str(detail), DETAIL_LENGTH)
        super().__init__(f"{kind.value} {code}: {detail}" if detail else f"{kind.value} {code}")
        self.kind = kind
        self.code = code
        self.detail = detail
        self.retry_after = retry_after
        self.provider_wide = provider_wide
        self.opt_out = opt_out
        self.throttled = throttled
        self.campaign_wide = campaign_wide


@dataclass(frozen=True, slots=True)
class Template:
    """A message registered with the provider beforehand, sent by its id with the values
    of its parameters (a Zalo ZNS template: ``id`` ``"231432"``, ``data``
    ``{"ten": "Lan", "ma": "BZ-7"}``), rendered from the recipient's row like SMS text."""

    id: str
    data: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """What a provider needs to send one message. ``message_id`` is Loa's own id: providers
    with an idempotency key use it, so a resend can never become a second SMS.
    ``template``: for a channel that sends registered templates instead of text (then
    ``text`` is empty and ``parts`` 1)."""

    message_id: int
    to: str
    text: str
    sender: str
    encoding: Encoding
    parts: int
    attempt: int
    valid_until: datetime
    template: Template | None = None


@dataclass(frozen=True, slots=True)
class SendResult:
    """The provider accepted the message and gave it this id (made ``storable``: cut
    to ``ID_LENGTH``, receipts' ids are cleaned the same way, so they still match).

    ``parts``: when the message went as several submissions, each with its own id (SMPP's
    submit_sm per part), every part's id in part order, the first being
    ``provider_message_id``; a receipt then comes per part, and the message's final state
    follows from all of them (``ledger.receipts``). Empty for a message sent whole."""

    provider_message_id: str
    parts: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        clean = storable(str(self.provider_message_id), ID_LENGTH)
        if clean is not self.provider_message_id:
            object.__setattr__(self, "provider_message_id", clean)
        if self.parts:
            object.__setattr__(
                self, "parts", tuple(storable(str(part), ID_LENGTH) for part in self.parts)
            )


@dataclass(frozen=True, slots=True)
class Receipt:
    """A delivery receipt in the common model. ``raw_status`` is kept as the provider
    wrote it; ``status`` is ``None`` when the provider's status has no mapping (kept and
    flagged, never guessed)."""

    provider_message_id: str
    status: Status | None
    raw_status: str
    code: str | None = None
    #: The network that really served the number, when the provider says (a ported
    #: number's real carrier, not the one its prefix was allocated to).
    network: str | None = None
    #: Loa's own id of the message, when the provider echoes it (Zalo's ``tracking_id``):
    #: it still finds a message whose send answer, with the provider's id, was lost.
    message_id: int | None = None

    def __post_init__(self) -> None:
        """Every field the provider wrote made ``storable`` (the id as ``SendResult``
        cleans it, so a receipt still finds its message)."""
        for name, limit in (
            ("provider_message_id", ID_LENGTH),
            ("raw_status", RAW_STATUS_LENGTH),
            ("code", CODE_LENGTH),
            ("network", NETWORK_LENGTH),
        ):
            value = getattr(self, name)
            if value is not None:
                clean = storable(str(value), limit)
                if clean is not value:
                    object.__setattr__(self, name, clean)


@dataclass(frozen=True, slots=True)
class HandsetMessage:
    """A message a handset sent to one of our numbers (mobile-originated: SMPP's
    ``deliver_sm`` without the receipt bit), as a provider received it.

    Attributes:
        source: the handset's number as the provider wrote it (personal data: never
            logged whole).
        destination: the number or short code it was sent to.
        text: what it says, decoded from its coding.
        fields: everything the provider sent about it, as text: what makes a replay (the
            same message sent again because our answer was lost) the same message, and
            two messages alike in their words two (a provider with no message id adds
            a mark of each delivery).
    """

    source: str
    destination: str
    text: str
    fields: Mapping[str, str] = field(default_factory=dict)


class Inbox(Protocol):
    """Where a provider that receives on its own connection (an SMPP bind) stores what
    arrives, durably, before it answers the sender: a receipt or a handset message lost in
    a crash then comes again, because it was never acknowledged. The worker provides it
    (``worker.runtime``); each call returns once the ledger has committed, and raises
    whatever storing raised (the provider then answers "try again"), except ``ValueError``
    for one the ledger can never hold (an id too long …: answered, sending it again would
    not help)."""

    async def receipt(self, receipt: Receipt, fields: Mapping[str, str]) -> None: ...

    async def handset(self, message: HandsetMessage) -> None: ...


@dataclass(frozen=True)
class InboundRequest:
    """A request to a provider instance's receipt route, as the webhook received it:
    enough for the provider module to check that it really comes from the provider."""

    url: str  # as this server saw it (behind a proxy, not what the provider called)
    query: Mapping[str, str]
    form: Mapping[str, str]  # a POST's form fields (empty for a GET)
    headers: Mapping[str, str]  # names in lower case
    client: str  # the peer's address
    #: The body exactly as received (a provider that signs it checks these bytes); for a
    #: JSON body, ``form`` holds its fields flattened (``message.msg_id``), as text.
    body: bytes = b""

    @property
    def fields(self) -> dict[str, str]:
        """What the receipt says: the query string and the form together."""
        return {**self.query, **self.form}


@dataclass(frozen=True)
class AccountCheck:
    """What asking the provider about our own account found (``Provider.check_account``),
    without sending anything.

    Attributes:
        checked: the provider was asked and judged our credentials (``False``: a provider
            with nothing to ask, or one that could not be reached).
        problem: what stands in the way of sending, or ``None``.
        refused: the provider refused our credentials (a subset of ``problem``).
        facts: what it told about the account, for ``--json`` (a balance as a number,
            its currency, an account id or status …).
        said: the same for people, Vietnamese first (``số dư · balance 2.540.300 ₫``).
    """

    checked: bool = False
    problem: str | None = None
    refused: bool = False
    facts: Mapping[str, object] = field(default_factory=dict)
    said: str = ""


def vnd(amount: float) -> str:
    """An amount of đồng the Vietnamese way: ``2540300`` -> ``2.540.300 ₫`` (a fraction,
    rare, after a decimal comma: ``1.234,5 ₫``)."""
    whole = f"{amount:,.0f}" if float(amount).is_integer() else f"{amount:,.2f}".rstrip("0")
    return whole.replace(",", " ").replace(".", ",").replace(" ", ".") + " ₫"


#: Where a provider hands receipts it produces itself (a simulated carrier); real
#: carriers post them to the webhook, which feeds the same place.
ReceiptSink = Callable[[Mapping[str, str], float], None]


class ProviderConfig(BaseModel):
    """Base of each provider module's settings model. Secrets are ``SecretStr``.

    Every provider instance may have an agreed throughput: ``rate_per_second`` messages
    (or parts, with ``rate_unit = "parts"``) and a ``burst`` above it, and each sender
    (brandname) on it one of its own (``sender_rate_per_second``, ``sender_burst``);
    carriers cut off a brandname that goes faster. Unset means no limit.
    """

    # Settings read a nested environment value as JSON when it parses as JSON, so an
    # all-digit key (``…__API_KEY=123456``) arrives as a number: take it as the text it was.
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)

    type: str
    rate_per_second: float | None = Field(default=None, ge=0.01, le=100_000)
    burst: int | None = Field(default=None, ge=1, le=100_000)
    rate_unit: Literal["messages", "parts"] = "messages"
    #: Each sender (brandname) may also have its own agreed rate on this instance, in the
    #: same unit; both limits then hold.
    sender_rate_per_second: float | None = Field(default=None, ge=0.01, le=100_000)
    sender_burst: int | None = Field(default=None, ge=1, le=100_000)
    #: The countries (ISO 3166 codes) this instance may send to, when narrower than its
    #: type's (an account whose geographic permissions allow only some): routing never
    #: gives it a number from elsewhere.
    countries: frozenset[str] | None = None
    #: How long after sending a final receipt may still come: after that the finaliser
    #: records the message ``unknown`` (a receipt arriving later still corrects it).
    receipt_window_hours: float = Field(default=72.0, gt=0, le=24 * 30)

    @field_validator("countries")
    @classmethod
    def _country_codes(cls, value: frozenset[str] | None) -> frozenset[str] | None:
        if value is not None:
            if not value:
                raise ValueError("name at least one country, or leave it unset for any")
            wrong = sorted(c for c in value if not re.fullmatch(r"[A-Z]{2}", c))
            if wrong:
                raise ValueError(f"not two-letter country codes such as 'VN': {wrong}")
        return value


class Provider(ABC):
    """One configured provider instance.

    Subclasses set ``type`` (the name used in settings) and ``config_model``, and are
    registered in ``providers/__init__.py``.
    """

    type: ClassVar[str]
    config_model: ClassVar[type[ProviderConfig]]
    #: The countries this type of provider can reach at all (``None``: anywhere).
    reach: ClassVar[frozenset[str] | None] = None
    #: What this type of provider takes in one message (each module says where each
    #: figure comes from); planning holds every text against it (``campaigns.limits``).
    limits: ClassVar[Limits] = Limits()
    #: Receipts arrive on the provider's own connection (an SMPP bind), held by the
    #: process that sends, not at the webhook: a process sending alone (embedded) must
    #: stay bound, and store and apply them itself, until they have come.
    listens: ClassVar[bool] = False
    #: The webhook's answer to a receipt it stored but cannot map to a status (kept and
    #: flagged): 422 tells a provider that retries on errors that we did not take it in;
    #: one that posts every kind of event (Zalo) is answered 200, or it would repeat them.
    unmapped_answer: ClassVar[int] = 422
    #: Its credentials expire and are renewed (``providers.tokens``): whatever uses it,
    #: even once (``loa provider test``), must give it the ledger's store, or a renewal
    #: would spend a single-use refresh token the workers still hold.
    keeps_tokens: ClassVar[bool] = False
    #: What it sends: ``text`` (an SMS written out) or ``template`` (one registered with
    #: the provider, sent by id with its parameters: a campaign's template channel).
    sends: ClassVar[Literal["text", "template"]] = "text"

    @property
    def countries(self) -> frozenset[str] | None:
        """The countries this instance sends to (``None``: anywhere): its settings'
        ``countries`` (checked to lie within its type's), or all its type reaches."""
        return getattr(self.config, "countries", None) or self.reach

    @property
    def idempotent(self) -> bool:
        """Whether a resend carrying the same ``message_id`` can never become a second SMS
        (the provider has an idempotency key, like eSMS's ``RequestId``). Only then is an
        ambiguous failure sent again; otherwise the message becomes ``unknown``."""
        return False

    def __init__(
        self,
        name: str,
        config: Any,
        receipt_sink: ReceiptSink | None = None,
        inbox: Inbox | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self.receipt_sink = receipt_sink
        #: Where receipts and handset messages arriving on the provider's own connection
        #: are stored (``None``: nowhere, so a provider that receives so must refuse them).
        self.inbox = inbox
        #: Where credentials the provider issues for a while are kept (``providers.tokens``):
        #: ``create`` gives the worker's shared store; alone, this process's memory.
        self.tokens: TokenStore = MemoryTokens()

    @abstractmethod
    async def send(self, message: OutgoingMessage) -> SendResult:
        """Send one message. A coroutine: a worker process keeps hundreds of sends in
        flight on one event loop (threads would spend the process on switching).

        Raises:
            SendError: classified; anything else raised is passed through ``classify``.
        """

    @abstractmethod
    def parse_receipt(self, payload: Mapping[str, str]) -> Receipt:
        """Turn a receipt as the provider sends it into the common model.

        Raises:
            ValueError: the payload is not a receipt of this provider.
        """

    def classify(self, error: Exception) -> SendError:
        """Classify an exception raised by ``send``. The default treats anything
        unexpected as ambiguous: not knowing whether the SMS went out, we do not resend."""
        if isinstance(error, SendError):
            return error
        return SendError(ErrorKind.AMBIGUOUS, "unexpected", type(error).__name__)

    def describe(self, code: str) -> str | None:
        """What one of this provider's codes (as kept in the ledger) means, for reports;
        ``None`` when its tables do not say. HTTP statuses are described here for all."""
        if code.startswith("http_") and code[5:].isdigit():
            return f"HTTP {code[5:]} from the provider"
        return None

    def authenticate(self, request: InboundRequest) -> bool:
        """Whether a request to this instance's receipt route really comes from the
        provider (a signature, a secret token, an address list). The default refuses: a
        provider whose receipts come over HTTP says how they are proven."""
        return False

    async def check_account(self) -> AccountCheck:
        """Ask the provider, without sending anything, whether it takes our credentials,
        and what it says of our account (a balance, a status). Never raises: what went
        wrong is the result's ``problem``. The default (a provider with nothing to ask)
        checks nothing and finds nothing wrong."""
        return AccountCheck(said="nothing to check")

    async def open(self) -> None:  # noqa: B027 - optional hook, most providers hold nothing
        """Open what the provider keeps for the worker process's life (an SMPP bind, so
        that receipts arrive while nothing is being sent); called on the sending loop when
        a worker starts. The default opens nothing: connections come with the first send."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook, most providers hold nothing
        """Release connections; called on the sending loop when the worker stops."""
