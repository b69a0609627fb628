"""Cache-Control parsing and the TTL rules (edgesim.cache.ttl)."""

from __future__ import annotations

from email.utils import formatdate

import pytest

from edgesim.cache import parse_cache_control, ttl_for
from edgesim.config.schema import MANAGED_CACHE_POLICIES, CachePolicy
from edgesim.models import Headers

NOW = 1_700_000_000.0  # wall clock for Expires


# -- Cache-Control -------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, {}),
        ("", {}),
        ("max-age=60", {"max-age": "60"}),
        ("Max-Age=60, No-Cache", {"max-age": "60", "no-cache": None}),
        ('max-age="60"', {"max-age": "60"}),
        (
            'no-cache="Set-Cookie, X-Foo", private',
            {"no-cache": "Set-Cookie, X-Foo", "private": None},
        ),
        ("max-age=1, max-age=2", {"max-age": "1"}),
        ("s-maxage = 10 ,max-age=5", {"s-maxage": "10", "max-age": "5"}),
        (",, ;junk;, =5, public", {"public": None}),
        ('x="unterminated, max-age=4', {"x": "", "max-age": "4"}),
    ],
)
def test_parse_cache_control(value: str | None, expected: dict[str, str | None]) -> None:
    assert parse_cache_control(value) == expected


# -- TTL: successful responses (Expiration.md table) ---------------------------


def ttl(
    status: int = 200,
    headers: list[tuple[str, str]] | None = None,
    *,
    min_ttl: int = 0,
    default_ttl: int = 86_400,
    max_ttl: int = 31_536_000,
    error_min_ttl: int = 10,
) -> float | None:
    policy = CachePolicy(min_ttl, default_ttl, max_ttl)
    return ttl_for(policy, status, Headers(headers or []), NOW, error_min_ttl)


def cc(value: str) -> list[tuple[str, str]]:
    return [("Cache-Control", value)]


def expires_in(seconds: float) -> tuple[str, str]:
    return ("Expires", formatdate(NOW + seconds, usegmt=True))


def test_s_maxage_wins_over_max_age() -> None:
    assert ttl(headers=cc("max-age=100, s-maxage=50")) == 50
    assert ttl(headers=cc("s-maxage=500, max-age=100")) == 500


def test_max_age_is_clamped_to_min_and_max() -> None:
    assert ttl(headers=cc("max-age=300")) == 300
    assert ttl(headers=cc("max-age=5000"), max_ttl=1000) == 1000
    assert ttl(headers=cc("max-age=10"), min_ttl=60) == 60
    assert ttl(headers=cc("s-maxage=5000"), min_ttl=60, max_ttl=1000) == 1000


def test_max_age_zero_is_stored_but_always_stale() -> None:
    assert ttl(headers=cc("max-age=0")) == 0.0
    assert ttl(headers=cc("max-age=0"), min_ttl=30) == 30


def test_expires_only() -> None:
    assert ttl(headers=[expires_in(300)]) == pytest.approx(300)
    assert ttl(headers=[expires_in(10_000)], max_ttl=1000) == 1000
    assert ttl(headers=[expires_in(10)], min_ttl=60) == 60
    # In the past or invalid ("0"): already expired.
    assert ttl(headers=[expires_in(-300)]) == 0.0
    assert ttl(headers=[("Expires", "0")]) == 0.0
    assert ttl(headers=[("Expires", "0")], min_ttl=5) == 5


def test_max_age_wins_over_expires() -> None:
    assert ttl(headers=[*cc("max-age=30"), expires_in(3000)]) == 30


def test_no_directive_uses_default_or_minimum() -> None:
    assert ttl() == 86_400
    assert ttl(default_ttl=120) == 120
    assert ttl(min_ttl=10, default_ttl=120) == 120
    assert ttl(min_ttl=500, default_ttl=120, max_ttl=1000) == 500
    # Directives without a lifetime count as "no directive".
    assert ttl(headers=cc("public, must-revalidate"), default_ttl=7) == 7
    assert ttl(headers=cc("max-age=abc"), default_ttl=7) == 7


