"""Passwords kept out of what people and logs see.

A password reaches the screen in three shapes: in a URL's userinfo
(``postgresql://loa:PASSWORD@db/loa``, ``redis://:PASSWORD@cache:6379/0``), in a URL's
query (``postgresql://loa@db/loa?password=PASSWORD``, ``redis://cache?password=PASSWORD``),
and in an error message that echoes a connection string (libpq and psycopg write
``password=PASSWORD`` of a conninfo, SQLAlchemy a URL). ``mask_url`` masks the first two
for a URL shown on purpose (``loa config show``, "cannot reach the ledger at …");
``redact`` masks all three anywhere in a text (error messages), leaving the rest as it is.
Pure Python, no SQLAlchemy: it reads URLs SQLAlchemy cannot (a Redis URL, a malformed one).
"""

from __future__ import annotations

import re
from urllib.parse import unquote_plus

MASK = "***"

#: Query and conninfo keys whose values are secrets (matched on the whole key, any case).
SECRET_KEY = re.compile(r"pass|passwd|pwd|.*(?:password|secret|token|api_?key).*", re.IGNORECASE)

_SCHEME = re.compile(r"(?:[A-Za-z][A-Za-z0-9+.\-]*:)?//")
#: SQLAlchemy's reading of the userinfo: user up to ':' (no '/'), password up to the
#: first '@' (so a '/' or '?' in an unencoded password is still the password).
_SA_USERINFO = re.compile(r"[^:/@]*:(?P<password>[^@]*)@")
#: One ``key=value`` of a query string (``&`` or ``;`` separated).
_QUERY_PAIR = re.compile(r"(?P<key>[^=&;#]*)=(?P<value>[^&;#]*)")
#: A URL inside a text: up to whitespace or a quote.
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>`]+")
#: ``password=…`` of a libpq conninfo (a value may be quoted: ``password='a b\\'c'``).
_CONNINFO = re.compile(
    r"(?P<key>\b(?:password|passwd|pwd|sslpassword)\s*=\s*)"
    r"(?P<value>'(?:[^'\\]|\\.)*'?|\"(?:[^\"\\]|\\.)*\"?|[^\s&;,)]+)",
    re.IGNORECASE,
)
#: ``'password': '…'`` of a dict's repr or a JSON document.
_MAPPING = re.compile(
    r"(?P<key>[\"'](?:password|passwd|pwd|sslpassword)[\"']\s*:\s*)"
    r"(?P<quote>['\"])(?:(?!(?P=quote))[^\\]|\\.)*(?P=quote)",
    re.IGNORECASE,
)


def _is_secret_key(key: str) -> bool:
    return SECRET_KEY.fullmatch(unquote_plus(key).strip()) is not None


def _password_span(rest: str) -> tuple[int, int] | None:
    """Where the password is in ``rest`` (a URL after its ``scheme://``), as both readers
    see it: SQLAlchemy's (password up to the first '@') and the standard library's
    (userinfo up to the last '@' of the authority). Their union is masked, so that no
    part of a password either reader would use is left showing."""
    spans = []
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    at = authority.rfind("@")
    colon = authority.find(":", 0, at) if at >= 0 else -1
    if colon >= 0:
        spans.append((colon + 1, at))
    match = _SA_USERINFO.match(rest)
    if match:
        spans.append(match.span("password"))
    if not spans:
        return None
    return min(s for s, _ in spans), max(e for _, e in spans)


def _mask_query(query: str) -> str:
    def pair(match: re.Match[str]) -> str:
        if match["value"] and _is_secret_key(match["key"]):
            return f"{match['key']}={MASK}"
        return match.group()

    return _QUERY_PAIR.sub(pair, query)


def mask_url(url: str) -> str:
    """``url`` with its password masked, in the userinfo and in the query
    (``password=``, ``sslpassword=``, ``token=`` …); everything else as it was.
    Any URL: a database's, Redis's, or one nothing can parse."""
    scheme = _SCHEME.match(url)
    if scheme is None:  # a URL without its scheme (``loa:PASSWORD@db/loa``), or a conninfo
        return redact_conninfo(mask_url("//" + url)[2:])
    head, rest = url[: scheme.end()], url[scheme.end() :]
    query_from = 0
    span = _password_span(rest)
    if span is not None:
        start, end = span
        if end > start:
            rest = rest[:start] + MASK + rest[end:]
            end = start + len(MASK)
        query_from = end + 1
    mark = rest.find("?", query_from)
    if mark >= 0:
        rest = rest[: mark + 1] + _mask_query(rest[mark + 1 :])
    return head + rest


def _conninfo_pair(match: re.Match[str]) -> str:
    value = match["value"]
    if value.startswith(MASK) and not value[len(MASK) :].strip(".,:;)]}"):
        return match.group()  # masked already (a URL's query), punctuation after it kept
    return match["key"] + MASK


def redact_conninfo(text: str) -> str:
    """``text`` with the values of ``password=…`` (libpq conninfo) and of
    ``'password': '…'`` (a mapping's repr, JSON) masked."""
    text = _CONNINFO.sub(_conninfo_pair, text)
    return _MAPPING.sub(lambda m: m["key"] + m["quote"] + MASK + m["quote"], text)


def _url_in_text(match: re.Match[str]) -> str:
    url = match.group()
    bare = url.rstrip(".,:;)]}")  # the sentence's punctuation, not the URL's
    return mask_url(bare) + url[len(bare) :]


def redact(text: str) -> str:
    """``text`` (an error message, a log line) with every password masked: in the URLs it
    contains (``mask_url``) and in connection strings (``redact_conninfo``)."""
    return redact_conninfo(_URL_IN_TEXT.sub(_url_in_text, text))
