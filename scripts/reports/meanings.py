"""What a failure code means, for a report's reader: Loa's own codes (``LOA_CODES``) and
the providers' (their tables are in English) in Vietnamese (``MEANINGS_VI``), without
saying again what the row's outcome already says.

Plain data and small functions only: the command line imports this module at start
(through ``scripts.reports.words``).
"""

from __future__ import annotations

import re

#: Loa's own codes (not a provider's), as the worker, reaper and finaliser record them.
LOA_CODES: dict[str, dict[str, str]] = {
    "en": {
        "validity_passed": "validity passed before it could be sent",
        "lease_expired_after_handover": "a worker died after handing it over: may have gone out",
        "claim_abandoned_after_handover": "a worker gave it up after handing it over: may "
        "have gone out",
        "no_final_receipt": "no final receipt within the provider's window",
        "read_timeout": "no answer after sending: may have gone out",
        "bad_answer": "an answer that could not be read: may have gone out",
        "unexpected": "an unexpected error while sending: may have gone out",
        "campaign_cancelled": "the campaign was cancelled before it was sent",
        "text_over_provider_limit": "longer than the provider takes (a fallback's limit): not sent",
    },
    "vi": {
        "validity_passed": "hết hạn hiệu lực trước khi gửi được",
        "lease_expired_after_handover": "tiến trình gửi dừng đột ngột sau khi đã chuyển "
        "tin cho nhà cung cấp: tin có thể đã đi",
        "claim_abandoned_after_handover": "tiến trình gửi bỏ dở sau khi đã chuyển tin cho "
        "nhà cung cấp: tin có thể đã đi",
        "no_final_receipt": "nhà mạng không báo kết quả cuối cùng trong thời hạn chờ",
        "read_timeout": "nhà cung cấp không trả lời sau khi gửi: tin có thể đã đi",
        "bad_answer": "không đọc được câu trả lời của nhà cung cấp: tin có thể đã đi",
        "unexpected": "lỗi bất thường khi gửi: tin có thể đã đi",
        "campaign_cancelled": "chiến dịch bị huỷ trước khi tin được gửi",
        "text_over_provider_limit": "tin dài hơn nhà cung cấp (dự phòng) cho phép: không gửi",
    },
}

#: The providers' own meanings (their tables are in English) in Vietnamese, by their
#: text: a meaning missing here is shown as the provider wrote it.
MEANINGS_VI: dict[str, str] = {
    "throttled, not processed": "bị giới hạn tốc độ, chưa được xử lý",
    "invalid destination number": "số nhận không hợp lệ",
    "credentials refused": "thông tin đăng nhập bị từ chối",
    "not delivered: the handset could not be reached": "không đến máy: không liên lạc "
    "được với máy người nhận",
    "unknown error or number blocked": "lỗi không xác định hoặc số bị chặn",
    "ApiKey/SecretKey refused": "ApiKey/SecretKey bị từ chối",
    "balance exhausted": "tài khoản đã hết tiền",
    "invalid phone number": "số điện thoại không hợp lệ",
    "caller IP not whitelisted": "địa chỉ IP gửi chưa được cho phép",
    "brandname not registered on this account": "tên người gửi (brandname) chưa đăng ký "
    "trên tài khoản này",
    "content does not match a registered template": "nội dung không khớp mẫu tin đã đăng ký",
    "brandname not registered for this network": "tên người gửi (brandname) chưa đăng ký "
    "với nhà mạng này",
    "invalid 'To' number": "số nhận không hợp lệ",
    "region not enabled on the account": "tài khoản chưa được phép gửi tới vùng này",
    "recipient unsubscribed (STOP)": "người nhận đã từ chối nhận tin (STOP)",
    "not a mobile number": "không phải số di động",
    "account suspended": "tài khoản bị tạm khoá",
    "unreachable handset": "không liên lạc được với máy người nhận",
    "message blocked": "tin nhắn bị chặn",
    "unknown handset": "số người nhận không tồn tại",
    "landline or unreachable carrier": "số cố định hoặc không liên lạc được với nhà mạng",
    "carrier filtering: check the sender and the text": "bị nhà mạng lọc: cần kiểm tra "
    "tên người gửi và nội dung",
    "unknown error": "lỗi không xác định",
    "body over 1,600 characters": "nội dung dài quá 1.600 ký tự",
    "content too long for the carrier (long UCS-2 text)": "nội dung quá dài đối với nhà mạng "
    "(tin có dấu, mã UCS-2, quá dài)",
}
_HTTP = re.compile(r"^HTTP (\d{3}) from the provider$")
_INTERNAL = re.compile(r"^\S+ internal error$")
_PROTOCOL_NAME = re.compile(r"^([A-Z][A-Z0-9_]+): (.*)$")  # "ESME_RINVDSTADR: invalid …"
#: A meaning that opens with the outcome it explains says it twice in a report's row
#: (``Không đến máy · 001 — không đến máy: …``): those openings, per outcome, are dropped.
SAYS_OUTCOME: dict[str, tuple[str, ...]] = {
    "undelivered": ("không đến máy", "not delivered", "undelivered"),
    "failed": ("thất bại", "failed"),
    "expired": ("hết hạn", "expired"),
    "unknown": ("không rõ", "unknown"),
    "cancelled": ("đã huỷ", "cancelled"),
}


def _meaning(code: str, described: str, lang: str) -> str:
    """``meaning``, whatever the outcome."""
    if code in LOA_CODES["en"]:
        return LOA_CODES[lang if lang in LOA_CODES else "en"][code]
    if lang != "vi" or not described:
        return described
    named = _PROTOCOL_NAME.match(described)
    prefix, text = (f"{named[1]}: ", named[2]) if named else ("", described)
    if text in MEANINGS_VI:
        return prefix + MEANINGS_VI[text]
    if http := _HTTP.match(text):
        return f"{prefix}nhà cung cấp trả lời lỗi HTTP {http[1]}"
    if _INTERNAL.match(text):
        return f"{prefix}lỗi nội bộ của nhà cung cấp"
    return described


def meaning(code: str, described: str, lang: str, status: str | None = None) -> str:
    """What a failure ``code`` means in ``lang``: Loa's own codes from ``LOA_CODES``, a
    provider's from its own description ``described`` (English; ``""`` when its tables
    do not say), put in Vietnamese when ``lang`` is ``vi`` and the text is known. A
    protocol name leading the text (``ESME_RINVDSTADR: …``) is kept as it is. With the
    row's ``status``, an opening that repeats it (``không đến máy: …`` for an
    undelivered message) is left out."""
    text = _meaning(code, described, lang)
    head, colon, rest = text.partition(": ")
    if colon and rest and head.strip().casefold() in SAYS_OUTCOME.get(status or "", ()):
        return rest
    return text
