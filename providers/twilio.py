"""Twilio's Messages API (REST 2010-04-01), on the official SDK's async client, for the
numbers Vietnamese brandname gateways do not reach: foreign tourists' phones
(../shared/reference/providers.md).

The SDK sends through Loa's own HTTP pool (``providers.http``): explicit connect and read
timeouts (the SDK's default is none), the base URL from settings (a regional edge, Prism
or a local fake can stand in for ``https://api.twilio.com``), the shared classification of
transport failures, and no request logging (the SDK's own would write numbers and texts).

Twilio has no idempotency key: a request that timed out may have been sent, so it ends
``unknown`` and is never resent.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, ClassVar
from urllib.parse import urlparse, urlsplit, urlunsplit

from pydantic import Field, model_validator
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http import AsyncHttpClient
from twilio.http.response import Response
from twilio.request_validator import (
    RequestValidator,
    add_port,
    get_signature_algorithm,
    remove_port,
)
from twilio.rest import Client

from campaigns.limits import Limits
from campaigns.secrets import GuardingSecret
from campaigns.status import Status
from providers.base import (
    CODE_LENGTH,
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
    storable,
)
from providers.http import HttpClient, HttpProviderConfig, failed_check, parse_retry_after
from providers.twilio_errors import (
    ERROR_CODES,
    classify_rest_error,
    last_answer,
    unreadable,
)

TWILIO_API = "https://api.twilio.com"
#: The last answer's ``Retry-After`` (seconds) in this task: set by the transport, read by
#: the send that made the request (each sender is a task of its own).
_retry_after: ContextVar[float | None] = ContextVar("twilio_retry_after", default=None)
#: Twilio keeps a message this long at most (``ValidityPeriod``, seconds).
MAX_VALIDITY = 36_000

#: What Twilio takes in one message.
LIMITS = Limits(
    # Twilio's API description (../shared/twilio-oai, Message create, ``Body``): "Can be up
    # to 1,600 characters in length"; a longer body fails with error 21617.
    max_characters=1600,
    # An alphanumeric sender id is at most 11 characters (Twilio's "Alphanumeric Sender
    # ID" documentation; the same rule as Vietnamese brandnames, vietnam.md).
    max_sender=11,
    # Twilio's support article "Maximum Message Length with Twilio Programmable
    # Messaging": for SMS it recommends at most 320 characters; longer ones are sent.
    advised_characters=320,
    advice="some carriers and handsets show longer SMS in pieces, and fewer of them arrive",
)

#: A message Twilio gave up on when its ``ValidityPeriod`` ran out.
VALIDITY_EXPIRED = "30036"

#: Status callback ``MessageStatus`` -> common status. Twilio's own steps before the
#: carrier (accepted, scheduled, queued, sending) all mean "the provider has it": ``sent``.
MESSAGE_STATUSES: dict[str, Status] = {
    "accepted": Status.SENT,  # taken by a Messaging Service, sender not chosen yet
    "scheduled": Status.SENT,
    "queued": Status.SENT,
    "sending": Status.SENT,
    "sent": Status.SENT,  # handed to the carrier
    "delivered": Status.DELIVERED,
    "read": Status.DELIVERED,  # delivered, and the channel reports it read
    "undelivered": Status.UNDELIVERED,  # the carrier could not deliver it
    "failed": Status.FAILED,  # never left Twilio
    "canceled": Status.FAILED,  # a scheduled message cancelled: never sent
    # Only some parts arrived: the recipient cannot read the whole text.
    "partially_delivered": Status.UNDELIVERED,
}

_quiet = logging.getLogger("loa.providers.twilio.sdk")


class TwilioConfig(HttpProviderConfig):
    type: str = "twilio"
    account_sid: str = Field(pattern=r"^AC[0-9a-fA-F]{32}$")
    auth_token: GuardingSecret  # the key receipts are signed with
    from_number: str | None = Field(
        default=None,
        description="E.164 number or alphanumeric sender; default: the campaign's brandname",
    )
    messaging_service_sid: str | None = Field(default=None, pattern=r"^MG[0-9a-fA-F]{32}$")
    base_url: str = TWILIO_API
    status_callback_url: str | None = Field(
        default=None, description="public URL of this instance's receipt route on the webhook"
    )
    read_timeout: float = Field(default=15.0, gt=0, le=120)

    @model_validator(mode="after")
    def _sender(self) -> TwilioConfig:
        number = self.from_number
        longest = LIMITS.max_sender or 0
        if number is not None and not (number.startswith("+") or len(number) <= longest):
            raise ValueError(
                f"from_number: an E.164 number (+…) or a sender of {longest} characters"
            )
        return self


class _Transport(AsyncHttpClient):
    """The SDK's extension point for HTTP, sending through Loa's pool (to its base URL)."""

    def __init__(self, http: HttpClient) -> None:
        super().__init__(logger=_quiet, is_async=True)
        self.http = http

    async def request(  # type: ignore[override]  # the SDK's untyped signature
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        if url.startswith(TWILIO_API):
            url = self.http.base_url + url.removeprefix(TWILIO_API)
        # A redirect, an answer too large or too late: a ``SendError``, through the SDK.
        status, text, answer_headers = await self.http.request(
            method, url, params=params, data=data, headers=headers, auth=auth
        )
        # The SDK's exception keeps no header: the wait a throttle or an outage asked for
        # is kept here, for this send's task (``TwilioProvider.send``) to read.
        _retry_after.set(parse_retry_after(answer_headers.get("Retry-After")))
        kind = answer_headers.get("Content-Type", "").partition(";")[0].strip()
        last_answer.set((status, storable(kind, 60)))
        return Response(status, text, answer_headers)


class TwilioProvider(Provider):
    type: ClassVar[str] = "twilio"
    config_model: ClassVar[type[ProviderConfig]] = TwilioConfig
    limits: ClassVar[Limits] = LIMITS
    config: TwilioConfig

    def __init__(
        self,
        name: str,
        config: Any,
        receipt_sink: ReceiptSink | None = None,
        inbox: Inbox | None = None,
    ) -> None:
        super().__init__(name, config, receipt_sink, inbox)
        cfg = self.config
        self._http = cfg.http_client()
        self._client = Client(
            cfg.account_sid,
            cfg.auth_token.get_secret_value(),
            http_client=_Transport(self._http),
        )
        self._validator = RequestValidator(cfg.auth_token.get_secret_value())

    def request_fields(self, message: OutgoingMessage) -> dict[str, Any]:
        """The SDK's arguments for one message (the form fields Twilio receives)."""
        cfg = self.config
        left = int((message.valid_until - datetime.now(UTC)).total_seconds())
        fields: dict[str, Any] = {
            "to": message.to,
            "body": message.text,
            "validity_period": max(1, min(MAX_VALIDITY, left)),
        }
        if cfg.messaging_service_sid:
            fields["messaging_service_sid"] = cfg.messaging_service_sid
            if cfg.from_number:
                fields["from_"] = cfg.from_number
        else:
            fields["from_"] = cfg.from_number or message.sender
        if cfg.status_callback_url:
            fields["status_callback"] = cfg.status_callback_url
        return fields

    async def send(self, message: OutgoingMessage) -> SendResult:
        _retry_after.set(None)
        last_answer.set(None)
        try:
            created = await self._client.messages.create_async(**self.request_fields(message))
        except (TwilioRestException, TwilioServiceException) as exc:
            raise classify_rest_error(exc, _retry_after.get()) from None
        except SendError:
            raise  # from the transport: no answer, a redirect, one too large
        except Exception:
            answer = last_answer.get()
            if answer is None or not 200 <= answer[0] < 300:
                raise  # not about an answer: ``classify`` takes it as ambiguous
            # A 2xx the SDK could not read (not JSON, not a message): it may have gone out.
            raise SendError(ErrorKind.AMBIGUOUS, "bad_answer", unreadable(answer)) from None
        if not created.sid:
            raise SendError(ErrorKind.AMBIGUOUS, "bad_answer", "accepted without a sid")
        return SendResult(provider_message_id=created.sid)

    def classify(self, error: Exception) -> SendError:
        if isinstance(error, TwilioRestException | TwilioServiceException):
            return classify_rest_error(error)
        return super().classify(error)

    def describe(self, code: str) -> str | None:
        known = ERROR_CODES.get(int(code)) if code.isascii() and code.isdigit() else None
        return known[1] if known else super().describe(code)

    def authenticate(self, request: InboundRequest) -> bool:
        """``X-Twilio-Signature``, checked by the SDK's ``RequestValidator`` against the
        URL Twilio called: the configured ``STATUS_CALLBACK_URL`` (behind a reverse proxy
        this server sees another URL), else the one this request came to."""
        signature = request.headers.get("x-twilio-signature", "")
        if not signature:
            return False
        try:
            return self._signed(request, signature)
        except ValueError:  # a Host header or URL no URL parser takes: nothing proven
            return False

    def _signed(self, request: InboundRequest, signature: str) -> bool:
        settings = request.headers.get("x-twilio-webhooks-signature-settings", "")
        algorithm = get_signature_algorithm(settings)
        url = request.url
        configured = self.config.status_callback_url
        if configured:
            # The configured URL's scheme, host and path (what Twilio called, before the
            # proxy), with the query this request really carries: the receipt reads query
            # fields too, so they must be signed. With the configured URL's own query
            # instead, one signature would have vouched for any query at all.
            query = urlsplit(request.url).query
            url = urlunsplit(urlsplit(configured)._replace(query=query))
        # ``RequestValidator.validate`` parses the URL and signs it twice (with and without
        # the default port, as Twilio may sign either) on every request: 110 µs, a quarter
        # of the webhook's time per receipt. The URL's two forms are worked out once per
        # URL, and each is signed by the SDK's own ``compute_signature``, in turn.
        for signed_url in _url_forms(url):
            try:
                expected = self._validator.compute_signature(
                    signed_url, _Params(request.form), algorithm
                )
            except ValueError:  # an algorithm this SDK does not know: not provable
                return False
            # As bytes: compare_digest refuses str with non-ASCII characters (a TypeError,
            # once a 500 for a forged header of such bytes).
            if hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
                return True
        return False

    def parse_receipt(self, payload: Mapping[str, str]) -> Receipt:
        try:
            sid, status = payload["MessageSid"], payload["MessageStatus"]
        except KeyError as missing:
            raise ValueError(f"Twilio status callback without {missing.args[0]!r}") from None
        if not sid:
            raise ValueError("Twilio status callback with an empty MessageSid")
        code = payload.get("ErrorCode") or None
        common = MESSAGE_STATUSES.get(status)
        if code == VALIDITY_EXPIRED and common in (Status.FAILED, Status.UNDELIVERED):
            common = Status.EXPIRED  # Twilio dropped it when its validity ran out
        return Receipt(provider_message_id=sid, status=common, raw_status=status, code=code)

    async def check_account(self) -> AccountCheck:
        """Fetch our own account resource (``GET /Accounts/{AccountSid}.json``): proves
        the host answers and takes the credentials (20003 when not), and tells the
        account's status and type; sends nothing. An account not ``active`` (suspended,
        closed) is a problem: Twilio would refuse every send."""
        sid = self.config.account_sid
        last_answer.set(None)
        try:
            account = await self._client.api.v2010.accounts(sid).fetch_async()
            # What Twilio says of the account is printed: kept short, no escape obeyed.
            status, kind = (
                None if value is None else storable(str(value), CODE_LENGTH)
                for value in (account.status, account.type)
            )
        except (TwilioRestException, TwilioServiceException) as exc:
            error = classify_rest_error(exc)
            refused = error.kind is ErrorKind.HALT
            what = "our credentials" if refused else "the account check"
            return AccountCheck(
                True, f"Twilio refused {what}: {error.code} {error.detail}", refused=refused
            )
        except SendError as error:
            return AccountCheck(problem=failed_check("Twilio", self.config.base_url, error))
        except Exception:  # the SDK could not read the answer (an HTML page, a redirect …)
            said = unreadable(last_answer.get())
            return AccountCheck(problem=f"Twilio's answer to the account check was {said}")
        # Not its friendly name: by default the owner's e-mail address.
        facts = {"account_sid": sid, "status": status, "type": kind}
        said = f"tài khoản · account {sid}: {status or '?'}"
        said += f" ({kind})" if kind else ""
        if status not in ACCOUNT_STATUSES:  # `{}` or another resource: not an account
            said = "no status" if status is None else f"status {status!r}"
            return AccountCheck(
                problem=f"Twilio's answer to the account check was not an account ({said})"
            )
        if status != "active":
            problem = f"the account is {status}: Twilio would refuse every send"
            return AccountCheck(True, problem, facts=facts, said=said)
        return AccountCheck(True, facts=facts, said=said)

    async def aclose(self) -> None:
        await self._http.close()


#: An account resource's ``status`` (Twilio's API description: ``account_enum_status``).
ACCOUNT_STATUSES = frozenset({"active", "suspended", "closed"})


@lru_cache(maxsize=64)
def _url_forms(url: str) -> tuple[str, ...]:
    """The URL as Twilio may have signed it: without and with the default port."""
    parsed = urlparse(url)
    return tuple(dict.fromkeys((remove_port(parsed), add_port(parsed))))


class _Params(dict[str, str]):
    """Form fields as the SDK's signer reads them: it asks for ``getall`` first and falls
    back on two caught AttributeErrors per field for a plain dict."""

    def getall(self, name: str) -> list[str]:
        return [self[name]]
