"""Strict checks on the query API's path and query parameters, beyond what
FastAPI's parsing does (docs/DESIGN.md, "Bad input").

- Percent-encoded bytes that are not UTF-8 (`%ff`) are decoded by the server
  with replacement characters (U+FFFD), which would silently query another
  cookie or filter value; they are rejected instead. The raw bytes are only
  looked at when a replacement character appears, so valid requests pay
  nothing.
- A cookie or filter value longer than ingest ever accepts cannot match any
  stored tag, and one over 64 KiB would exceed Cassandra's key limit: 400.
- `limit` is plain decimal digits: FastAPI's integer parsing also takes
  `+5`, ` 5`, `1_0` and `5.0`.
- The cookie is the rest of the path, newlines included (`CookieConvertor`).
"""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote_to_bytes

from starlette.convertors import Convertor
from starlette.requests import Request

from common.limits import MAX_COOKIE_CHARS, MAX_FIELD_CHARS, PROFILE_CAP
from common.problems import Problem

_REPLACEMENT = "\ufffd"


def _bad(field: str, message: str) -> Problem:
    return Problem(400, f"Invalid {field}: {message}.", errors=[{"field": field, "message": message}])


def check_cookie(request: Request, cookie: str) -> None:
    """The profile path's cookie: 1 to MAX_COOKIE_CHARS characters of valid UTF-8."""
    if not cookie:
        raise _bad("cookie", "the cookie is missing from the path")
    if len(cookie) > MAX_COOKIE_CHARS:
        raise _bad("cookie", f"longer than {MAX_COOKIE_CHARS} characters")
    if _REPLACEMENT in cookie:
        raw_path = request.scope.get("raw_path") or request.url.path.encode()
        try:
            unquote_to_bytes(raw_path).decode("utf-8")
        except UnicodeDecodeError:
            raise _bad("cookie", "percent-encoded bytes that are not UTF-8") from None


def check_filter(request: Request, name: str, value: str | None) -> None:
    """An aggregates filter value: at most MAX_FIELD_CHARS characters of valid UTF-8."""
    if value is None:
        return
    if len(value) > MAX_FIELD_CHARS:
        raise _bad(name, f"longer than {MAX_FIELD_CHARS} characters")
    if _REPLACEMENT in value:
        query = request.scope.get("query_string", b"").decode("latin-1")
        try:
            parse_qsl(query, keep_blank_values=True, encoding="utf-8", errors="strict")
        except UnicodeDecodeError:
            raise _bad(name, "percent-encoded bytes that are not UTF-8") from None


def check_limit_digits(text: str | None) -> None:
    """`limit` as sent: decimal ASCII digits only (its range FastAPI checks)."""
    if text is not None and not (text.isascii() and text.isdigit()):
        raise _bad("limit", f"expected an integer from 0 to {PROFILE_CAP} written in decimal digits")


class CookieConvertor(Convertor[str]):
    """The rest of the path, as Starlette's `path` convertor, but newlines
    included: `path` is `.*`, which stops at a newline, a valid cookie
    character (sent as %0A)."""

    regex = r"[\s\S]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value
