"""What CloudFront sends to the origin, and what it passes back to the viewer.

Source: CloudFront Developer Guide, "Request and response behavior for custom
origins" (RequestAndResponseBehaviorCustomOrigin.md) and "Controlling the
cache key" / "Origin request policies". Everything selected by the cache
policy or the origin request policy is forwarded; other viewer headers,
cookies and query strings are not.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from edgesim.cache import normalize_accept_encoding
from edgesim.config.schema import Behavior, CustomOrigin, Distribution, Origin, Selection
from edgesim.models import Headers, Request
from edgesim.wire import HOP_BY_HOP

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


@dataclass(frozen=True, slots=True)
class Forwarding:
    """The forwarding rules of one behavior, resolved once at start-up."""

    headers: Selection
    cookies: Selection
    query_strings: Selection
    gzip: bool
    brotli: bool
    via: str

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

    def origin_request(
        self, request: Request, origin: Origin, request_id: str, *, cacheable: bool
    ) -> Request:
        """The request CloudFront sends to ``origin`` for a viewer ``request``,
        before the origin's custom headers (``with_origin_headers``)."""
        out: list[tuple[str, str]] = []
        xff = None
        drop = _NEVER_FORWARDED | _CACHE_OWNED if cacheable else _NEVER_FORWARDED
        compression = self.gzip or self.brotli
        selects = self.headers.selects
        for name, value in request.headers:
            lower = name.lower()
            if lower in drop or lower == "cookie" or (lower == "host" and not selects("host")):
                continue
            if lower == "x-forwarded-for":
                xff = value
                continue
            if lower == "accept-encoding" and compression:
                continue
            if lower == "user-agent" and not selects("user-agent"):
                continue
            if lower in _ALWAYS_FORWARDED or selects(lower):
                out.append((name, value))
        if compression:
            encoding = normalize_accept_encoding(
                request.headers.get("accept-encoding"), self.gzip, self.brotli
            )
            out.append(("Accept-Encoding", encoding or "identity"))
        cookie = request.headers.get("cookie")
        if cookie and self.cookies.mode != "none":
            kept = [f"{n}={v}" for n, v in parse_cookies(cookie) if self.cookies.selects(n)]
            if kept:
                out.append(("Cookie", "; ".join(kept)))
        if isinstance(origin, CustomOrigin) and not selects("host"):
            out.insert(0, ("Host", _host_value(origin)))
        if not selects("user-agent"):
            out.append(("User-Agent", "Amazon CloudFront"))
        out.append(("X-Forwarded-For", f"{xff}, {request.client_ip}" if xff else request.client_ip))
        out.append(("Via", self.via))
        out.append(("X-Amz-Cf-Id", request_id))
        return request.replace(
            headers=Headers(out), query=_select_query(request.query, self.query_strings)
        )

    @staticmethod
    def with_origin_headers(request: Request, origin: Origin) -> Request:
        """``request`` with the origin's custom headers, added last: origin-request
        functions see them in ``request.origin``, not among the request headers
        (lambda-event-structure.md, "customHeaders")."""
        headers = request.headers
        for name, value in origin.headers:
            headers = headers.set(name, value)
        return request.replace(headers=headers)

    def viewer_headers(self, origin_headers: Headers) -> Headers:
        """Origin response headers as CloudFront passes them to the viewer (and caches them)."""
        keep_cookies = self.forwards_cookies
        out = []
        for name, value in origin_headers:
            lower = name.lower()
            if lower in _RESPONSE_DROPPED or (lower == "set-cookie" and not keep_cookies):
                continue
            if lower == "vary":
                kept = self._vary(value)
                if kept:
                    out.append((name, kept))
                continue
            out.append((name, value))
        return Headers(out)

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
