"""HTTP/1.1 bytes on the wire: header fields read from it, response heads, reason phrases.

Kept apart from the server so that the cache can keep a pre-rendered head
with each entry and the server only appends what changes per request.
"""

from __future__ import annotations

from collections.abc import Iterable
from http import HTTPStatus

from edgesim.models import Headers

__all__ = [
    "FRAMING",
    "HOP_BY_HOP",
    "JOIN_LIMIT",
    "decode_block",
    "decode_fields",
    "parse_range",
    "reason_phrase",
    "render_fields",
    "render_head",
    "render_headers",
    "render_request_fields",
    "request_bytes",
]

# RFC 9110 section 7.6.1 connection-specific fields, plus the ones CloudFront
# removes on both legs (RequestAndResponseBehaviorCustomOrigin.md).
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)

# A body up to this size is written joined to the bytes before it (one copy,
# one write); a larger one goes out beside them in one writev, uncopied.
JOIN_LIMIT = 65_536

_REASONS = {s.value: s.phrase for s in HTTPStatus}
_REASONS.update({494: "Request Header Too Large"})


# Header fields as read, decoded once each: a keep-alive viewer (and an origin)
# sends the same fields request after request. Decoding is latin-1, one
# character per byte, so rendering a field again gives the bytes it came as.
# Bounded: emptied when full, so fields that never repeat cost one insert.
_DECODED: dict[tuple[bytes, bytes], tuple[str, str]] = {}
_DECODED_LIMIT = 4096


def decode_fields(raw: Iterable[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    """(name, value) text of the parser's raw header fields, in order."""
    decoded = _DECODED
    out = []
    for field in raw:
        pair = decoded.get(field)
        if pair is None:
            if len(decoded) >= _DECODED_LIMIT:
                decoded.clear()
            pair = decoded[field] = (field[0].decode("latin-1"), field[1].decode("latin-1"))
        out.append(pair)
    return out


# Whole request header blocks as read, decoded once each into Headers, with their
# size on the wire: a keep-alive viewer sends the same block request after
# request, and a block seen again costs one lookup, its Headers (immutable) with
# the lookup index it built the first time. Bounded in count and block size (a
# few MB at most), so blocks that never repeat cost one insert each.
_BLOCKS: dict[tuple[tuple[bytes, bytes], ...], tuple[Headers, int]] = {}
_BLOCKS_LIMIT = 512
_BLOCK_BYTES = 4096


def decode_block(raw: tuple[tuple[bytes, bytes], ...]) -> tuple[Headers, int]:
    """A request's raw header fields as Headers, in order, and their size on the
    wire: names, values, and ": " plus CRLF for each."""
    known = _BLOCKS.get(raw)
    if known is not None:
        return known
    fields = decode_fields(raw)
    size = sum(len(name) + len(value) for name, value in fields) + 4 * len(fields)
    block = (Headers(fields), size)
    if size <= _BLOCK_BYTES:
        if len(_BLOCKS) >= _BLOCKS_LIMIT:
            _BLOCKS.clear()
        _BLOCKS[raw] = block
    return block


def reason_phrase(status: int) -> str:
    return _REASONS.get(status, "Unknown")


def render_headers(headers: Headers) -> bytes:
    """Header lines, each ending in CRLF (no terminating blank line)."""
    return render_fields(headers.fields)


def render_fields(fields: Iterable[tuple[str, str]]) -> bytes:
    """``render_headers`` for plain (name, value) pairs."""
    return "".join([f"{n}: {v}\r\n" for n, v in fields]).encode("latin-1", "replace")


# A message's framing fields: whoever sends it writes its own, whatever it was given.
FRAMING = frozenset({"content-length", "transfer-encoding"})
# What each header name (as spelled) is to a request head; the same few names
# come on every request, so they are remembered, at most this many.
_OTHER, _FRAMING_FIELD, _HOST = 0, 1, 2
_NAME_KINDS: dict[str, int] = {}
_NAME_KINDS_LIMIT = 1024


def render_request_fields(fields: Iterable[tuple[str, str]]) -> tuple[bytes, bool]:
    """A request's header lines for the wire, framing fields left out (the sender
    writes its own), and whether a Host field is among them.

    Raises ValueError for a CR or LF in a name or value: it would let a function
    smuggle a second request onto the origin connection.
    """
    lines = []
    has_host = False
    kinds = _NAME_KINDS
    for name, value in fields:
        kind = kinds.get(name)
        if kind is None:
            lower = name.lower()
            kind = _FRAMING_FIELD if lower in FRAMING else _HOST if lower == "host" else _OTHER
            if len(kinds) < _NAME_KINDS_LIMIT:
                kinds[name] = kind
        if kind == _FRAMING_FIELD:
            continue
        if kind == _HOST:
            has_host = True
        lines.append(f"{name}: {value}\r\n")
    text = "".join(lines)
    if text.count("\n") != len(lines) or text.count("\r") != len(lines):
        raise ValueError("CR or LF in a request header")
    return request_bytes(text), has_host


def request_bytes(text: str) -> bytes:
    """Request head text as bytes: latin-1, the bytes it was read as, else UTF-8."""
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape")


# Heads rendered, by status, reason and fields: the misses of one object get
# the same head from the origin (its Date changes once a second). Bounded.
_HEADS: dict[tuple[int, str, tuple[tuple[str, str], ...]], bytes] = {}
_HEADS_LIMIT = 256


def render_head(status: int, reason: str, headers: Headers) -> bytes:
    """Status line and header lines, without the blank line that ends the head."""
    key = (status, reason, headers.fields)
    head = _HEADS.get(key)
    if head is None:
        line = f"HTTP/1.1 {status} {reason or reason_phrase(status)}\r\n"
        head = line.encode("latin-1", "replace") + render_headers(headers)
        if len(_HEADS) >= _HEADS_LIMIT:
            _HEADS.clear()
        _HEADS[key] = head
    return head


def parse_range(spec: str, size: int) -> tuple[int, int] | str | None:
    """(start, end) for one satisfiable ``Range`` header, "unsatisfiable", or None to ignore it.

    A malformed header or several ranges are ignored (a full 200), as S3 and
    CloudFront do (RFC 9110 section 14.2 allows ignoring Range).
    """
    unit, _, ranges = spec.partition("=")
    if unit.strip().lower() != "bytes" or "," in ranges:
        return None
    first, dash, last = ranges.strip().partition("-")
    if not dash or not (first.isdigit() or last.isdigit()):
        return None
    if not first:  # suffix: the last N bytes
        if not last.isdigit():
            return None
        n = int(last)
        if n == 0 or size == 0:
            return "unsatisfiable"
        return max(0, size - n), size - 1
    if not first.isdigit() or (last and not last.isdigit()):
        return None
    start = int(first)
    end = int(last) if last else None
    if end is not None and end < start:
        return None
    if start >= size:
        return "unsatisfiable"
    return start, size - 1 if end is None else min(end, size - 1)
