"""eSMS.vn, a Vietnamese brandname gateway: customer-care (CSKH) sends, one recipient
per request, JSON over HTTPS (../shared/reference/providers.md).

eSMS takes a ``RequestId`` and refuses a second request with the same one (code 124):
that is an idempotency key, so a send that timed out is sent again with the same id and
can never become a second SMS. Loa's message id is the ``RequestId`` (behind a prefix, so
two ledgers sharing one eSMS account never collide), and it is also the id receipts are
matched by: eSMS echoes it in every callback, and a 124 answer carries no ``SMSID``.
"""

from __future__ import annotations

import hmac
import ipaddress
import math
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import Field, SecretStr, field_validator

from campaigns.limits import Limits
from campaigns.secrets import GuardingSecret
from campaigns.status import Status
from campaigns.text import Encoding
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
    vnd,
)
from providers.http import HttpProviderConfig, UnreadableAnswer, failed_check

SEND_PATH = "/MainService.svc/json/SendMultipleMessage_V4_post_json/"
#: The account's balance (``{ApiKey, SecretKey}`` -> ``{"Balance", "CodeResponse",
#: "UserID"}``; ``CodeResponse`` 101 for refused credentials): eSMS's API documentation,
#: "Hàm lấy số dư tài khoản" (developers-v2.esms.vn). It sends nothing and costs nothing.
BALANCE_PATH = "/MainService.svc/json/GetBalance_json"

#: What eSMS takes in one message.
LIMITS = Limits(
    # A brandname is at most 11 characters, registered per carrier (Vietnamese carriers'
    # rule, ../shared/reference/vietnam.md). eSMS's API documentation states no limit on
    # ``Content``'s length or parts, so none is assumed here.
    max_sender=11,
)

#: ``CodeResult`` -> how the worker treats it. Only 100 means accepted (and nothing more).
CODE_RESULTS: dict[str, tuple[ErrorKind, str]] = {
    "99": (ErrorKind.PERMANENT, "unknown error or number blocked"),
    "101": (ErrorKind.HALT, "ApiKey/SecretKey refused"),
    "103": (ErrorKind.HALT, "balance exhausted"),
    "108": (ErrorKind.PERMANENT, "invalid phone number"),
    "140": (ErrorKind.HALT, "caller IP not whitelisted"),
    # The brandname or the text is wrong for this account: every message of this campaign
    # will be refused the same way, but the account's other brandnames and campaigns are
    # fine, so the account is not halted for them.
    "104": (ErrorKind.PERMANENT, "brandname not registered on this account"),
    "146": (ErrorKind.PERMANENT, "content does not match a registered template"),
    "177": (ErrorKind.PERMANENT, "brandname not registered for this network"),
}
ACCEPTED, ALREADY_ACCEPTED = "100", "124"
#: Codes that say eSMS does not take our credentials from here.
CREDENTIALS_REFUSED = frozenset({"101", "140"})

#: Callback ``telcoid`` -> the network that really served the number. eSMS's numbering
#: is unverified (reference): an id not listed is kept as it came, never guessed.
TELCO_IDS: dict[str, str] = {
    "1": "viettel",
    "2": "mobifone",
    "3": "vinaphone",
    "4": "vietnamobile",
    "5": "gmobile",
    "6": "itel",
    "7": "reddi",
}

#: Callback ``SendStatus`` -> common status.
SEND_STATUSES: dict[str, Status] = {
    "1": Status.SENT,  # pending eSMS's approval
    "2": Status.SENT,  # waiting to be sent
    "4": Status.FAILED,  # rejected
    "5": Status.DELIVERED,  # sent successfully (eSMS's final success)
    "7": Status.SENT,  # at the carrier, awaiting its report
}


