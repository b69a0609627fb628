"""CloudFront's cache: the cache key, TTL rules, a byte-budgeted store, collapsing.

Four pieces, used by the pipeline in this order on every cacheable request:

    cache_key(behavior, request)      what identifies the object (runs on every request)
    CacheStore.get(key)               the stored Entry, fresh or stale (every request)
    Collapser.join(key) / finish      concurrent misses for one key wait for one fetch
    ttl_for(policy, status, ...)      whether and how long an origin response is kept

Each rule names the CloudFront Developer Guide page it comes from; choices
where AWS documents nothing are marked as edgesim's.
"""

from __future__ import annotations

import asyncio
import calendar
import dataclasses
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from email.utils import parsedate_tz
from operator import itemgetter

from edgesim.config.schema import Behavior, CachePolicy, Selection
from edgesim.models import Headers, Request
from edgesim.wire import HOP_BY_HOP, reason_phrase, render_head

__all__ = [
    "CacheStore",
    "Collapser",
    "Entry",
    "cache_key",
    "collapses_requests",
    "key_target",
    "merge_304_headers",
    "normalize_accept_encoding",
    "parse_cache_control",
    "select_cookies",
    "select_query",
    "ttl_for",
    "validate_invalidation_path",
]


# --------------------------------------------------------------------------
# Cache-Control
# --------------------------------------------------------------------------

# One directive: a token name, optionally "=" and a token or a quoted string.
# Anything that does not fit is skipped up to the next comma (junk-tolerant).
_DIRECTIVE = re.compile(r'\s*([^\s,=";]*)\s*(?:=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,;"]*)))?[^,]*,?')


def parse_cache_control(value: str | None) -> dict[str, str | None]:
    """Directives of a ``Cache-Control`` value, by lowercase name.

    A directive without an argument maps to None; quoted arguments are
    unquoted. When a directive repeats, the first occurrence wins (RFC 9111
    section 4.2.1). Junk between commas is ignored.
    """
    directives: dict[str, str | None] = {}
    if not value:
        return directives
    for match in _DIRECTIVE.finditer(value):
        name = match.group(1).lower()
        if not name or name in directives:
            continue
        quoted, token = match.group(2), match.group(3)
        if quoted is not None:
            directives[name] = re.sub(r"\\(.)", r"\1", quoted)
        else:
            directives[name] = token
    return directives


def _delta_seconds(value: str | None) -> int | None:
    """A non-negative integer argument (max-age, s-maxage), or None if absent or junk."""
    if value is None or not value.isdigit() or not value.isascii():
        return None
    # RFC 9111 section 1.2.2: values too large to represent mean 2**31.
    return min(int(value), 2**31)


def _forbids_storing(cc: dict[str, str | None]) -> bool:
    # Expiration.html: no-cache, no-store and private all stop CloudFront (min
    # TTL 0). The qualified forms no-cache="Set-Cookie" and private="field"
    # only concern the named fields (RFC 9111 5.2.2.4/5.2.2.7; Cookies.html uses
    # no-cache="Set-Cookie" to stop caching cookies, not the object).
    return (
        "no-store" in cc
        or ("no-cache" in cc and not cc["no-cache"])
        or ("private" in cc and not cc["private"])
    )


def _http_date(value: str) -> float | None:
    parsed = parsedate_tz(value)
    if parsed is None:
        return None
    return float(calendar.timegm(parsed[:6]) - (parsed[9] or 0))


# --------------------------------------------------------------------------
# TTL rules
# --------------------------------------------------------------------------

