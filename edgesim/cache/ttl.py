"""Whether and how long the edge keeps an origin response: Cache-Control and TTL rules.

``ttl_for`` applies the cache policy's minimum, default and maximum TTL to
the origin's ``Cache-Control`` and ``Expires`` (Expiration.html) and
CloudFront's rules for which statuses are cached at all (HTTPStatusCodes.html,
custom-error-pages-expiration.html).
"""

from __future__ import annotations

import calendar
import re
from email.utils import parsedate_tz

from edgesim.config.schema import CachePolicy
from edgesim.models import Headers

__all__ = ["describe_ttl", "parse_cache_control", "ttl_for"]


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
    return _decide(policy, status, headers, now, error_min_ttl)[0]


# Which rule decided (``_decide``'s second value), for ``describe_ttl``.
(
    _NEVER_CACHED,  # a status CloudFront never caches
    _ERROR_WITHOUT_MAX_AGE,  # an error cached only with max-age/s-maxage, sent none
    _ERROR_NO_STORE,  # an error whose no-store/no-cache/private is respected
    _ERROR_MIN_ZERO,  # ErrorCachingMinTTL 0 and no longer header TTL
    _ERROR_MIN,  # ErrorCachingMinTTL, no header TTL
    _ERROR_LONGER,  # the longer of ErrorCachingMinTTL and the header's TTL
    _NOT_STORED,  # a success or redirect status edgesim does not store
    _NEEDS_CACHE_CONTROL,  # a 307/308 without Cache-Control
    _DISABLED,  # maximum TTL 0
    _FORBIDDEN,  # no-store/no-cache/private, respected or overridden by min TTL
    _NO_HEADER_TTL,  # the default TTL (or the minimum, if higher)
    _HEADER_TTL,  # s-maxage, max-age or Expires, clamped to min/max
) = range(12)


def _decide(
    policy: CachePolicy, status: int, headers: Headers, now: float, error_min_ttl: int
) -> tuple[float | None, int]:
    """``ttl_for``'s answer, and which rule gave it."""
    if 400 <= status < 600:
        return _error_ttl(policy, status, headers, now, error_min_ttl)
    if status in _CACHED_2XX or (300 <= status < 400 and status != 304):
        if status in _3XX_NEEDING_CACHE_CONTROL and "cache-control" not in headers:
            return None, _NEEDS_CACHE_CONTROL
        return _object_ttl(policy, headers, now)
    return None, _NOT_STORED


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


def _object_ttl(policy: CachePolicy, headers: Headers, now: float) -> tuple[float | None, int]:
    # A policy whose maximum TTL is 0 (the managed CachingDisabled) never
    # stores a successful response (using-managed-cache-policies.html).
    if policy.max_ttl <= 0:
        return None, _DISABLED
    cc = _cache_control(headers)
    # Expiration.html table: no-cache/no-store/private are respected when the
    # minimum TTL is 0 and overridden by it otherwise.
    if _forbids_storing(cc):
        return (float(policy.min_ttl) if policy.min_ttl > 0 else None), _FORBIDDEN
    header = _header_ttl(cc, headers, now)
    if header is None:
        # No directive: the default TTL, raised to the minimum if that is higher.
        return float(max(policy.min_ttl, policy.default_ttl)), _NO_HEADER_TTL
    return float(min(max(header, policy.min_ttl), policy.max_ttl)), _HEADER_TTL


