"""Zalo Notification Service (ZNS): a registered template sent to the Zalo account behind a
phone number, by an Official Account (OA) (../shared/reference/zalo-and-smpp.md).

- Send: ``POST {base_url}/message/template`` with the OA's access token in the
  ``access_token`` header and ``{phone, template_id, template_data, tracking_id}``; Loa's
  message id, behind the instance's ``tracking_prefix`` and a short HMAC under the app's
  secret, is the ``tracking_id`` (``tracking_id``): an event echoing it finds its message
  even when the send's answer was lost, and nobody else sending through the OA can make
  one that does (for reconciliation: ZNS has no idempotency key, so an
  ambiguous send is never repeated). The reply's ``data.msg_id`` is the id delivery events
  carry; its ``quota`` is kept (``quota``) and a used-up daily quota halts the instance
  before Zalo refuses the next send.
- The access token lives about a day and its refresh token is single-use: both live in
  the worker's shared store (``providers.tokens``), refreshed under its lock, once for
  every process; a token Zalo calls invalid (-124) is refreshed and the send made once
  more. A refresh Zalo refuses halts the instance, saying what a person must do.
- Delivery events (``user_received_message``) come to the instance's receipt route,
  signed ``X-ZEvent-Signature: mac=<sha256 hex of app_id + body + timestamp + OA secret>``.

What is not verified against Zalo itself (numbering of some codes, the quota call) is
marked so, and each code's kind can be changed per instance (``codes``) without a release.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal, NamedTuple

from pydantic import Field, SecretStr

from campaigns.limits import Limits
from campaigns.secrets import GuardingSecret
from campaigns.status import Status
from providers.base import (
    AccountCheck,
    ErrorKind,
    InboundRequest,
    Inbox,
    OutgoingMessage,
    Provider,
    ProviderConfig,
    Receipt,
    ReceiptSink,
    SendError,
    SendResult,
)
from providers.http import HttpClient, HttpProviderConfig, UnreadableAnswer, failed_check
from providers.tokens import Tokens

SEND_PATH = "/message/template"
#: The OA's ZNS quota today (``{"error": 0, "data": {"dailyQuota", "remainingQuota"}}``):
#: *unverified* path, used only by the account check.
QUOTA_PATH = "/message/quota"
REFRESH_PATH = "/v4/oa/access_token"
SIGNATURE = "x-zevent-signature"
#: Refreshed this long before Zalo says the access token ends (seconds): a send never
#: carries a token that dies on the way.
REFRESH_MARGIN = 300.0
#: Zalo's code for an access token it no longer takes: refreshed, then sent once more.
TOKEN_INVALID = "-124"
#: The code of a refresh Zalo refused: a person must issue a new pair.
REFRESH_REFUSED = "refresh_refused"


class Meaning(NamedTuple):
    kind: ErrorKind
    said: str
    #: Every message of the campaign would be refused the same way: it stops at the first.
    campaign_wide: bool = False


_R, _P, _H, _U = ErrorKind.RETRYABLE, ErrorKind.PERMANENT, ErrorKind.HALT, ErrorKind.UNREACHABLE

#: ZNS ``error`` -> how the worker treats it. Sources: Zalo's error page
#: (zalo.cloud/zns/guidelines/handle-error-code) and the reference; a code not listed is a
#: permanent refusal of this message. ``unreachable`` is the "cannot reach this person on
#: Zalo" kind: not a failure, the reason the campaign's next channel is tried.
ERRORS: dict[str, Meaning] = {
    "-100": Meaning(_R, "unknown error at Zalo, try later"),
    # Our application or OA is not set up to send: nothing will go until a person acts.
    "-101": Meaning(_H, "application invalid: check the app id in Zalo for Developers"),
    "-102": Meaning(_H, "application does not exist: check the app id"),
    "-103": Meaning(_H, "application not activated in Zalo for Developers"),
    "-104": Meaning(_H, "application secret key invalid"),
    "-105": Meaning(_H, "application not linked to an Official Account"),
    "-106": Meaning(_H, "method unsupported: Loa's request is wrong for this API"),
    "-107": Meaning(_P, "message id invalid"),
    # The person cannot be reached on Zalo: their SMS goes instead.
    "-108": Meaning(_U, "phone number invalid for Zalo"),
    "-110": Meaning(_U, "the recipient's Zalo is too old for ZNS"),
    "-114": Meaning(_U, "user inactive, refuses ZNS, or a Zalo-internal error"),
    "-118": Meaning(_U, "no Zalo account for this number"),
    "-119": Meaning(_U, "this account cannot receive ZNS"),  # *unverified* numbering
    # The campaign's template: every message would be refused alike, so it stops at once.
    "-109": Meaning(_P, "template id invalid", campaign_wide=True),
    "-111": Meaning(_P, "template data empty", campaign_wide=True),
    "-113": Meaning(_P, "template button invalid", campaign_wide=True),  # *unverified*
    "-117": Meaning(_P, "OA or app may not use this template", campaign_wide=True),  # *unv.*
    # One recipient's values do not fit the template (a value too long): this message only.
    "-112": Meaning(_P, "template data invalid for this recipient"),
    # Money and quota: nothing more goes until a person (or tomorrow) changes it.
    "-115": Meaning(_H, "out of quota: the ZNS account's balance is used up"),  # *unverified*
    "-144": Meaning(_H, "the OA's daily ZNS quota is used up"),  # *unverified* numbering
    TOKEN_INVALID: Meaning(_H, "access token refused even after a refresh"),
}

Kind = Literal["retryable", "permanent", "halt", "unreachable", "campaign"]


class ZaloZnsConfig(HttpProviderConfig):
    type: str = "zalo_zns"
    base_url: str = "https://business.openapi.zalo.me"
    oauth_url: str = Field(
        default="https://oauth.zaloapp.com", description="where access tokens are refreshed"
    )
    app_id: str = Field(min_length=1, max_length=64)
    #: The application's secret key, sent with each refresh (Zalo checks it).
    secret_key: SecretStr
    #: The pair a person issued (Zalo for Developers, OAuth): the store starts from it,
    #: and starts again from it when a new pair is put here (after a refused refresh).
    refresh_token: SecretStr
    access_token: SecretStr | None = None
    #: The OA's secret key, which signs the delivery events the webhook receives.
    oa_secret_key: GuardingSecret | None = None
    #: ``development`` sends only to the OA's administrators (*unverified*): for a trial.
    mode: Literal["production", "development"] = "production"
    #: The OA's daily quota as agreed, for planning (how many days a list takes); Zalo's
    #: own figure, in each reply, is what stops sending.
    daily_quota: int | None = Field(default=None, ge=1)
    #: Change how a ZNS code is treated without a release (``{"-119": "permanent"}``):
    #: the numbering of some codes is not verified.
    codes: dict[str, Kind] = Field(default_factory=dict)
    #: Begins each message's ``tracking_id``: give each ledger sending through one OA
    #: (production, a trial) its own, as their message ids overlap.
    tracking_prefix: str = Field(default="loa-", max_length=16, pattern=r"^[A-Za-z0-9_.]*-?$")
    #: The token service's codes that say the refresh token itself is spent or revoked
    #: (*unverified* beyond -14014): only these let a new pair in the settings replace
    #: the stored one. Any other refusal halts without giving up the stored pair.
    refresh_refused_codes: frozenset[str] = frozenset({"-14014"})


class ZaloZnsProvider(Provider):
    type: ClassVar[str] = "zalo_zns"
    config_model: ClassVar[type[ProviderConfig]] = ZaloZnsConfig
    #: Zalo accounts behind Vietnamese numbers.
    reach: ClassVar[frozenset[str] | None] = frozenset({"VN"})
    #: A template, not a text: nothing to hold a text against.
    limits: ClassVar[Limits] = Limits()
    #: Zalo sends events for everything the OA sees; one Loa cannot map is stored and
    #: flagged, and answered 200 so that Zalo does not send it again and again.
    unmapped_answer: ClassVar[int] = 200
    keeps_tokens: ClassVar[bool] = True
    sends: ClassVar[Literal["text", "template"]] = "template"
    config: ZaloZnsConfig

    def __init__(
        self,
        name: str,
        config: Any,
        receipt_sink: ReceiptSink | None = None,
        inbox: Inbox | None = None,
    ) -> None:
        super().__init__(name, config, receipt_sink, inbox)
        self._http = config.http_client()
        self._oauth = HttpClient(
            config.oauth_url,
            config.connect_timeout,
            config.read_timeout,
            4,
            deadline=config.deadline,
        )
        #: The last quota Zalo reported: ``{"daily": N, "remaining": M}``.
        self.quota: dict[str, int] = {}
        #: The refresh token Zalo last refused (the store marks that pair, not another).
        self._refused = ""
        self._errors = {**ERRORS, **{code: _meaning(kind) for code, kind in config.codes.items()}}

    @property
    def seed(self) -> Tokens:
        """The pair in the settings (no access token: one is had by refreshing)."""
        access = self.config.access_token
        return Tokens(access.get_secret_value() if access else "", self.refresh_token_set)

    @property
    def refresh_token_set(self) -> str:
        return self.config.refresh_token.get_secret_value()

    async def send(self, message: OutgoingMessage) -> SendResult:
        if message.template is None:
            raise SendError(_P, "no_template", "a ZNS message needs a template", campaign_wide=True)
        if self.quota.get("remaining") == 0:
            raise SendError(_H, "-144", "the OA's daily ZNS quota is used up (Zalo said 0 left)")
        payload: dict[str, Any] = {
            "phone": message.to.removeprefix("+"),
            "template_id": message.template.id,
            "template_data": dict(message.template.data),
            "tracking_id": self.tracking_id(message.message_id),
        }
        if self.config.mode == "development":
            payload["mode"] = "development"
        tokens = await self._fresh()
        answer = await self._post(tokens, payload)
        if _code(answer.get("error")) == TOKEN_INVALID:  # expired early, or revoked: once more
            tokens = await self._renew(tokens)
            answer = await self._post(tokens, payload)
        code = _code(answer.get("error"))
        if code is None:  # not a number: whether Zalo took the message cannot be told
            raise SendError(ErrorKind.AMBIGUOUS, "bad_answer", "an error field that is no code")
        if code == "0":
            return SendResult(provider_message_id=self._accepted(answer))
        meaning = self._errors.get(code, Meaning(_P, "not accepted"))
        raise SendError(meaning.kind, code, meaning.said, campaign_wide=meaning.campaign_wide)

    async def _post(self, tokens: Tokens, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            answer = await self._http.post_json(SEND_PATH, payload, {"access_token": tokens.access})
        except UnreadableAnswer as exc:
            raise SendError(ErrorKind.AMBIGUOUS, "bad_answer", f"unreadable: {exc}") from None
        if not isinstance(answer, dict) or "error" not in answer:
            raise SendError(ErrorKind.AMBIGUOUS, "bad_answer", "no error field")
        return answer

    def _accepted(self, answer: dict[str, Any]) -> str:
        """The message's id from an accepted send; its quota kept."""
        data = answer.get("data") if isinstance(answer.get("data"), dict) else {}
        quota = data.get("quota") if isinstance(data.get("quota"), dict) else {}
        for ours, theirs in (("daily", "dailyQuota"), ("remaining", "remainingQuota")):
            value = _code(quota.get(theirs))  # a whole number, or nothing said
            if value is not None:
                self.quota[ours] = max(0, int(value))  # below zero: none left
        msg_id = data.get("msg_id")
        if not msg_id:  # taken (error 0) but unnamed: no event could ever find it
            raise SendError(ErrorKind.AMBIGUOUS, "bad_answer", "accepted without a msg_id")
        return str(msg_id)

    async def _fresh(self) -> Tokens:
        """The pair to send with: the stored one, renewed first if it ends within
        ``REFRESH_MARGIN`` or was never had."""
        try:
            tokens = await self.tokens.current(self.seed)
        except Exception as exc:  # the store (the ledger) failed: nothing was sent
            raise _store_failed(exc) from None
        ends = tokens.expires_at
        if not tokens.access or (
            ends is not None and ends - datetime.now(UTC) < timedelta(seconds=REFRESH_MARGIN)
        ):
            tokens = await self._renew(tokens)
        return tokens

    async def _renew(self, stale: Tokens) -> Tokens:
        try:
            return await self.tokens.renew(self.seed, stale, self._refresh)
        except SendError as error:
            if error.code == REFRESH_REFUSED:  # a new pair in the settings may replace it
                await self.tokens.refused(self._refused)
            raise
        except Exception as exc:  # the store (the ledger) failed: nothing was sent
            raise _store_failed(exc) from None

    async def _refresh(self, stored: Tokens) -> Tokens:
        """One refresh at Zalo (the store holds its lock meanwhile).

        Raises:
            SendError: halt when Zalo refuses the refresh token (single-use: a person must
                issue a new pair); retryable, provider-wide, when Zalo could not be asked.
        """
        form = {
            "app_id": self.config.app_id,
            "grant_type": "refresh_token",
            "refresh_token": stored.refresh,
        }
        headers = {"secret_key": self.config.secret_key.get_secret_value()}
        url = self._oauth.base_url + REFRESH_PATH
        try:
            status, text, _ = await self._oauth.request("POST", url, data=form, headers=headers)
        except SendError as error:
            # Never a message's fault, and nothing was sent: try the provider again later.
            # (A refresh Zalo took but whose answer was lost spent the refresh token: the
            # next one is refused, and the instance halts saying so.)
            raise SendError(
                _R, error.code, f"token refresh: {error.detail}", provider_wide=True
            ) from None
        if status >= 500 or status == 429:
            raise SendError(_R, f"http_{status}", "Zalo's token service", provider_wide=True)
        try:
            answer = json.loads(text)
        except (ValueError, RecursionError):
            answer = None
        if not isinstance(answer, dict):  # not Zalo's token service answering
            raise SendError(
                _H,
                f"http_{status}",
                f"the token service at {self.config.oauth_url} answered HTTP {status}, not "
                f"Zalo's JSON: check {self.name}'s oauth_url",
            )
        access, refresh = answer.get("access_token"), answer.get("refresh_token")
        if not isinstance(access, str) or not isinstance(refresh, str) or not access or not refresh:
            code = _code(answer.get("error"))
            if code in self.config.refresh_refused_codes:  # the token itself is dead
                self._refused = stored.refresh
                variable = f"LOA_PROVIDERS__{self.name.upper()}__REFRESH_TOKEN"
                raise SendError(
                    _H,
                    REFRESH_REFUSED,
                    f"Zalo refused the refresh token: issue a new pair for app "
                    f"{self.config.app_id}, set {variable}, then `loa provider resume "
                    f"{self.name}`",
                )
            said = f"Zalo's {code}" if code is not None else f"HTTP {status} without tokens"
            raise SendError(
                _H,
                f"refresh_{code}" if code is not None else f"http_{status}",
                f"the token refresh was refused ({said}): check {self.name}'s app_id, "
                "secret_key and oauth_url; the stored pair is kept",
            )
        try:
            lifetime = float(answer.get("expires_in") or 0)
        except (TypeError, ValueError, OverflowError):
            lifetime = 0.0
        lifetime = lifetime if 0 < lifetime < 10**7 else 0.0
        ends = datetime.now(UTC) + timedelta(seconds=lifetime) if lifetime > 0 else None
        return Tokens(access, refresh, ends)

    def describe(self, code: str) -> str | None:
        known = self._errors.get(code)
        return known.said if known else super().describe(code)

    def authenticate(self, request: InboundRequest) -> bool:
        """A delivery event proves itself by its signature: ``mac=`` and the SHA-256 of
        the app id, the body exactly as sent, the event's timestamp and the OA's secret
        key (compared in constant time). Without ``oa_secret_key``, every event is
        refused: a forged "received" would stop a resident's SMS."""
        secret = self.config.oa_secret_key
        if secret is None or not request.body:
            return False
        timestamp = request.form.get("timestamp", "")
        if request.form.get("app_id", "") != self.config.app_id:
            return False
        mac = hashlib.sha256(
            self.config.app_id.encode()
            + request.body
            + timestamp.encode()
            + secret.get_secret_value().encode()
        ).hexdigest()
        given = request.headers.get(SIGNATURE, "").strip()
        return hmac.compare_digest(given.encode(), f"mac={mac}".encode())

    def parse_receipt(self, payload: Mapping[str, str]) -> Receipt:
        """A ZNS event: ``user_received_message`` (and ``user_seen_message``, which says
        as much) delivers the message ``message.msg_id`` (or, that unknown to the ledger,
        the one whose id it echoes as ``message.tracking_id``); any other event is kept
        and flagged, never guessed.

        Raises:
            ValueError: not an event (no ``event_name``).
        """
        event = payload.get("event_name")
        if not event:
            raise ValueError("a Zalo event without 'event_name'")
        msg_id = payload.get("message.msg_id") or f"event:{event}"
        status = Status.DELIVERED if event in DELIVERED_EVENTS else None
        # Loa's message id, sent in ``tracking_id`` (*unverified* that every event echoes
        # it): finds a message whose send answer, and with it the msg_id, was lost. Only
        # an event for a message (its msg_id) and a tracking id this instance made count.
        ours = None
        if payload.get("message.msg_id"):
            ours = self.message_of(payload.get("message.tracking_id", ""))
        return Receipt(provider_message_id=msg_id, status=status, raw_status=event, message_id=ours)

    def tracking_id(self, message_id: int) -> str:
        """``{tracking_prefix}{message_id}-{mac}``: the mac, 12 hex digits of an HMAC-SHA256
        of the rest under the app's secret key, makes it this instance's alone (another
        system sending through the same OA numbers its own messages 1, 2, 3 … too)."""
        body = f"{self.config.tracking_prefix}{message_id}"
        return f"{body}-{self._mac(body)}"

    def message_of(self, tracking: str) -> int | None:
        """Loa's message id in a ``tracking_id`` this instance made; ``None`` for any other
        (someone else's, altered, or not one at all)."""
        body, _, mac = tracking.rpartition("-")
        number = body.removeprefix(self.config.tracking_prefix)
        if not body.startswith(self.config.tracking_prefix) or not (
            number.isascii() and number.isdigit() and len(number) <= 18
        ):
            return None
        return int(number) if hmac.compare_digest(mac, self._mac(body)) else None

    def _mac(self, body: str) -> str:
        key = self.config.secret_key.get_secret_value().encode()
        return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()[:12]

    async def check_account(self) -> AccountCheck:
        """Renew the OA's access token (through the shared store: the new pair is every
        worker's) and ask Zalo for today's quota: a renewal is what proves the app's id
        and secret key and the refresh token, which a send with a still-valid access
        token never shows. Sends nothing."""
        try:
            tokens = await self._renew(await self.tokens.current(self.seed))
            answer = await self._quota(tokens)
            if _error_of(answer[1]) == TOKEN_INVALID:  # expired early, or revoked: once more
                answer = await self._quota(await self._renew(tokens))
        except SendError as error:
            if error.kind is ErrorKind.HALT:  # the refresh token or the app refused
                return AccountCheck(True, error.detail, refused=True)
            return AccountCheck(problem=failed_check("Zalo", self._http.base_url, error))
        status, text, _ = answer
        try:
            data = json.loads(text)
            code = str(data["error"])
        except (ValueError, KeyError, TypeError):
            return AccountCheck(problem=f"Zalo's quota answer was unreadable (HTTP {status})")
        if code != "0":
            said = self.describe(code) or "not accepted"
            return AccountCheck(True, f"Zalo refused the quota check: {code} {said}")
        quota = data.get("data") or {}
        daily, left = quota.get("dailyQuota"), quota.get("remainingQuota")
        facts = {"daily_quota": daily, "remaining_quota": left}
        said = f"hạn mức hôm nay · quota today {left}/{daily}"
        if left == 0:
            return AccountCheck(True, "today's ZNS quota is used up", facts=facts, said=said)
        return AccountCheck(True, facts=facts, said=said)

    async def _quota(self, tokens: Tokens) -> tuple[int, str, Mapping[str, str]]:
        url = self._http.base_url + QUOTA_PATH
        return await self._http.request("GET", url, headers={"access_token": tokens.access})

    async def aclose(self) -> None:
        await self._http.close()
        await self._oauth.close()


