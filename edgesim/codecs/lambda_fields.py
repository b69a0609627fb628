"""Header, status, body and target fields of Lambda@Edge event JSON.

Helpers of ``edgesim.codecs.lambda_edge``: each turns one field of a
function's result into a value, or raises ``LambdaValidationError`` naming
the rule it breaks (edge-functions-restrictions.md, lambda-event-structure.md,
lambda-generating-http-responses-in-requests.md).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from typing import Any

from edgesim.errors import LambdaValidationError
from edgesim.hooks import DISALLOWED_BY_NAME, HookRule, is_disallowed
from edgesim.models import Headers
from edgesim.wire import FRAMING  # CloudFront's to write, never a function's

__all__ = [
    "BAD_BODY",
    "FRAMING",
    "QUERY_BAD",
    "Json",
    "check_response_size",
    "checked_headers",
    "checked_target",
    "decode_headers",
    "encode_headers",
    "framed",
    "replacement_request_body",
    "response_body",
    "restore_framing",
    "status_code",
    "status_description",
    "title_case",
]

Json = dict[str, Any]

# The message real CloudFront pages show for a body it cannot use.
BAD_BODY = "The body is not a string, is not an object, or exceeds the maximum size."
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # HTAB is allowed in values
# Not allowed in a query string a function sets (nor in a custom origin path).
QUERY_BAD = re.compile(r"[\x00-\x20\x7f#]")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_URI_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MAX_URI = 8192
_NO_BODY_STATUSES = frozenset({204, 304})


def encode_headers(fields: Iterable[tuple[str, str]]) -> Json:
    """Lowercase name -> [{"key": name as sent, "value": ...}], hiding disallowed headers."""
    out: Json = {}
    for name, value in fields:
        lower = name.lower()
        if DISALLOWED_BY_NAME[lower]:
            continue
        entry = {"key": name, "value": value}
        entries = out.get(lower)
        if entries is None:
            out[lower] = [entry]
        else:
            entries.append(entry)
    return out


def decode_headers(value: object, what: str) -> list[tuple[str, str]]:
    """A result's headers object as (name, value) fields, in order; keys filled in."""
    if not isinstance(value, dict):
        raise LambdaValidationError(f"The {what} must be an object keyed by header name.")
    fields: list[tuple[str, str]] = []
    for name, entries in value.items():
        if not isinstance(name, str) or not _TOKEN.fullmatch(name):
            raise LambdaValidationError(f"{name!r} in the {what} is not a valid header name.")
        if not isinstance(entries, list):
            raise LambdaValidationError(
                f"The {what} {name!r} must be an array of {{key, value}} objects."
            )
        lower = name.lower()
        for entry in entries:
            if not isinstance(entry, dict):
                raise LambdaValidationError(
                    f"The {what} {name!r} must be an array of {{key, value}} objects."
                )
            text = entry.get("value")
            if not isinstance(text, str):
                raise LambdaValidationError(f"The value of the {what} {name!r} must be a string.")
            if _CONTROL.search(text):
                raise LambdaValidationError(
                    f"The value of the {what} {name!r} contains a control character."
                )
            key = entry.get("key")
            if key is None:
                key = title_case(lower)
            elif not isinstance(key, str) or key.lower() != lower:
                raise LambdaValidationError(
                    f"The key {key!r} in the {what} does not match the header name {name!r}."
                )
            fields.append((key, text))
    return fields


def checked_headers(rule: HookRule, fields: list[tuple[str, str]], original: Headers) -> Headers:
    """The headers the result describes, after the event's header rules.

    Returns ``original`` itself when nothing changed. Hidden (disallowed)
    headers of the original are kept, after the function's.
    """
    exposed: list[tuple[str, str]] = []
    hidden: list[tuple[str, str]] = []
    for field in original:
        (hidden if is_disallowed(field[0]) else exposed).append(field)
    if fields == exposed:
        return original
    names = [name.lower() for name, _ in fields]
    for (key, _), lower in zip(fields, names, strict=True):
        if is_disallowed(lower):
            raise LambdaValidationError(f"The function added the disallowed header {key}.")
    if rule.not_addable_headers:
        before_names = {name.lower() for name, _ in exposed}
        for (key, _), lower in zip(fields, names, strict=True):
            if lower in rule.not_addable_headers and lower not in before_names:
                raise LambdaValidationError(f"A {rule.event} function can't add the header {key}.")
    for lower in rule.read_only_headers:
        before = [v for n, v in exposed if n.lower() == lower]
        after = [v for (_, v), n in zip(fields, names, strict=True) if n == lower]
        if before != after:
            what = "added" if not before else "removed" if not after else "changed"
            raise LambdaValidationError(
                f"The function {what} the read-only header {title_case(lower)}"
                f" (read-only at {rule.event})."
            )
    return Headers(fields + hidden)


def title_case(lower: str) -> str:
    """How Lambda@Edge fills a missing ``key``: initial capital per hyphen part."""
    return "-".join(part.capitalize() for part in lower.split("-"))