# Error statuses, from "How CloudFront processes HTTP 4xx and 5xx status codes
# from your origin" (HTTPStatusCodes.html, 2023 revision) and "Control how long
# CloudFront caches errors" (custom-error-pages-expiration.html):
#  - always cached, for ErrorCachingMinTTL or longer:
_ERRORS_ALWAYS = frozenset({404, 410, 414, 500, 501, 502, 503, 504})
#  - cached only when the origin sends max-age or s-maxage:
_ERRORS_WITH_MAX_AGE = frozenset({400, 403, 405, 412, 415})
#  - no-store/no-cache/private stop caching only for these; other codes ignore them:
_ERRORS_RESPECTING_NO_STORE = frozenset({404, 410, 414, 501})
# 416 is never cached (custom-error-pages-expiration.html); like every status
# in no list above (401, 409, 429, ...) it falls through to "not cached".
#
# 410 is in the no-store list of the current page but in neither 2023 list;
# a rule about when 410 is *not* cached only makes sense if it is cached, so
# edgesim caches it like 404 (edgesim's reading).
#
# Successful statuses: AWS lists none. 3xx are cached "according to the
# settings in your distribution and the headers in the response", 307 and 308
# only when the origin sends Cache-Control (http-3xx-status-codes.html); 304
# only refreshes a stored object. For 2xx edgesim caches 200, 203 and 204 (the
# heuristically cacheable ones, RFC 9110 15.1) and not 206: CloudFront keeps
# ranges as parts of the whole object, and edgesim stores whole objects only.
_CACHED_2XX = frozenset({200, 203, 204})
_3XX_NEEDING_CACHE_CONTROL = frozenset({307, 308})


def ttl_for(
    policy: CachePolicy, status: int, headers: Headers, now: float, error_min_ttl: int
) -> float | None:
    """Seconds to keep an origin response, or None when it must not be cached.

    ``now`` is wall-clock epoch seconds, for ``Expires``; ``error_min_ttl`` is
    the ErrorCachingMinTTL for this status (10 s unless a custom error
    response says otherwise). 0.0 means "store, but revalidate on every use".
    The origin's ``Age`` is not subtracted: AWS documents TTLs only in terms
    of the directives and the policy's min/default/max (edgesim's reading).
    """
    if 400 <= status < 600:
        return _error_ttl(policy, status, headers, now, error_min_ttl)
    if status in _CACHED_2XX:
        return _object_ttl(policy, headers, now)
    if 300 <= status < 400 and status != 304:
        if status in _3XX_NEEDING_CACHE_CONTROL and "cache-control" not in headers:
            return None
        return _object_ttl(policy, headers, now)
    return None


def _cache_control(headers: Headers) -> dict[str, str | None]:
    values = headers.get_all("cache-control")
    return parse_cache_control(", ".join(values)) if values else {}


def _header_ttl(cc: dict[str, str | None], headers: Headers, now: float) -> float | None:
    # Expiration.html: s-maxage wins over max-age for CloudFront, and max-age
    # wins over Expires; CloudFront caches "until the date in the Expires
    # header", i.e. relative to now, not to the origin's Date.
    for name in ("s-maxage", "max-age"):
        seconds = _delta_seconds(cc.get(name))
        if seconds is not None:
            return float(seconds)
    expires = headers.get("expires")
    if expires is None:
        return None
    at = _http_date(expires)
    # RFC 9111 5.3: an invalid Expires (such as "0") means already expired.
    return 0.0 if at is None else max(0.0, at - now)


def _object_ttl(policy: CachePolicy, headers: Headers, now: float) -> float | None:
    # A policy whose maximum TTL is 0 (the managed CachingDisabled) never
    # stores a successful response (using-managed-cache-policies.html).
    if policy.max_ttl <= 0:
        return None
    cc = _cache_control(headers)
    # Expiration.html table: no-cache/no-store/private are respected when the
    # minimum TTL is 0 and overridden by it otherwise.
    if _forbids_storing(cc):
        return float(policy.min_ttl) if policy.min_ttl > 0 else None
    header = _header_ttl(cc, headers, now)
    if header is None:
        # No directive: the default TTL, raised to the minimum if that is higher.
        return float(max(policy.min_ttl, policy.default_ttl))
    return float(min(max(header, policy.min_ttl), policy.max_ttl))


def _error_ttl(
    policy: CachePolicy, status: int, headers: Headers, now: float, error_min_ttl: int
) -> float | None:
    if status not in _ERRORS_ALWAYS and status not in _ERRORS_WITH_MAX_AGE:
        return None
    cc = _cache_control(headers)
    if status in _ERRORS_WITH_MAX_AGE and (
        _delta_seconds(cc.get("s-maxage")) is None and _delta_seconds(cc.get("max-age")) is None
    ):
        return None
    if status in _ERRORS_RESPECTING_NO_STORE and _forbids_storing(cc):
        return None
    # custom-error-pages-expiration.html: the longer of ErrorCachingMinTTL and
    # the header's TTL, where the header's value cannot exceed the maximum TTL.
    ttl = float(error_min_ttl)
    header = _header_ttl(cc, headers, now)
    if header is not None:
        ttl = max(ttl, min(header, float(policy.max_ttl)))
    # An ErrorCachingMinTTL of 0 without a longer header TTL means "don't
    # cache this error"; storing it stale would only add revalidations.
    return ttl if ttl > 0 else None