#: The events that say the message reached the person's Zalo.
DELIVERED_EVENTS = frozenset({"user_received_message", "user_seen_message"})


def _store_failed(error: Exception) -> SendError:
    """The token store could not be read or written (the ledger away): the message never
    left, so it is tried again later, the provider held back meanwhile."""
    return SendError(_R, "token_store", type(error).__name__, provider_wide=True)


def _error_of(text: str) -> str | None:
    """The ``error`` of a ZNS answer, as text (``None``: not a ZNS answer)."""
    try:
        answer = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return _code(answer.get("error")) if isinstance(answer, dict) else None


def _code(value: object) -> str | None:
    """A ZNS number (``error``, a quota) as its decimal text: ``-118``, ``"-118"``,
    ``-118.0`` and ``" -118 "`` are all ``"-118"``; anything else (null, true, a list, a
    fraction, a string of digits longer than any code or quota) is ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e12:
        value = int(value)
    if isinstance(value, int) and abs(value) < 10**12:
        return str(value)
    if isinstance(value, str):
        text = value.strip()
        digits = text.removeprefix("-")
        if digits.isascii() and digits.isdigit() and len(digits) <= 12:
            return str(int(text))
    return None


def _meaning(kind: Kind) -> Meaning:
    """A kind named in the settings' ``codes``."""
    if kind == "campaign":
        return Meaning(_P, "refused for the whole campaign (per settings)", campaign_wide=True)
    return Meaning(ErrorKind(kind), f"{kind} (per settings)")
