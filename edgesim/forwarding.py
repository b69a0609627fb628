"""What CloudFront sends to the origin, and what it passes back to the viewer.

Source: CloudFront Developer Guide, "Request and response behavior for custom
origins" (RequestAndResponseBehaviorCustomOrigin.md) and "Controlling the
cache key" / "Origin request policies". Everything selected by the cache
policy or the origin request policy is forwarded; other viewer headers,
cookies and query strings are not.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from edgesim.cache import normalize_accept_encoding
from edgesim.config.schema import Behavior, CustomOrigin, Distribution, Origin, Selection
from edgesim.models import Headers, Request
from edgesim.wire import HOP_BY_HOP, render_request_fields

__all__ = ["Forwarding", "parse_cookies", "via_value"]

# Headers CloudFront forwards whatever the policy says (the custom-origin
# page's list), plus the body's own description, without which a forwarded
# body could not be read.
_ALWAYS_FORWARDED = frozenset(
    {
        "content-length",
        "content-type",
        "content-encoding",
        "date",
        "if-match",
        "if-modified-since",
        "if-none-match",
        "if-range",
        "if-unmodified-since",
        "range",
        "request-range",
        "x-forwarded-for",
    }
)
# Removed from the viewer's request before anything else.
_NEVER_FORWARDED = HOP_BY_HOP | frozenset(
    {"expect", "x-forwarded-proto", "x-http-method-override", "x-real-ip", "x-amz-cf-id", "via"}
)
# Conditional headers are the cache's business on cacheable requests: the
# edge fetches whole objects so it can store them and answer 304s itself.
# Range goes on to the origin on a miss and its 206 passes through uncached
# (RangeGETs.md); ranges of objects already cached are cut from the cache.
_CACHE_OWNED = frozenset({"if-match", "if-modified-since", "if-none-match", "if-unmodified-since"})
_VARY_ALWAYS = frozenset({"accept-encoding", "cookie", "user-agent"})
# Origin response headers the edge never passes on (re-framed or hop-by-hop).
_RESPONSE_DROPPED = HOP_BY_HOP | frozenset({"x-cache", "via"})


def _rendered(fields: tuple[tuple[str, str], ...]) -> bytes | None:
    """``fields`` rendered for the origin's request head, if they carry their Host
    and nothing that cannot go on the wire (the origin client renders, or refuses,
    the rest itself)."""
    try:
        block, has_host = render_request_fields(fields)
    except ValueError:
        return None
    return block if has_host else None


def via_value(distribution: Distribution) -> str:
    """``Via`` as CloudFront writes it: one stable 32-hex id per edge server."""
    digest = hashlib.md5(f"{distribution.id}/{distribution.pop}".encode()).hexdigest()
    return f"1.1 {digest}.cloudfront.net (CloudFront)"


def parse_cookies(header: str) -> list[tuple[str, str]]:
    """Cookie header pairs in order; malformed pieces are skipped."""
    out = []
    for piece in header.split(";"):
        name, sep, value = piece.strip().partition("=")
        if sep and name:
            out.append((name, value))
    return out


def _host_value(origin: CustomOrigin) -> str:
    default = 443 if origin.scheme == "https" else 80
    return origin.host if origin.port == default else f"{origin.host}:{origin.port}"


def _select_query(query: str, selection: Selection) -> str:
    if not query or selection.mode == "none":
        return ""
    if selection.mode == "all":
        return query
    kept = [p for p in query.split("&") if p and selection.selects(p.partition("=")[0])]
    return "&".join(kept)


# What happens to a header on its way to the origin or back (Forwarding._fate).
_DROP, _KEEP, _XFF, _VARY = 0, 1, 2, 3
# Decisions remembered per header name; names beyond this many are decided
# afresh each time (a viewer inventing names cannot grow the memo).
_FATE_MEMO_LIMIT = 512
# Origin-bound header lists remembered (Forwarding._sent); emptied when full.
_SENT_MEMO_LIMIT = 1024


@dataclass(frozen=True, slots=True)
class Forwarding:
    """The forwarding rules of one behavior, resolved once at start-up."""

    headers: Selection
    cookies: Selection
    query_strings: Selection
    gzip: bool
    brotli: bool
    via: str
    # Per header name as the viewer spelled it: its fate on a cacheable request
    # and on one that is never cached (conditional headers differ).
    _fates: tuple[dict[str, int], dict[str, int]] = field(
        default_factory=lambda: ({}, {}), compare=False, repr=False
    )
    # Per origin response header name: dropped, kept, or Vary (filtered).
    _response_fates: dict[str, int] = field(default_factory=dict, compare=False, repr=False)
    # The headers sent for (viewer fields, client IP, id(origin), cacheable), with
    # the origin itself: a keep-alive viewer sends the same fields each time.
    # Holding the origin keeps its id from naming another object meanwhile.
    # The header lines are kept rendered too (None when they cannot be).
    _sent: dict[tuple[Any, ...], tuple[Origin, tuple[tuple[str, str], ...], bytes | None]] = field(
        default_factory=dict, compare=False, repr=False
    )

    @classmethod
    def for_behavior(cls, behavior: Behavior, distribution: Distribution) -> Forwarding:
        policy, extra = behavior.cache, behavior.origin_request
        return cls(
            headers=policy.headers.union(extra.headers),
            cookies=policy.cookies.union(extra.cookies),
            query_strings=policy.query_strings.union(extra.query_strings),
            gzip=policy.accept_encoding_gzip,
            brotli=policy.accept_encoding_brotli,
            via=via_value(distribution),
        )

    @property
    def forwards_cookies(self) -> bool:
        return self.cookies.mode != "none"

    def _fate(self, name: str, cacheable: bool) -> int:
        """Whether the viewer header ``name`` goes to the origin as it is."""
        lower = name.lower()
        selects = self.headers.selects
        if lower in _NEVER_FORWARDED or (cacheable and lower in _CACHE_OWNED):
            return _DROP
        if lower == "cookie" or (lower == "host" and not selects("host")):
            return _DROP  # the Cookie header is rebuilt from the selected cookies
        if lower == "x-forwarded-for":
            return _XFF
        if lower == "accept-encoding" and (self.gzip or self.brotli):
            return _DROP  # replaced by the normalized value
        if lower == "user-agent" and not selects("user-agent"):
            return _DROP
        return _KEEP if lower in _ALWAYS_FORWARDED or selects(lower) else _DROP

    def origin_request(
        self, request: Request, origin: Origin, request_id: str, *, cacheable: bool
    ) -> Request:
        """The request CloudFront sends to ``origin`` for a viewer ``request``,
        before the origin's custom headers (``with_origin_headers``)."""
        key = (request.headers.fields, request.client_ip, id(origin), cacheable)
        sent = self._sent.get(key)
        if sent is None:
            if len(self._sent) >= _SENT_MEMO_LIMIT:
                self._sent.clear()
            fields = self._origin_fields(request, origin, cacheable)
            sent = self._sent[key] = (origin, fields, _rendered(fields))
        query = request.query
        if query:
            query = _select_query(query, self.query_strings)
        block = sent[2]
        return Request(
            request.method,
            request.path,
            query,
            Headers((*sent[1], ("X-Amz-Cf-Id", request_id))),
            request.client_ip,
            request.client_port,
            request.http_version,
            request.body,
            None if block is None else b"%sX-Amz-Cf-Id: %s\r\n" % (block, request_id.encode()),
        )

    def _origin_fields(
        self, request: Request, origin: Origin, cacheable: bool
    ) -> tuple[tuple[str, str], ...]:
        """``origin_request``'s header fields but X-Amz-Cf-Id, in the order sent."""
        out: list[tuple[str, str]] = []
        if isinstance(origin, CustomOrigin) and not self.headers.selects("host"):
            out.append(("Host", _host_value(origin)))
        xff = None
        fates = self._fates[not cacheable]
        for field_ in request.headers.fields:
            fate = fates.get(field_[0])
            if fate is None:
                fate = self._fate(field_[0], cacheable)
                if len(fates) < _FATE_MEMO_LIMIT:
                    fates[field_[0]] = fate
            if fate == _KEEP:
                out.append(field_)
            elif fate == _XFF:
                xff = field_[1]
        if self.gzip or self.brotli:
            encoding = normalize_accept_encoding(
                request.headers.get("accept-encoding"), self.gzip, self.brotli
            )
            out.append(("Accept-Encoding", encoding or "identity"))
        if self.cookies.mode != "none":
            cookie = request.headers.get("cookie")
            if cookie:
                kept = [f"{n}={v}" for n, v in parse_cookies(cookie) if self.cookies.selects(n)]
                if kept:
                    out.append(("Cookie", "; ".join(kept)))
        if not self.headers.selects("user-agent"):
            out.append(("User-Agent", "Amazon CloudFront"))
        client_ip = request.client_ip
        out.append(("X-Forwarded-For", f"{xff}, {client_ip}" if xff else client_ip))
        out.append(("Via", self.via))
        return tuple(out)

    @staticmethod
    def with_origin_headers(request: Request, origin: Origin) -> Request:
        """``request`` with the origin's custom headers, added last: origin-request
        functions see them in ``request.origin``, not among the request headers
        (lambda-event-structure.md, "customHeaders")."""
        if not origin.headers:
            return request
        headers = request.headers
        for name, value in origin.headers:
            headers = headers.set(name, value)
        return request.replace(headers=headers)

    def viewer_headers(self, origin_headers: Headers) -> Headers:
        """Origin response headers as CloudFront passes them to the viewer (and caches them)."""
        fates = self._response_fates
        out = []
        changed = False
        for field_ in origin_headers.fields:
            fate = fates.get(field_[0])
            if fate is None:
                fate = self._response_fate(field_[0])
                if len(fates) < _FATE_MEMO_LIMIT:
                    fates[field_[0]] = fate
            if fate == _KEEP:
                out.append(field_)
            elif fate == _VARY:
                kept = self._vary(field_[1])
                changed = changed or kept != field_[1]
                if kept:
                    out.append((field_[0], kept))
            else:
                changed = True
        # Usually nothing is dropped: the same Headers then, and its index, built once.
        return Headers(out) if changed else origin_headers

    def _response_fate(self, name: str) -> int:
        """Whether the origin response header ``name`` reaches the viewer as it is."""
        lower = name.lower()
        if lower in _RESPONSE_DROPPED or (lower == "set-cookie" and not self.forwards_cookies):
            return _DROP
        return _VARY if lower == "vary" else _KEEP

    def _vary(self, value: str) -> str:
        """``Vary`` keeps only what the edge can vary on: Accept-Encoding, Cookie,
        User-Agent and forwarded headers (RequestAndResponseBehaviorCustomOrigin.md)."""
        kept = []
        for token in value.split(","):
            name = token.strip()
            lower = name.lower()
            if lower in _VARY_ALWAYS or lower == "*" or self.headers.selects(lower):
                kept.append(name)
        return ", ".join(kept)