# --------------------------------------------------------------------------
# Accept-Encoding
# --------------------------------------------------------------------------

# Browsers send a handful of distinct values; memoize per flag combination.
_AE_MEMO: tuple[dict[str, str | None], ...] = ({}, {}, {}, {})
_AE_MEMO_LIMIT = 256


def normalize_accept_encoding(value: str | None, gzip: bool, brotli: bool) -> str | None:
    """The normalized ``Accept-Encoding`` for the cache key and the origin request.

    ``"br,gzip"``, ``"gzip"`` or ``"br"`` for the enabled formats the viewer
    accepts; None when it accepts none of them, meaning: not in the key, and
    the origin gets ``Accept-Encoding: identity`` (or nothing, if the viewer
    sent no header). Source: controlling-the-cache-key.html, "Cache
    compressed objects".
    """
    if not value or not (gzip or brotli):
        return None
    memo = _AE_MEMO[gzip * 2 + brotli]
    if value in memo:
        return memo[value]
    accepted: set[str] = set()
    for item in value.split(","):
        coding, _, params = item.partition(";")
        # A q-value of 0 means "not acceptable" (RFC 9110 12.5.3); AWS says
        # nothing about q-values, so this is edgesim's reading.
        if params and re.fullmatch(r"\s*q\s*=\s*0(\.0{0,3})?\s*", params, re.IGNORECASE):
            continue
        accepted.add(coding.strip().lower())
    has_br = brotli and "br" in accepted
    has_gzip = gzip and "gzip" in accepted
    result = "br,gzip" if has_br and has_gzip else "br" if has_br else "gzip" if has_gzip else None
    if len(memo) >= _AE_MEMO_LIMIT:
        memo.clear()
    memo[value] = result
    return result


# --------------------------------------------------------------------------
# Cache key
# --------------------------------------------------------------------------
#
# Layout: the escaped URI path, then for each non-empty part "\x00" + a tag
# letter + the part: Q (selected query string), H (headers), C (cookies),
# E (normalized Accept-Encoding), M (method, when not GET/HEAD). Inside H and C,
# items are joined with "\x02" and names from values with "\x03". Variable
# pieces are escaped ("\x01" + a letter) so they contain none of "\x00".."\x03"
# (the path only needs it when it holds "\x00" or "\x01"), so two different
# inputs never give the same key, and the key starts with the path. A GET for
# /a.jpg under a policy that selects nothing has the key "/a.jpg".

_ESCAPES = str.maketrans({"\x00": "\x01@", "\x01": "\x01A", "\x02": "\x01B", "\x03": "\x01C"})
_UNESCAPE = re.compile("\x01(.)", re.DOTALL)


def _esc(text: str) -> str:
    # Four memchr scans beat one isprintable() (a per-character table lookup).
    if "\x00" in text or "\x01" in text or "\x02" in text or "\x03" in text:
        return text.translate(_ESCAPES)
    return text


def _unesc(text: str) -> str:
    if "\x01" not in text:
        return text
    return _UNESCAPE.sub(lambda m: chr(ord(m.group(1)) - 0x40), text)


def select_query(selection: Selection, query: str) -> str:
    """The parameters of ``query`` that ``selection`` picks, in the viewer's order.

    Names and values are compared and kept as sent (case-sensitive, still
    percent-encoded). Order is not normalized: "The order of parameters
    matters in query strings", and ``?a=1&b=2`` and ``?b=2&a=1`` are two
    objects (QueryStringParameters.html, "Always list parameters in the same
    order"; AWS's own normalize-query-string example function sorts them in a
    viewer-request function for this reason).
    """
    mode = selection.mode
    if mode == "none" or not query:
        return ""
    if mode == "all" and "&&" not in query and query[0] != "&" and query[-1] != "&":
        return query
    names = selection.names
    kept: list[str] = []
    for param in query.split("&"):
        if not param:
            continue
        if mode != "all":
            name = param.partition("=")[0]
            if (name in names) != (mode == "allow"):
                continue
        kept.append(param)
    return "&".join(kept)