def _error_ttl(
    policy: CachePolicy, status: int, headers: Headers, now: float, error_min_ttl: int
) -> tuple[float | None, int]:
    if status not in _ERRORS_ALWAYS and status not in _ERRORS_WITH_MAX_AGE:
        return None, _NEVER_CACHED
    cc = _cache_control(headers)
    if status in _ERRORS_WITH_MAX_AGE and not _names_max_age(cc):
        return None, _ERROR_WITHOUT_MAX_AGE
    if status in _ERRORS_RESPECTING_NO_STORE and _forbids_storing(cc):
        return None, _ERROR_NO_STORE
    # custom-error-pages-expiration.html: the longer of ErrorCachingMinTTL and
    # the header's TTL, where the header's value cannot exceed the maximum TTL.
    header = _header_ttl(cc, headers, now)
    if header is None:
        ttl, rule = float(error_min_ttl), _ERROR_MIN
    else:
        ttl, rule = max(float(error_min_ttl), min(header, float(policy.max_ttl))), _ERROR_LONGER
    # An ErrorCachingMinTTL of 0 without a longer header TTL means "don't
    # cache this error"; storing it stale would only add revalidations.
    return (ttl, rule) if ttl > 0 else (None, _ERROR_MIN_ZERO)


# --------------------------------------------------------------------------
# Why: the rule that decided, in words, for the inspector's cache decision
# --------------------------------------------------------------------------


def describe_ttl(
    policy: CachePolicy, status: int, headers: Headers, now: float, error_min_ttl: int
) -> str:
    """Which of ``ttl_for``'s rules decided for this response, in a sentence.

    Called only when someone looks at a trace, with ``ttl_for``'s arguments: the
    rules run once more and say which of them gave the answer.
    """
    _ttl, rule = _decide(policy, status, headers, now, error_min_ttl)
    if rule == _NEVER_CACHED:
        return f"CloudFront never caches a {status} from the origin"
    if rule == _ERROR_WITHOUT_MAX_AGE:
        return f"a {status} is cached only when the origin sends max-age or s-maxage"
    if rule == _ERROR_NO_STORE:
        return f"the origin's Cache-Control ({_joined(headers)}) stops caching a {status}"
    if rule == _ERROR_MIN_ZERO:
        return f"ErrorCachingMinTTL is {error_min_ttl} s and no header asks for longer"
    if rule == _ERROR_MIN:
        return f"error caching: ErrorCachingMinTTL, {error_min_ttl} s (no header TTL)"
    cc = _cache_control(headers)
    if rule == _ERROR_LONGER:
        return (
            f"error caching: the longer of ErrorCachingMinTTL ({error_min_ttl} s) and "
            f"{_source(cc, headers, now)}, capped at max {policy.max_ttl} s"
        )
    if rule == _NOT_STORED:
        return f"edgesim stores {', '.join(map(str, sorted(_CACHED_2XX)))} and 3xx; not {status}"
    if rule == _NEEDS_CACHE_CONTROL:
        return f"a {status} is cached only when the origin sends Cache-Control"
    if rule == _DISABLED:
        return "the cache policy's maximum TTL is 0: caching is disabled"
    if rule == _FORBIDDEN:
        if policy.min_ttl > 0:
            return (
                f"the origin's Cache-Control ({_joined(headers)}) is overridden by "
                f"the minimum TTL, {policy.min_ttl} s"
            )
        return f"the origin's Cache-Control ({_joined(headers)}) with a minimum TTL of 0"
    if rule == _NO_HEADER_TTL:
        if policy.min_ttl > policy.default_ttl:
            return f"no max-age, s-maxage or Expires: the minimum TTL, {policy.min_ttl} s"
        return f"no max-age, s-maxage or Expires: the default TTL, {policy.default_ttl} s"
    span = f"min {policy.min_ttl} s, max {policy.max_ttl} s"
    return f"{_source(cc, headers, now)}, within the policy's {span}"


def _names_max_age(cc: dict[str, str | None]) -> bool:
    return _delta_seconds(cc.get("s-maxage")) is not None or (
        _delta_seconds(cc.get("max-age")) is not None
    )


def _joined(headers: Headers) -> str:
    return ", ".join(headers.get_all("cache-control"))


def _source(cc: dict[str, str | None], headers: Headers, now: float) -> str:
    """The header that gave the TTL, as ``_header_ttl`` picks it."""
    for name in ("s-maxage", "max-age"):
        seconds = _delta_seconds(cc.get(name))
        if seconds is not None:
            return f"{name}={seconds}"
    return f"Expires ({_header_ttl(cc, headers, now) or 0:.0f} s from now)"
