"""Conditional and range requests answered from a cached object.

The edge answers a viewer's ``If-None-Match`` / ``If-Modified-Since`` with
304 and a ``Range`` with 206 from what it holds, and revalidates an expired
object with the validators it stored (Expiration.md, "conditional GETs";
RangeGETs.md; RFC 9110 section 13).
"""

from __future__ import annotations

from email.utils import parsedate_to_datetime

from edgesim.cache.entry import Entry
from edgesim.models import Headers, Request, Response
from edgesim.wire import parse_range

__all__ = [
    "NOT_MODIFIED_HEADERS",
    "conditional_request",
    "if_range_holds",
    "not_modified",
    "ranged",
]

# The fields a 304 carries (RFC 9110 section 15.4.5).
NOT_MODIFIED_HEADERS = frozenset(
    {"cache-control", "content-location", "date", "etag", "expires", "last-modified", "vary"}
)


def conditional_request(request: Request, stale: Entry) -> Request:
    """``request`` asking the origin whether ``stale`` is still current."""
    headers = request.headers
    if stale.etag:
        headers = headers.set("If-None-Match", stale.etag)
    if stale.last_modified:
        headers = headers.set("If-Modified-Since", stale.last_modified)
    return request.replace(headers=headers)


def not_modified(headers: Headers, entry: Entry) -> bool:
    """Whether a viewer's conditional GET is satisfied by the cached object (RFC 9110 13.2.2)."""
    inm = headers.get("if-none-match")
    if inm is not None:
        if entry.etag is None:
            return False
        tags = {t.strip().removeprefix("W/") for t in inm.split(",")}
        return "*" in tags or entry.etag.removeprefix("W/") in tags
    ims = headers.get("if-modified-since")
    if ims is not None and entry.last_modified is not None:
        try:
            return parsedate_to_datetime(entry.last_modified) <= parsedate_to_datetime(ims)
        except (TypeError, ValueError):
            return False
    return False


def if_range_holds(headers: Headers, entry: Entry) -> bool:
    """A Range applies unless If-Range names another version (RFC 9110 13.1.5)."""
    condition = headers.get("if-range")
    return condition is None or condition in (entry.etag, entry.last_modified)


def ranged(entry: Entry, spec: str) -> Response | None:
    """A 206 (or 416) for one byte range of a cached object; None to send it whole."""
    size = len(entry.body)
    parsed = parse_range(spec, size)
    if parsed is None:
        return None
    base = entry.headers.without("content-length", "content-range")
    if isinstance(parsed, str):  # unsatisfiable
        fields = base.keep(NOT_MODIFIED_HEADERS.__contains__)
        fields = fields.add("Content-Range", f"bytes */{size}").add("Content-Length", "0")
        return Response(416, fields, b"", "Requested Range Not Satisfiable")
    start, end = parsed
    fields = base.add("Content-Range", f"bytes {start}-{end}/{size}")
    fields = fields.add("Content-Length", str(end - start + 1))
    return Response(206, fields, entry.body[start : end + 1], "Partial Content")