def checked_target(uri: object, query: object) -> tuple[str, str]:
    if not isinstance(uri, str) or not uri.startswith("/"):
        raise LambdaValidationError("The uri must be a string that starts with a slash (/).")
    if _URI_CONTROL.search(uri):
        raise LambdaValidationError("The uri contains a control character.")
    if not isinstance(query, str):
        raise LambdaValidationError("The querystring must be a string.")
    if QUERY_BAD.search(query):
        raise LambdaValidationError(
            "The querystring can't contain spaces, control characters or the fragment"
            " identifier (#)."
        )
    if len(uri) + len(query) >= _MAX_URI:
        raise LambdaValidationError(
            f"The uri and querystring must be shorter than {_MAX_URI} characters together."
        )
    return _utf8_escaped(uri, " #?"), _utf8_escaped(query, "")


def _utf8_escaped(text: str, also: str) -> str:
    """``text`` with non-ASCII characters (and those in ``also``) percent-encoded as UTF-8."""
    if text.isascii() and not any(c in text for c in also):
        return text
    return "".join(
        c if c.isascii() and c not in also else "".join(f"%{b:02X}" for b in c.encode())
        for c in text
    )


def status_code(value: object) -> int:
    """``status`` as CloudFront takes it: a string of digits (or, as AWS's own
    Python samples use, an int), between 200 and 599."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise LambdaValidationError("The status must be an HTTP status code string, like '200'.")
    if isinstance(value, str):
        if not (value.isascii() and value.isdigit()):
            raise LambdaValidationError(f"The status {value!r} is not an HTTP status code.")
        value = int(value)
    if not 200 <= value <= 599:
        raise LambdaValidationError(f"The status {value} is not between 200 and 599.")
    return value


def status_description(result: Json, default: str) -> str:
    if "statusDescription" not in result:
        return default
    text = result["statusDescription"]
    if not isinstance(text, str) or _CONTROL.search(text):
        raise LambdaValidationError(
            "The statusDescription must be a string without control characters."
        )
    return text


def response_body(result: Json) -> bytes | None:
    """A result's ``body`` as bytes, or None when it has none (keep the current one)."""
    if "body" not in result:
        return None
    body = result["body"]
    if not isinstance(body, str):
        raise LambdaValidationError(BAD_BODY)
    encoding = result.get("bodyEncoding", "text")
    if encoding == "text":
        return _utf8(body)
    if encoding == "base64":
        return _unbase64(body, None)
    raise LambdaValidationError("The bodyEncoding must be text or base64.")


def replacement_request_body(rule: HookRule, value: object) -> bytes | None:
    """The new request body, or None to keep the original (action read-only)."""
    if not isinstance(value, dict):
        raise LambdaValidationError(BAD_BODY)
    action = value.get("action", "read-only")
    if action == "read-only":  # edits to data and encoding are ignored
        return None
    if action != "replace":
        raise LambdaValidationError("The body action must be read-only or replace.")
    data = value.get("data", "")
    if not isinstance(data, str):
        raise LambdaValidationError(BAD_BODY)
    encoding = value.get("encoding", "base64")
    if encoding == "text":
        return _utf8(data)[: rule.max_body_replace_text_bytes]
    if encoding == "base64":
        return _unbase64(data, rule.max_body_replace_base64_chars)
    raise LambdaValidationError("The body encoding must be text or base64.")


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise LambdaValidationError("The body is not valid UTF-8 text.") from exc


def _unbase64(data: str, limit: int | None) -> bytes:
    """Decode base64 (whitespace allowed), first truncating the text to ``limit`` characters."""
    compact = "".join(data.split())
    if limit is not None and len(compact) > limit:
        compact = compact[: limit - limit % 4]
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise LambdaValidationError("The body is not valid base64.") from exc


def check_response_size(rule: HookRule, fields: list[tuple[str, str]], body: bytes) -> None:
    size = len(body) + sum(len(n) + len(v) + 4 for n, v in fields)
    limit = rule.max_generated_response_bytes
    if size > limit:
        raise LambdaValidationError(
            f"{BAD_BODY} (The response is {size} bytes with its headers;"
            f" at most {limit} at {rule.event}.)"
        )


def framed(fields: list[tuple[str, str]], status: int, length: int) -> list[tuple[str, str]]:
    """``fields`` with CloudFront's own framing for a body of ``length`` bytes."""
    out = [f for f in fields if f[0].lower() not in FRAMING]
    if status not in _NO_BODY_STATUSES:
        out.append(("Content-Length", str(length)))
    return out


def restore_framing(headers: Headers, original: Headers) -> Headers:
    """The function's headers with the original framing (the body is unchanged)."""

    def framing(fields: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        return [f for f in fields if f[0].lower() in FRAMING]

    if framing(headers) == framing(original):
        return headers
    kept = [f for f in headers if f[0].lower() not in FRAMING]
    return Headers(kept + framing(original))