@pytest.mark.parametrize("directive", ["no-cache", "no-store", "private", "max-age=60, private"])
def test_no_cache_no_store_private(directive: str) -> None:
    assert ttl(headers=cc(directive)) is None
    assert ttl(headers=cc(directive), min_ttl=30) == 30


def test_qualified_no_cache_does_not_stop_caching() -> None:
    assert ttl(headers=cc('no-cache="Set-Cookie", max-age=60')) == 60
    assert ttl(headers=cc('private="X-User"'), default_ttl=9) == 9


def test_multiple_cache_control_fields_are_combined() -> None:
    assert ttl(headers=[("Cache-Control", "public"), ("Cache-Control", "max-age=42")]) == 42
    assert ttl(headers=[("Cache-Control", "max-age=42"), ("Cache-Control", "no-store")]) is None


def test_origin_age_is_not_subtracted() -> None:
    assert ttl(headers=[*cc("max-age=100"), ("Age", "60")]) == 100


def test_caching_disabled_stores_no_successful_response() -> None:
    policy = MANAGED_CACHE_POLICIES["CachingDisabled"]
    assert ttl_for(policy, 200, Headers(cc("max-age=600")), NOW, 10) is None
    assert ttl_for(policy, 200, Headers(), NOW, 10) is None


@pytest.mark.parametrize("status", [200, 203, 204, 300, 301, 302, 303])
def test_cacheable_success_statuses(status: int) -> None:
    assert ttl(status, default_ttl=99) == 99


@pytest.mark.parametrize("status", [100, 201, 202, 205, 206, 207, 304])
def test_uncached_success_statuses(status: int) -> None:
    assert ttl(status, cc("max-age=60")) is None


@pytest.mark.parametrize("status", [307, 308])
def test_307_and_308_need_cache_control(status: int) -> None:
    # http-3xx-status-codes.html
    assert ttl(status) is None
    assert ttl(status, [expires_in(60)]) is None
    assert ttl(status, cc("max-age=60")) == 60
    assert ttl(status, cc("public"), default_ttl=5) == 5


# -- TTL: errors (HTTPStatusCodes.html, custom-error-pages-expiration.html) ----


@pytest.mark.parametrize("status", [404, 410, 414, 500, 501, 502, 503, 504])
def test_errors_always_cached_for_error_min_ttl(status: int) -> None:
    assert ttl(status) == 10
    assert ttl(status, error_min_ttl=30) == 30
    assert ttl(status, cc("public")) == 10


@pytest.mark.parametrize("status", [404, 503])
def test_error_ttl_is_the_longer_of_header_and_error_min(status: int) -> None:
    assert ttl(status, cc("max-age=60")) == 60
    assert ttl(status, cc("s-maxage=60, max-age=1")) == 60
    assert ttl(status, cc("max-age=5")) == 10
    assert ttl(status, [expires_in(120)]) == pytest.approx(120)


def test_error_header_ttl_cannot_exceed_max_ttl() -> None:
    assert ttl(404, cc("max-age=100000"), max_ttl=1000) == 1000
    # ErrorCachingMinTTL itself is not capped by the maximum TTL.
    assert ttl(404, cc("max-age=100000"), max_ttl=5, error_min_ttl=10) == 10


@pytest.mark.parametrize("status", [404, 410, 414, 501])
@pytest.mark.parametrize("directive", ["no-store", "no-cache", "private", "max-age=60, no-store"])
def test_no_store_stops_caching_of_some_errors(status: int, directive: str) -> None:
    assert ttl(status, cc(directive)) is None


@pytest.mark.parametrize("status", [500, 502, 503, 504])
@pytest.mark.parametrize("directive", ["no-store", "no-cache", "private"])
def test_no_store_is_ignored_for_other_errors(status: int, directive: str) -> None:
    assert ttl(status, cc(directive)) == 10


@pytest.mark.parametrize("status", [400, 403, 405, 412, 415])
def test_some_errors_cached_only_with_max_age(status: int) -> None:
    assert ttl(status) is None
    assert ttl(status, [expires_in(600)]) is None
    assert ttl(status, cc("public")) is None
    assert ttl(status, cc("max-age=30")) == 30
    assert ttl(status, cc("s-maxage=3")) == 10
    assert ttl(status, cc("max-age=30, no-store")) == 30


