"""One cached object (``Entry``) and how a 304 revalidation updates it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from edgesim.models import Headers, Response
from edgesim.wire import HOP_BY_HOP, reason_phrase, render_head

__all__ = ["Entry", "merge_304_headers"]


# Fields never stored with an object: hop-by-hop fields, the origin's Age (the
# edge sends its own), and Content-Length (recomputed from the stored body).
_NOT_STORED = frozenset(HOP_BY_HOP | {"age", "content-length"})
# RFC 9111 3.2: fields a 304 must not overwrite in the stored response.
_NOT_UPDATED_BY_304 = frozenset(
    HOP_BY_HOP | {"age", "content-length", "content-encoding", "content-range"}
)
# Bytes charged per entry on top of body, head and key: the Entry, its
# Headers and the store's bookkeeping (an estimate of CPython's cost).
_ENTRY_OVERHEAD = 512


def merge_304_headers(stored: Headers, fresh: Headers) -> Headers:
    """Stored headers updated from a 304 response (RFC 9111 section 4.3.4).

    Each field the 304 carries replaces all stored fields of that name, except
    fields that describe the stored body (Content-Length, Content-Encoding,
    Content-Range) and hop-by-hop fields.
    """
    updates = [(n, v) for n, v in fresh if n.lower() not in _NOT_UPDATED_BY_304]
    if not updates:
        return stored
    replaced = {n.lower() for n, _ in updates}
    kept = [(n, v) for n, v in stored if n.lower() not in replaced]
    return Headers((*kept, *updates))


@dataclass(frozen=True, slots=True)
class Entry:
    """One cached object: an origin (or origin-request function) response.

    ``head`` is the status line and stored headers pre-rendered once; the
    server appends only what changes per request (``Age``, ``X-Cache``,
    ``Via``, ``X-Amz-Cf-Pop``, ``X-Amz-Cf-Id``, connection fields). The
    origin's ``Date`` is kept (a hit shows when the origin answered, next to
    ``Age``); ``Content-Length`` is in the head. ``methods`` are the viewer
    methods the entry can answer: a GET response answers GET and HEAD, a HEAD
    response (stored without a body) only HEAD, an OPTIONS response only
    OPTIONS. ``error_min`` marks an error response cached under the
    error-caching rules. ``response`` is the whole object as one Response,
    made once: a hit hands it over as it is (values are frozen). Build entries
    with ``Entry.create``.
    """

    key: str
    status: int
    reason: str
    headers: Headers
    body: bytes
    stored_at: float
    ttl: float
    head: bytes
    size: int
    etag: str | None
    last_modified: str | None
    error_min: bool
    methods: frozenset[str]
    response: Response = field(compare=False, repr=False)

    @classmethod
    def create(
        cls,
        key: str,
        status: int,
        reason: str,
        headers: Headers,
        body: bytes,
        now: float,
        ttl: float,
        method: str = "GET",
    ) -> Entry:
        """An entry for a response to ``method``, stored at monotonic time ``now``.

        ``headers`` are the response's as they go to the viewer; hop-by-hop
        fields, ``Age`` and ``Content-Length`` are dropped and ``Content-Length``
        is set from ``body``. An empty ``reason`` means the standard phrase.
        """
        if method == "HEAD":
            # The origin's Content-Length describes the GET body a HEAD omits.
            stored = headers.without(*(_NOT_STORED - {"content-length"}))
            body = b""
            methods = frozenset({"HEAD"})
        else:
            stored = headers.without(*_NOT_STORED)
            if status >= 200 and status not in (204, 304):
                stored = stored.add("Content-Length", str(len(body)))
            methods = frozenset({"GET", "HEAD"}) if method == "GET" else frozenset({method})
        return cls._build(key, status, reason, stored, body, now, ttl, methods)

    @classmethod
    def _build(
        cls,
        key: str,
        status: int,
        reason: str,
        headers: Headers,
        body: bytes,
        now: float,
        ttl: float,
        methods: frozenset[str],
    ) -> Entry:
        reason = reason or reason_phrase(status)
        head = render_head(status, reason, headers)
        return cls(
            key=key,
            status=status,
            reason=reason,
            headers=headers,
            body=body,
            stored_at=now,
            ttl=ttl,
            head=head,
            size=len(body) + len(head) + len(key) + _ENTRY_OVERHEAD,
            etag=headers.get("etag"),
            last_modified=headers.get("last-modified"),
            error_min=status >= 400,
            methods=methods,
            response=Response(status, headers, body, reason, head),
        )

    def age(self, now: float) -> int:
        """Whole seconds since the object entered the cache (the ``Age`` header)."""
        return int(now - self.stored_at) if now > self.stored_at else 0

    def is_fresh(self, now: float) -> bool:
        """True while the TTL has not run out; a stale entry needs revalidation."""
        return now - self.stored_at < self.ttl

    def serves(self, method: str) -> bool:
        """Whether this entry can answer a viewer request with ``method``."""
        return method in self.methods

    def headers_after_304(self, fresh: Headers) -> Headers:
        """The stored headers updated from a 304's (see ``merge_304_headers``).

        The pipeline computes the new TTL from these before calling ``refreshed``.
        """
        return merge_304_headers(self.headers, fresh)

    def refreshed(self, now: float, ttl: float, headers: Headers | None = None) -> Entry:
        """The same object, fresh again from ``now`` for ``ttl`` seconds.

        After a 304 revalidation pass the 304's headers; they are merged into
        the stored ones (merging is idempotent, so the result of
        ``headers_after_304`` may be passed instead). After a 5xx on
        revalidation CloudFront keeps serving the stale object for
        ErrorCachingMinTTL (HTTPStatusCodes.html): this call without headers.
        """
        if headers is None:
            return dataclasses.replace(self, stored_at=now, ttl=ttl)
        merged = merge_304_headers(self.headers, headers)
        return self._build(
            self.key, self.status, self.reason, merged, self.body, now, ttl, self.methods
        )