class EsmsConfig(HttpProviderConfig):
    type: str = "esms"
    api_key: SecretStr
    secret_key: SecretStr
    base_url: str = "https://rest.esms.vn"
    sms_type: str = Field(default="2", description="2: customer-care brandname")
    sandbox: bool = Field(default=False, description="eSMS's own sandbox: nothing is sent")
    callback_url: str | None = Field(
        default=None, description="public URL of this instance's receipt route on the webhook"
    )
    callback_token: GuardingSecret | None = Field(
        default=None,
        description="added to the callback URL as ?token=…: eSMS signs nothing, so the "
        "webhook knows its callbacks by this secret",
    )
    request_id_prefix: str = Field(default="loa-", max_length=20)
    callback_ips: list[str] = Field(
        default_factory=list,
        description="addresses or networks eSMS calls back from; empty: any (the token "
        "still has to match)",
    )
    brandname: str | None = Field(
        default=None,
        max_length=LIMITS.max_sender,
        description="the brandname registered on this account, when it is not the "
        "campaign's (two accounts, each with its own brandname, in one campaign's routes)",
    )

    @field_validator("callback_ips")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for network in value:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ValueError(f"{network!r} is not an address or network") from None
        return value


class EsmsProvider(Provider):
    type: ClassVar[str] = "esms"
    config_model: ClassVar[type[ProviderConfig]] = EsmsConfig
    #: A Vietnamese brandname gateway: Vietnamese numbers only.
    reach: ClassVar[frozenset[str] | None] = frozenset({"VN"})
    limits: ClassVar[Limits] = LIMITS
    config: EsmsConfig

    def __init__(
        self,
        name: str,
        config: Any,
        receipt_sink: ReceiptSink | None = None,
        inbox: Inbox | None = None,
    ) -> None:
        super().__init__(name, config, receipt_sink, inbox)
        self._http = self.config.http_client()
        self._networks = [ipaddress.ip_network(n, strict=False) for n in config.callback_ips]

    @property
    def idempotent(self) -> bool:
        return True  # RequestId: a resend is answered 124, never sent twice

    def callback_url(self) -> str | None:
        """Where eSMS is to send receipts: the configured URL with the secret token."""
        url, token = self.config.callback_url, self.config.callback_token
        if url is None or token is None:
            return url
        parts = urlsplit(url)
        query = urlencode([*parse_qsl(parts.query), ("token", token.get_secret_value())])
        return urlunsplit(parts._replace(query=query))

    def request_id(self, message: OutgoingMessage) -> str:
        return f"{self.config.request_id_prefix}{message.message_id}"

    async def send(self, message: OutgoingMessage) -> SendResult:
        cfg = self.config
        request_id = self.request_id(message)
        payload = {
            "ApiKey": cfg.api_key.get_secret_value(),
            "SecretKey": cfg.secret_key.get_secret_value(),
            "Phone": message.to.removeprefix("+"),
            "Content": message.text,
            "Brandname": cfg.brandname or message.sender,
            "SmsType": cfg.sms_type,
            "IsUnicode": "1" if message.encoding is Encoding.UCS2 else "0",
            "Sandbox": "1" if cfg.sandbox else "0",
            "RequestId": request_id,
        }
        if cfg.callback_url:
            payload["CallbackUrl"] = self.callback_url()
        try:
            answer = await self._http.post_json(SEND_PATH, payload)
            code = str(answer["CodeResult"])
        except UnreadableAnswer as exc:
            # A 2xx we cannot read: the gateway may well have taken the message.
            raise SendError(ErrorKind.AMBIGUOUS, "bad_answer", f"unreadable: {exc}") from None
        except (KeyError, TypeError):
            raise SendError(ErrorKind.AMBIGUOUS, "bad_answer", "no CodeResult") from None
        if code in (ACCEPTED, ALREADY_ACCEPTED):
            return SendResult(provider_message_id=request_id)
        kind, detail = CODE_RESULTS.get(code, (ErrorKind.PERMANENT, "not accepted"))
        raise SendError(kind, code, detail)

    def describe(self, code: str) -> str | None:
        known = CODE_RESULTS.get(code)
        return known[1] if known else super().describe(code)

    def authenticate(self, request: InboundRequest) -> bool:
        """eSMS signs nothing: its callbacks are known by the secret token in the URL
        (compared in constant time) and, when set, the addresses they come from."""
        token = self.config.callback_token
        if token is None:
            return False  # no way to tell a callback from a forgery: refuse them all
        given = request.query.get("token", "")
        if not hmac.compare_digest(given.encode(), token.get_secret_value().encode()):
            return False
        return not self._networks or _within(request.client, self._networks)

    def parse_receipt(self, payload: Mapping[str, str]) -> Receipt:
        try:
            request_id, status = payload["RequestId"], payload["SendStatus"]
        except KeyError as missing:
            raise ValueError(f"eSMS callback without {missing.args[0]!r}") from None
        if not request_id:
            raise ValueError("eSMS callback with an empty RequestId")
        telco = payload.get("telcoid")
        return Receipt(
            provider_message_id=request_id,
            status=SEND_STATUSES.get(status),
            raw_status=status,
            code=status if status == "4" else None,
            network=TELCO_IDS.get(telco, f"telcoid:{telco}") if telco else None,
        )

    async def check_account(self) -> AccountCheck:
        """Ask eSMS for the account's balance (``GetBalance_json``): it answers with our
        credentials judged (101: refused) and the balance in đồng; sends nothing. A zero
        balance is a problem too: every send would be refused (103) and halt."""
        cfg = self.config
        credentials = {
            "ApiKey": cfg.api_key.get_secret_value(),
            "SecretKey": cfg.secret_key.get_secret_value(),
        }
        try:
            answer = await self._http.post_json(BALANCE_PATH, credentials)
            code = str(answer["CodeResponse"])
        except SendError as error:
            if error.kind is ErrorKind.HALT:  # 401/403
                problem = f"eSMS refused our credentials: HTTP {error.code[5:]}"
                return AccountCheck(True, problem, refused=True)
            return AccountCheck(problem=failed_check("eSMS", cfg.base_url, error))
        except UnreadableAnswer as exc:
            unreadable = f"eSMS's answer to the balance check was unreadable: {exc}, not JSON"
            return AccountCheck(problem=unreadable)
        except (KeyError, TypeError):
            return AccountCheck(problem="eSMS's answer to the balance check had no CodeResponse")
        code = storable(code, CODE_LENGTH)  # said to a terminal: no escape sequence obeyed
        if code != ACCEPTED:
            detail = self.describe(code) or "not accepted"
            refused = code in CREDENTIALS_REFUSED
            what = "our credentials" if refused else "the balance check"
            return AccountCheck(True, f"eSMS refused {what}: {code} {detail}", refused=refused)
        raw = answer.get("Balance")
        try:  # a number, or a number written as text; true is not 1 ₫, nor missing 0 ₫
            balance = math.nan if raw is None or isinstance(raw, bool) else float(raw)
        except (TypeError, ValueError, OverflowError):  # OverflowError: a 400-digit integer
            balance = math.nan
        if not math.isfinite(balance):
            return AccountCheck(True, "eSMS took our credentials but gave an unreadable balance")
        balance = int(balance) if balance.is_integer() else balance
        user = answer.get("UserID")
        user = None if user is None else storable(str(user), CODE_LENGTH)
        facts = {
            "balance": balance,
            "currency": "VND",
            "user_id": user,
        }
        said = f"số dư · balance {vnd(balance)}" + (f" (UserID {user})" if user is not None else "")
        if balance <= 0:
            problem = f"the balance is {vnd(balance)}: every send would be refused (103)"
            return AccountCheck(True, problem, facts=facts, said=said)
        return AccountCheck(True, facts=facts, said=said)

    async def aclose(self) -> None:
        await self._http.close()


def _within(address: str, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)