def test_416_is_never_cached() -> None:
    assert ttl(416) is None
    assert ttl(416, cc("max-age=600")) is None


@pytest.mark.parametrize("status", [401, 402, 406, 409, 429, 505, 599])
def test_unlisted_errors_are_not_cached(status: int) -> None:
    assert ttl(status, cc("max-age=600")) is None


def test_error_min_ttl_zero_means_not_cached() -> None:
    assert ttl(503, error_min_ttl=0) is None
    assert ttl(503, cc("max-age=20"), error_min_ttl=0) == 20


def test_errors_are_cached_even_under_caching_disabled() -> None:
    policy = MANAGED_CACHE_POLICIES["CachingDisabled"]
    assert ttl_for(policy, 503, Headers(), NOW, 10) == 10
    assert ttl_for(policy, 503, Headers(cc("max-age=600")), NOW, 10) == 10


# -- describe_ttl: the rule that decided, in words ------------------------------

DESCRIBED = [
    (
        CachePolicy(0, 86_400, 31_536_000),
        200,
        [],
        "no max-age, s-maxage or Expires: the default TTL, 86400 s",
    ),
    (
        CachePolicy(600, 60, 3600),
        200,
        [],
        "no max-age, s-maxage or Expires: the minimum TTL, 600 s",
    ),
    (
        CachePolicy(0, 86_400, 100),
        200,
        [("Cache-Control", "max-age=500, s-maxage=50")],
        "s-maxage=50, within the policy's min 0 s, max 100 s",
    ),
    (
        CachePolicy(0, 86_400, 100),
        200,
        [("Expires", formatdate(NOW + 30, usegmt=True))],
        "Expires (30 s from now), within the policy's min 0 s, max 100 s",
    ),
    (
        CachePolicy(0, 60, 100),
        200,
        [("Cache-Control", "private")],
        "the origin's Cache-Control (private) with a minimum TTL of 0",
    ),
    (
        CachePolicy(5, 60, 100),
        200,
        [("Cache-Control", "no-store")],
        "the origin's Cache-Control (no-store) is overridden by the minimum TTL, 5 s",
    ),
    (
        MANAGED_CACHE_POLICIES["CachingDisabled"],
        200,
        [],
        "the cache policy's maximum TTL is 0: caching is disabled",
    ),
    (CachePolicy(), 206, [], "edgesim stores 200, 203, 204 and 3xx; not 206"),
    (CachePolicy(), 307, [], "a 307 is cached only when the origin sends Cache-Control"),
    (CachePolicy(), 307, [], "a 307 is cached only when the origin sends Cache-Control"),
    (CachePolicy(), 416, [], "CloudFront never caches a 416 from the origin"),
    (CachePolicy(), 403, [], "a 403 is cached only when the origin sends max-age or s-maxage"),
    (CachePolicy(), 404, [], "error caching: ErrorCachingMinTTL, 10 s (no header TTL)"),
    (
        CachePolicy(),
        404,
        [("Cache-Control", "no-store")],
        "the origin's Cache-Control (no-store) stops caching a 404",
    ),
    (
        CachePolicy(0, 60, 120),
        503,
        [("Cache-Control", "max-age=300")],
        "error caching: the longer of ErrorCachingMinTTL (10 s) and max-age=300,"
        " capped at max 120 s",
    ),
]


@pytest.mark.parametrize(("policy", "status", "fields", "sentence"), DESCRIBED)
def test_describe_ttl_names_the_rule_that_decided(
    policy: CachePolicy, status: int, fields: list[tuple[str, str]], sentence: str
) -> None:
    from edgesim.cache import describe_ttl

    assert describe_ttl(policy, status, Headers(fields), NOW, 10) == sentence


def test_describe_ttl_of_an_error_with_a_zero_minimum() -> None:
    from edgesim.cache import describe_ttl

    assert ttl_for(CachePolicy(), 500, Headers(), NOW, 0) is None
    assert describe_ttl(CachePolicy(), 500, Headers(), NOW, 0) == (
        "ErrorCachingMinTTL is 0 s and no header asks for longer"
    )