def select_cookies(selection: Selection, headers: Headers) -> list[tuple[str, str]]:
    """The cookies of the ``Cookie`` header(s) that ``selection`` picks, sorted by name.

    Names and values are case-sensitive; CloudFront "sorts the cookies in
    natural order by cookie name" (Cookies.html), so cookie order never makes
    a different object. Cookies with the same name keep their order.
    """
    mode = selection.mode
    if mode == "none":
        return []
    values = headers.get_all("cookie")
    if not values:
        return []
    names = selection.names
    allow = mode == "allow"
    picked: list[tuple[str, str]] = []
    for value in values:
        for pair in value.split(";"):
            name, _, cookie_value = pair.strip().partition("=")
            if (name or cookie_value) and (mode == "all" or (name in names) == allow):
                picked.append((name, cookie_value))
    if len(picked) > 1:
        picked.sort(key=itemgetter(0))
    return picked


class _KeyPlan:
    """What a cache policy puts in the key, precomputed once per policy."""

    __slots__ = (
        "brotli",
        "cookies",
        "gzip",
        "header_names",
        "header_test",
        "policy",
        "query",
        "simple",
    )

    def __init__(self, policy: CachePolicy) -> None:
        self.policy = policy
        self.query = policy.query_strings if policy.query_strings.mode != "none" else None
        self.cookies = policy.cookies if policy.cookies.mode != "none" else None
        self.gzip = policy.accept_encoding_gzip
        self.brotli = policy.accept_encoding_brotli
        # With compression caching on, the normalized Accept-Encoding stands in
        # for the viewer's, even if the header is also listed.
        normalized = {"accept-encoding"} if self.gzip or self.brotli else set()
        headers = policy.headers
        # The usual allow-list is looked up name by name; the legacy "all" and
        # an "except" list need a pass over the request's fields.
        self.header_names: tuple[str, ...] | None = None
        self.header_test: Callable[[str], bool] | None = None
        if headers.mode == "allow":
            self.header_names = tuple(sorted(headers.names - normalized)) or None
        elif headers.mode != "none":
            excluded = normalized
            self.header_test = lambda name: headers.selects(name) and name not in excluded
        self.simple = (
            self.query is None
            and self.cookies is None
            and self.header_names is None
            and self.header_test is None
            and not (self.gzip or self.brotli)
        )


_PLANS: dict[int, _KeyPlan] = {}


def _plan(policy: CachePolicy) -> _KeyPlan:
    # Keyed by id(): hashing a frozen dataclass rehashes every field. The plan
    # holds the policy, so no other live object can share its id while the
    # plan is in the dict.
    if len(_PLANS) >= 256:  # config reloads leave old policies behind
        _PLANS.clear()
    plan = _PLANS[id(policy)] = _KeyPlan(policy)
    return plan


def cache_key(behavior: Behavior, request: Request) -> str:
    """The key CloudFront files this request's object under.

    The URI path plus what the behavior's cache policy selects: query string
    parameters, allow-listed headers (full value, by lowercase name), cookies,
    and the normalized Accept-Encoding (controlling-the-cache-key.html). The
    protocol and host are not in it. GET and HEAD share a key. Any other
    method (only OPTIONS is ever cached, HTTPStatusCodes.html) gets its own:
    AWS does not say how OPTIONS responses are keyed, but a preflight answer
    must never serve a GET (edgesim's rule).
    """
    plan = _PLANS.get(id(behavior.cache)) or _plan(behavior.cache)
    path = request.path
    # Only "\x00" (ends the path) and "\x01" (the escape) would make a raw
    # path ambiguous: a path without them is its own encoding.
    key = path if "\x00" not in path and "\x01" not in path else path.translate(_ESCAPES)
    method = request.method
    if plan.simple:
        if method in {"GET", "HEAD"}:
            return key
        return key + "\x00M" + _esc(method)
    headers = request.headers
    if plan.query is not None:
        query = select_query(plan.query, request.query)
        if query:
            key += "\x00Q" + _esc(query)
    encoding = None
    if plan.gzip or plan.brotli:
        encoding = normalize_accept_encoding(headers.get("accept-encoding"), plan.gzip, plan.brotli)
    if plan.header_names is not None:
        items = [
            _esc(name) + "\x03" + _esc(",".join(headers.get_all(name)))
            for name in plan.header_names
            if name in headers
        ]
        if items:
            key += "\x00H" + "\x02".join(items)
    elif plan.header_test is not None:
        picked: dict[str, list[str]] = {}
        for name, value in headers:
            lower = name.lower()
            if plan.header_test(lower):
                picked.setdefault(lower, []).append(value)
        if picked:
            key += "\x00H" + "\x02".join(
                _esc(name) + "\x03" + _esc(",".join(picked[name])) for name in sorted(picked)
            )
    if plan.cookies is not None:
        cookies = select_cookies(plan.cookies, headers)
        if cookies:
            key += "\x00C" + "\x02".join(_esc(n) + "\x03" + _esc(v) for n, v in cookies)
    if encoding is not None:
        key += "\x00E" + encoding
    if method not in {"GET", "HEAD"}:
        key += "\x00M" + _esc(method)
    return key


def key_target(key: str) -> str:
    """The path and selected query string a key was made from (``/a.jpg?x=1``).

    What invalidation paths are matched against, and what the admin view shows.
    """
    if "\x00" not in key:
        return _unesc(key)
    path, *parts = key.split("\x00")
    target = _unesc(path)
    for part in parts:
        if part[:1] == "Q":
            return target + "?" + _unesc(part[1:])
    return target


def collapses_requests(behavior: Behavior) -> bool:
    """Whether concurrent misses under ``behavior`` wait for one origin fetch.

    Request collapsing is off with a policy that caches nothing (such as
    CachingDisabled) and when cookies are forwarded to the origin
    (RequestAndResponseBehaviorCustomOrigin.html, "Simultaneous requests for
    the same object"). Per object it is also off when the response turns out
    uncacheable; the ``Collapser`` handles that by letting followers fetch.
    """
    return (
        behavior.cache.max_ttl > 0
        and behavior.cache.cookies.mode == "none"
        and behavior.origin_request.cookies.mode == "none"
    )


# --------------------------------------------------------------------------
# Entries
# --------------------------------------------------------------------------

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
    error-caching rules. Build entries with ``Entry.create``.
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


# --------------------------------------------------------------------------
# Store
# --------------------------------------------------------------------------


def validate_invalidation_path(path: str) -> str | None:
    """Why ``path`` is not a valid invalidation path, or None if it is.

    Rules from Invalidation.html, "Invalidation paths": a leading "/" (the
    API requires it), at most 4,000 characters, "*" only as the last
    character, non-ASCII and unsafe characters URL-encoded.
    """
    if not path.startswith("/"):
        return "an invalidation path must begin with '/'"
    if len(path) > 4000:
        return "an invalidation path can have at most 4000 characters"
    if "*" in path[:-1]:
        return "'*' is allowed only as the last character of an invalidation path"
    if not path.isascii() or not path.isprintable() or " " in path:
        return "URL-encode non-ASCII and unsafe characters in an invalidation path"
    return None


class CacheStore:
    """The edge's object cache: byte-budgeted, least recently used evicted first.

    ``get`` returns entries fresh or stale (the pipeline decides between a
    hit and a revalidation) and does not count hits or misses: the pipeline
    calls ``record_hit`` / ``record_miss`` once it knows which it was.
    ``clock`` is the monotonic time source entries are stored and judged by;
    the pipeline reads it, so tests can drive TTLs.
    """

    def __init__(self, max_size: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_size = max_size
        self.clock = clock
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self.invalidated = 0

    def get(self, key: str) -> Entry | None:
        """The entry stored under ``key``, fresh or stale; marks it recently used."""
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def put(self, entry: Entry) -> bool:
        """Store ``entry``, replacing any under its key; evict LRU entries to fit.

        An entry larger than the whole budget is not stored (and an older
        entry under its key is dropped, as it is outdated); returns whether
        it was stored.
        """
        old = self._entries.pop(entry.key, None)
        if old is not None:
            self._bytes -= old.size
        if entry.size > self.max_size:
            return False
        self._entries[entry.key] = entry
        self._bytes += entry.size
        while self._bytes > self.max_size:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= evicted.size
            self.evictions += 1
        return True

    def remove(self, key: str) -> bool:
        """Drop the entry under ``key``; returns whether there was one."""
        entry = self._entries.pop(key, None)
        if entry is None:
            return False
        self._bytes -= entry.size
        return True

    def invalidate(self, paths: Iterable[str]) -> int:
        """Remove what CloudFront's invalidation of ``paths`` removes; returns how many.

        A path matches the URI path plus the query string in the key exactly,
        or as a prefix when it ends in "*"; "/*" empties the cache. Every
        header, cookie, encoding and method variant goes (Invalidation.html).
        Query strings are part of what is matched: with query strings in the
        key, ``/a.jpg`` leaves ``/a.jpg?v=2`` cached and ``/a.jpg*`` removes
        both (Invalidation.html, "Forwarding query strings"). Raises
        ValueError naming the first invalid path, before removing anything.
        """
        paths = list(paths)
        for path in paths:
            problem = validate_invalidation_path(path)
            if problem is not None:
                raise ValueError(f"{path!r}: {problem}")
        if "/*" in paths:
            removed = len(self._entries)
            self._entries.clear()
            self._bytes = 0
        else:
            exact = {p for p in paths if not p.endswith("*")}
            prefixes = tuple(p[:-1] for p in paths if p.endswith("*"))
            doomed = [
                key
                for key in self._entries
                if (target := key_target(key)) in exact or target.startswith(prefixes)
            ]
            for key in doomed:
                self.remove(key)
            removed = len(doomed)
        self.invalidated += removed
        return removed

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0

    def record_hit(self) -> None:
        """Count a request answered from the cache (Hit or RefreshHit)."""
        self.hits += 1

    def record_miss(self) -> None:
        """Count a cacheable request that had to go to the origin."""
        self.misses += 1

    def stats(self) -> dict[str, int]:
        """Counters for the admin API and the load-test report."""
        return {
            "entries": len(self._entries),
            "bytes": self._bytes,
            "max_bytes": self.max_size,
            "hits": self.hits,
            "misses": self.misses,
            "evictions": self.evictions,
            "invalidated": self.invalidated,
        }

    def entries(self) -> Iterator[Entry]:
        """A snapshot of the entries, least recently used first (for the admin view)."""
        return iter(list(self._entries.values()))

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries


# --------------------------------------------------------------------------
# Request collapsing
# --------------------------------------------------------------------------


class Collapser:
    """Concurrent misses for one key wait for the first one's origin fetch.

    CloudFront sends one request to the origin for simultaneous requests for
    the same object and answers all of them with its response
    (RequestAndResponseBehaviorCustomOrigin.html, "Simultaneous requests for
    the same object"). Usage, for each miss::

        waiter = collapser.join(key)
        if waiter is None:                      # leader
            try:
                ...fetch, maybe store...
            finally:
                collapser.finish(key)
        else:                                   # follower
            await waiter
            ...look the key up again; if nothing fresh is stored (the response
            was uncacheable or failed), fetch from the origin without joining...

    Each follower gets its own future, so cancelling one waiting viewer never
    disturbs the others.
    """

    def __init__(self) -> None:
        self._groups: dict[str, list[asyncio.Future[None]]] = {}
        self.collapsed = 0

    def join(self, key: str) -> asyncio.Future[None] | None:
        """None if the caller is now the leader for ``key``; else a future to await."""
        waiters = self._groups.get(key)
        if waiters is None:
            self._groups[key] = []
            return None
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters.append(future)
        self.collapsed += 1
        return future

    def finish(self, key: str) -> None:
        """The leader is done (stored, uncacheable or failed): release every follower."""
        for future in self._groups.pop(key, ()):
            if not future.done():
                future.set_result(None)

    def __len__(self) -> int:
        """Keys with an origin fetch in flight."""
        return len(self._groups)
