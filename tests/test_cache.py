"""Cache key, TTL rules, entries, the byte-budgeted store and collapsing (edgesim.cache)."""

from __future__ import annotations

import asyncio
import re
from email.utils import formatdate

import pytest

from edgesim.cache import (
    CacheStore,
    Collapser,
    Entry,
    cache_key,
    collapses_requests,
    key_target,
    merge_304_headers,
    normalize_accept_encoding,
    parse_cache_control,
    select_cookies,
    select_query,
    ttl_for,
    validate_invalidation_path,
)
from edgesim.config.schema import (
    MANAGED_CACHE_POLICIES,
    Behavior,
    CachePolicy,
    OriginRequestPolicy,
    Selection,
)
from edgesim.models import Headers, Request

NOW = 1_700_000_000.0  # wall clock for Expires


def request(
    path: str = "/a.jpg",
    query: str = "",
    headers: list[tuple[str, str]] | None = None,
    method: str = "GET",
) -> Request:
    return Request(method, path, query, Headers(headers or []))


def behavior(**policy: object) -> Behavior:
    return Behavior("*", "origin", cache=CachePolicy(**policy))  # type: ignore[arg-type]


def allow(*names: str) -> Selection:
    return Selection("allow", frozenset(names))


def except_(*names: str) -> Selection:
    return Selection("except", frozenset(names))


# -- cache key ---------------------------------------------------------------


def test_default_key_is_the_path_only() -> None:
    b = behavior()
    assert cache_key(b, request("/a.jpg")) == "/a.jpg"
    assert cache_key(b, request("/a.jpg", "v=1", [("Cookie", "s=1"), ("X-A", "1")])) == "/a.jpg"
    assert cache_key(b, request("/b.jpg")) != cache_key(b, request("/a.jpg"))


def test_path_is_case_sensitive() -> None:
    b = behavior()
    assert cache_key(b, request("/A.jpg")) != cache_key(b, request("/a.jpg"))


def test_get_and_head_share_a_key_options_does_not() -> None:
    for b in (behavior(), behavior(query_strings=Selection("all"))):
        get = cache_key(b, request(method="GET"))
        assert cache_key(b, request(method="HEAD")) == get
        options = cache_key(b, request(method="OPTIONS"))
        assert options != get
        assert key_target(options) == "/a.jpg"


def test_query_none_ignores_the_query_string() -> None:
    b = behavior(query_strings=Selection("none"))
    assert cache_key(b, request(query="a=1")) == cache_key(b, request(query="a=2"))


def test_query_all_keeps_order_and_case() -> None:
    b = behavior(query_strings=Selection("all"))
    key = cache_key(b, request(query="a=1&b=2"))
    assert cache_key(b, request(query="a=1&b=2")) == key
    # QueryStringParameters.html: parameter order and case make different objects.
    assert cache_key(b, request(query="b=2&a=1")) != key
    assert cache_key(b, request(query="A=1&b=2")) != key
    assert cache_key(b, request(query="a=1&b=X")) != key
    assert cache_key(b, request(query="")) == cache_key(b, request())
    assert cache_key(b, request(query="a=1&&b=2&")) == key


def test_query_allow_list() -> None:
    b = behavior(query_strings=allow("color", "size"))
    key = cache_key(b, request(query="color=red&size=l"))
    assert cache_key(b, request(query="color=red&utm=x&size=l")) == key
    assert cache_key(b, request(query="size=l&color=red")) != key
    assert cache_key(b, request(query="color=blue&size=l")) != key
    assert cache_key(b, request(query="utm=x")) == cache_key(b, request())


def test_query_all_except() -> None:
    b = behavior(query_strings=except_("utm"))
    key = cache_key(b, request(query="a=1"))
    assert cache_key(b, request(query="a=1&utm=z")) == key
    assert cache_key(b, request(query="a=2&utm=z")) != key


def test_select_query() -> None:
    assert select_query(allow("b", "a"), "a=1&c=3&b=2&a=4") == "a=1&b=2&a=4"
    assert select_query(except_("c"), "a=1&c=3&b") == "a=1&b"
    assert select_query(Selection("all"), "x=1") == "x=1"
    assert select_query(Selection("none"), "x=1") == ""


def test_headers_allow_list_uses_full_value_by_lowercase_name() -> None:
    b = behavior(headers=allow("x-device", "accept-language"))
    key = cache_key(b, request(headers=[("X-Device", "mobile")]))
    assert cache_key(b, request(headers=[("x-device", "mobile")])) == key
    assert cache_key(b, request(headers=[("X-DEVICE", "mobile"), ("X-Other", "1")])) == key
    assert cache_key(b, request(headers=[("X-Device", "Mobile")])) != key
    assert cache_key(b, request(headers=[("X-Device", "mobile; v=2")])) != key
    assert cache_key(b, request()) != key
    both = [("X-Device", "mobile"), ("Accept-Language", "en")]
    assert cache_key(b, request(headers=both)) == cache_key(b, request(headers=both[::-1]))


def test_cookies_all_are_sorted_by_name_and_case_sensitive() -> None:
    b = behavior(cookies=Selection("all"))
    key = cache_key(b, request(headers=[("Cookie", "a=1; b=2")]))
    # Cookies.html: CloudFront sorts cookies by name, so order does not matter...
    assert cache_key(b, request(headers=[("Cookie", "b=2; a=1")])) == key
    assert cache_key(b, request(headers=[("Cookie", "b=2"), ("Cookie", "a=1")])) == key
    # ... but names and values are case-sensitive.
    assert cache_key(b, request(headers=[("Cookie", "A=1; b=2")])) != key
    assert cache_key(b, request(headers=[("Cookie", "a=1; b=X")])) != key
    assert cache_key(b, request()) == "/a.jpg"


def test_cookies_allow_and_except() -> None:
    only = behavior(cookies=allow("session"))
    key = cache_key(only, request(headers=[("Cookie", "session=1; tracking=9")]))
    assert cache_key(only, request(headers=[("Cookie", "session=1")])) == key
    assert cache_key(only, request(headers=[("Cookie", "session=2")])) != key
    assert cache_key(only, request(headers=[("Cookie", "Session=1")])) == "/a.jpg"
    but = behavior(cookies=except_("tracking"))
    key = cache_key(but, request(headers=[("Cookie", "session=1; tracking=9")]))
    assert cache_key(but, request(headers=[("Cookie", "tracking=3; session=1")])) == key
    assert cache_key(but, request(headers=[("Cookie", "session=1; theme=dark")])) != key


def test_select_cookies() -> None:
    headers = Headers([("Cookie", "b=2; a=1;  c=3;"), ("Cookie", "a=0")])
    assert select_cookies(except_("c"), headers) == [("a", "1"), ("a", "0"), ("b", "2")]
    assert select_cookies(Selection("none"), headers) == []


@pytest.mark.parametrize(
    ("value", "gzip", "brotli", "expected"),
    [
        # The table in controlling-the-cache-key.html, "Cache compressed objects".
        ("gzip, deflate, br", True, True, "br,gzip"),
        ("gzip, deflate, br", True, False, "gzip"),
        ("gzip, deflate, br", False, True, "br"),
        ("gzip", True, True, "gzip"),
        ("gzip", True, False, "gzip"),
        ("gzip", False, True, None),
        ("br", True, False, None),
        ("deflate", True, True, None),
        ("identity", True, True, None),
        (None, True, True, None),
        ("", True, True, None),
        ("gzip, br", False, False, None),
        # Tolerant parsing.
        ("GZIP;q=0.8 , BR", True, True, "br,gzip"),
        ("br;q=1.0, gzip;q=0.5, zstd", True, True, "br,gzip"),
        ("gzip;q=0, br", True, True, "br"),
        ("gzip; q=0.000", True, False, None),
        ("x-gzip, brotli", True, True, None),
    ],
)
def test_normalize_accept_encoding(
    value: str | None, gzip: bool, brotli: bool, expected: str | None
) -> None:
    assert normalize_accept_encoding(value, gzip, brotli) == expected
    # The memo gives the same answer the second time.
    assert normalize_accept_encoding(value, gzip, brotli) == expected


def test_accept_encoding_in_key_is_normalized() -> None:
    b = behavior(accept_encoding_gzip=True, accept_encoding_brotli=True)
    both = cache_key(b, request(headers=[("Accept-Encoding", "gzip, deflate, br")]))
    assert cache_key(b, request(headers=[("Accept-Encoding", "br,gzip")])) == both
    gzip_only = cache_key(b, request(headers=[("Accept-Encoding", "gzip")]))
    assert gzip_only != both
    plain = cache_key(b, request())
    assert plain == "/a.jpg"
    assert cache_key(b, request(headers=[("Accept-Encoding", "deflate")])) == plain
    assert cache_key(b, request(headers=[("Accept-Encoding", "identity")])) == plain
    assert len({both, gzip_only, plain}) == 3


def test_accept_encoding_is_not_in_key_when_compression_caching_is_off() -> None:
    b = behavior()
    assert cache_key(b, request(headers=[("Accept-Encoding", "gzip, br")])) == "/a.jpg"


def test_listed_accept_encoding_header_does_not_bypass_normalization() -> None:
    b = behavior(headers=allow("accept-encoding"), accept_encoding_gzip=True)
    a = cache_key(b, request(headers=[("Accept-Encoding", "gzip, deflate")]))
    assert cache_key(b, request(headers=[("Accept-Encoding", "gzip")])) == a


def test_managed_caching_optimized_key() -> None:
    b = Behavior("*", "origin", cache=MANAGED_CACHE_POLICIES["CachingOptimized"])
    a = cache_key(b, request(query="x=1", headers=[("Accept-Encoding", "gzip, deflate, br")]))
    assert a == cache_key(b, request(headers=[("Accept-Encoding", "br, gzip")]))
    assert key_target(a) == "/a.jpg"


def test_key_is_unambiguous() -> None:
    everything = behavior(
        query_strings=Selection("all"), headers=allow("x-a", "x-b"), cookies=Selection("all")
    )
    pairs = [
        # A path that spells out a key suffix vs. a real query string.
        (request("/a\x00Qx=1"), request("/a", "x=1")),
        # One cookie whose value holds separators vs. two cookies.
        (request(headers=[("Cookie", "a=1\x02b\x033")]), request(headers=[("Cookie", "a=1; b=3")])),
        # One header whose value holds separators vs. two headers.
        (
            request(headers=[("X-A", "1\x02x-b\x032")]),
            request(headers=[("X-A", "1"), ("X-B", "2")]),
        ),
        # The escape character itself, and separators left raw in a path.
        (request("/a\x01@"), request("/a\x00")),
        (request("/a\x01B"), request("/a\x02")),
        # Empty vs. absent.
        (request(headers=[("X-A", "")]), request()),
        # A method in the path vs. a real OPTIONS request.
        (request("/a.jpg\x00MOPTIONS"), request(method="OPTIONS")),
    ]
    for one, other in pairs:
        assert cache_key(everything, one) != cache_key(everything, other)
    assert cache_key(behavior(), request("/a\x00b")) != cache_key(behavior(), request("/a"))


def test_key_target_recovers_path_and_selected_query() -> None:
    b = behavior(query_strings=allow("v"), cookies=Selection("all"), accept_encoding_gzip=True)
    r = request(
        "/x\x00y.js", "v=2&junk=1", [("Cookie", "s=1"), ("Accept-Encoding", "gzip")], "OPTIONS"
    )
    assert key_target(cache_key(b, r)) == "/x\x00y.js?v=2"
    for path in ("/plain", "/a\x02b", "/a\x01B", "/a\x00\x01\x02\x03"):
        assert key_target(cache_key(behavior(), request(path))) == path


def test_a_new_policy_object_gets_its_own_plan() -> None:
    # Plans are memoized per policy object; an equal-looking new policy must not reuse
    # a stale plan from another object.
    first = behavior()
    assert cache_key(first, request(query="a=1")) == "/a.jpg"
    second = behavior(query_strings=Selection("all"))
    assert cache_key(second, request(query="a=1")) != "/a.jpg"


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


# -- entries --------------------------------------------------------------------


def entry(
    key: str = "/a.jpg",
    body: bytes = b"hello",
    *,
    now: float = 0.0,
    ttl: float = 60.0,
    status: int = 200,
    headers: list[tuple[str, str]] | None = None,
    method: str = "GET",
) -> Entry:
    fields = headers if headers is not None else [("Content-Type", "text/plain")]
    return Entry.create(key, status, "", Headers(fields), body, now, ttl, method)


def test_entry_prerenders_stored_head() -> None:
    e = entry(
        headers=[
            ("Content-Type", "text/plain"),
            ("Connection", "close"),
            ("Transfer-Encoding", "chunked"),
            ("Age", "100"),
            ("Content-Length", "999"),
            ("ETag", '"v1"'),
            ("Last-Modified", "Tue, 14 Nov 2023 22:13:20 GMT"),
            ("Date", "Tue, 14 Nov 2023 22:13:20 GMT"),
        ]
    )
    assert e.head == (
        b"HTTP/1.1 200 OK\r\n"
        b"Content-Type: text/plain\r\n"
        b'ETag: "v1"\r\n'
        b"Last-Modified: Tue, 14 Nov 2023 22:13:20 GMT\r\n"
        b"Date: Tue, 14 Nov 2023 22:13:20 GMT\r\n"
        b"Content-Length: 5\r\n"
    )
    assert e.reason == "OK"
    assert e.etag == '"v1"'
    assert e.last_modified == "Tue, 14 Nov 2023 22:13:20 GMT"
    assert e.size > len(e.body) + len(e.head)
    assert not e.error_min
    assert e.serves("GET") and e.serves("HEAD") and not e.serves("OPTIONS")


def test_entry_keeps_given_reason_and_marks_errors() -> None:
    e = Entry.create("/x", 404, "Nope", Headers(), b"", 0.0, 10.0)
    assert e.head.startswith(b"HTTP/1.1 404 Nope\r\n")
    assert e.error_min


def test_bodiless_statuses_get_no_content_length() -> None:
    assert b"Content-Length" not in entry(status=204, body=b"").head
    assert b"Content-Length: 0" in entry(status=200, body=b"").head


def test_head_entry_keeps_origin_content_length_and_only_serves_head() -> None:
    e = entry(body=b"ignored", headers=[("Content-Length", "1234")], method="HEAD")
    assert e.body == b""
    assert e.head.endswith(b"Content-Length: 1234\r\n")
    assert e.serves("HEAD") and not e.serves("GET")
    options = entry(method="OPTIONS")
    assert options.serves("OPTIONS") and not options.serves("GET")


def test_age_and_freshness_follow_the_clock() -> None:
    e = entry(now=100.0, ttl=60.0)
    assert e.age(100.0) == 0
    assert e.age(159.9) == 59
    assert e.age(99.0) == 0
    assert e.is_fresh(159.9)
    assert not e.is_fresh(160.0)
    assert not entry(ttl=0.0).is_fresh(0.0)


def test_merge_304_headers() -> None:
    stored = Headers(
        [
            ("ETag", '"v1"'),
            ("Cache-Control", "max-age=10"),
            ("Link", "<a>"),
            ("Link", "<b>"),
            ("Content-Length", "5"),
            ("Content-Encoding", "gzip"),
            ("X-Kept", "yes"),
        ]
    )
    fresh = Headers(
        [
            ("etag", '"v2"'),
            ("Cache-Control", "max-age=99"),
            ("Link", "<c>"),
            ("Content-Length", "0"),
            ("Content-Encoding", "br"),
            ("Connection", "keep-alive"),
        ]
    )
    merged = merge_304_headers(stored, fresh)
    assert merged.get("etag") == '"v2"'
    assert merged.get_all("cache-control") == ["max-age=99"]
    assert merged.get_all("link") == ["<c>"]
    assert merged.get("content-length") == "5"
    assert merged.get("content-encoding") == "gzip"
    assert merged.get("x-kept") == "yes"
    assert "connection" not in merged
    assert merge_304_headers(stored, Headers()) is stored


def test_refreshed_after_304() -> None:
    e = entry(now=0.0, ttl=10.0, headers=[("ETag", '"v1"'), ("Cache-Control", "max-age=10")])
    fresh = Headers([("ETag", '"v2"'), ("Cache-Control", "max-age=50")])
    r = e.refreshed(100.0, 50.0, fresh)
    assert r.body is e.body
    assert r.stored_at == 100.0 and r.ttl == 50.0
    assert r.etag == '"v2"'
    assert b"max-age=50" in r.head and b"max-age=10" not in r.head
    assert b"Content-Length: 5" in r.head
    assert r.is_fresh(149.0) and not r.is_fresh(150.0)
    # Passing the already merged headers gives the same result.
    again = e.refreshed(100.0, 50.0, e.headers_after_304(fresh))
    assert {f for f in again.headers} == {f for f in r.headers}


def test_refreshed_without_headers_keeps_the_head() -> None:
    e = entry(now=0.0, ttl=1.0)
    r = e.refreshed(30.0, 10.0)
    assert r.head is e.head and r.headers is e.headers
    assert r.is_fresh(39.0) and not r.is_fresh(40.0)
    assert r.age(35.0) == 5


# -- store ----------------------------------------------------------------------


def test_get_returns_stale_entries_and_counts_nothing() -> None:
    store = CacheStore(10_000)
    store.put(entry(ttl=1.0))
    got = store.get("/a.jpg")
    assert got is not None and not got.is_fresh(5.0)
    assert store.get("/missing") is None
    assert store.stats()["hits"] == 0 and store.stats()["misses"] == 0
    store.record_hit()
    store.record_miss()
    store.record_miss()
    assert store.stats()["hits"] == 1 and store.stats()["misses"] == 2


def test_lru_eviction_by_byte_budget() -> None:
    a, b, c = entry("/a"), entry("/b"), entry("/c")
    assert a.size == b.size == c.size
    store = CacheStore(a.size * 2 + a.size // 2)
    store.put(a)
    store.put(b)
    assert store.get("/a") is a  # /a is now the most recently used
    store.put(c)
    assert "/b" not in store
    assert store.get("/a") is a and store.get("/c") is c
    stats = store.stats()
    assert stats == {
        "entries": 2,
        "bytes": a.size * 2,
        "max_bytes": store.max_size,
        "hits": 0,
        "misses": 0,
        "evictions": 1,
        "invalidated": 0,
    }
    assert len(store) == 2
    assert [e.key for e in store.entries()] == ["/a", "/c"]


def test_one_big_entry_evicts_several() -> None:
    small = [entry(f"/s{i}", b"x") for i in range(5)]
    store = CacheStore(sum(e.size for e in small))
    for e in small:
        store.put(e)
    big = entry("/big", b"x" * (small[0].size * 3))
    assert store.put(big)
    assert "/big" in store
    assert store.stats()["bytes"] <= store.max_size
    assert store.stats()["evictions"] >= 3


def test_replacing_an_entry_accounts_bytes_once() -> None:
    store = CacheStore(100_000)
    store.put(entry(body=b"x" * 100))
    store.put(entry(body=b"x" * 10))
    assert len(store) == 1
    assert store.stats()["bytes"] == entry(body=b"x" * 10).size


def test_oversized_entry_is_not_stored_and_drops_the_old_one() -> None:
    store = CacheStore(2_000)
    small = entry(body=b"x")
    assert store.put(small)
    assert not store.put(entry(body=b"x" * 5_000))
    assert "/a.jpg" not in store
    assert store.stats()["bytes"] == 0
    assert store.stats()["evictions"] == 0


def test_remove() -> None:
    store = CacheStore(10_000)
    store.put(entry())
    assert store.remove("/a.jpg")
    assert not store.remove("/a.jpg")
    assert store.stats()["bytes"] == 0


def test_entries_is_a_snapshot() -> None:
    store = CacheStore(100_000)
    for key in ("/1", "/2", "/3"):
        store.put(entry(key))
    for e in store.entries():
        store.remove(e.key)
    assert len(store) == 0


# -- invalidation ------------------------------------------------------------------


def filled_store() -> CacheStore:
    b = behavior(
        query_strings=Selection("all"),
        headers=allow("x-device"),
        cookies=Selection("all"),
        accept_encoding_gzip=True,
    )
    requests = [
        request("/images/a.jpg"),
        request("/images/a.jpg", headers=[("X-Device", "mobile")]),
        request("/images/a.jpg", headers=[("Cookie", "s=1"), ("Accept-Encoding", "gzip")]),
        request("/images/a.jpg", method="OPTIONS"),
        request("/images/a.jpg", "v=2"),
        request("/images/a.jpg2"),
        request("/images/sub/b.png"),
        request("/Images/a.jpg"),
        request("/index.html"),
    ]
    store = CacheStore(10_000_000)
    for r in requests:
        store.put(entry(cache_key(b, r)))
    assert len(store) == len(requests)
    return store


def remaining(store: CacheStore) -> list[str]:
    return sorted(key_target(e.key) for e in store.entries())


def test_invalidate_exact_path_removes_all_header_cookie_method_variants() -> None:
    store = filled_store()
    assert store.invalidate(["/images/a.jpg"]) == 4
    # Case-sensitive; query string variants need their own path or a "*".
    assert remaining(store) == [
        "/Images/a.jpg",
        "/images/a.jpg2",
        "/images/a.jpg?v=2",
        "/images/sub/b.png",
        "/index.html",
    ]
    assert store.stats()["invalidated"] == 4


def test_invalidate_with_query_string() -> None:
    store = filled_store()
    assert store.invalidate(["/images/a.jpg?v=2"]) == 1
    assert "/images/a.jpg?v=2" not in remaining(store)
    assert store.invalidate(["/images/a.jpg?v=3"]) == 0


def test_invalidate_trailing_star_is_a_prefix() -> None:
    store = filled_store()
    assert store.invalidate(["/images/a.jpg*"]) == 6
    assert remaining(store) == ["/Images/a.jpg", "/images/sub/b.png", "/index.html"]
    assert store.invalidate(["/images/*"]) == 1
    assert remaining(store) == ["/Images/a.jpg", "/index.html"]


def test_invalidate_everything() -> None:
    store = filled_store()
    assert store.invalidate(["/*"]) == 9
    assert len(store) == 0
    assert store.stats()["bytes"] == 0


def test_invalidate_counts_each_entry_once() -> None:
    store = filled_store()
    assert store.invalidate(["/images/*", "/images/a.jpg", "/images/sub/*"]) == 7


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("images/a.jpg", "begin with '/'"),
        ("", "begin with '/'"),
        ("/images/*.jpg", "last character"),
        ("/*/a", "last character"),
        ("/a b", "URL-encode"),
        ("/caf\u00e9", "URL-encode"),
        ("/a\nb", "URL-encode"),
        ("/" + "a" * 4000, "4000"),
    ],
)
def test_invalid_invalidation_paths(path: str, problem: str) -> None:
    message = validate_invalidation_path(path)
    assert message is not None and problem in message
    store = filled_store()
    with pytest.raises(ValueError, match=re.escape(problem)):
        store.invalidate(["/index.html", path])
    assert len(store) == 9  # nothing removed


@pytest.mark.parametrize("path", ["/a.jpg", "/*", "/images/*", "/a/b.jpg*", "/a%20b", "/x?y=1"])
def test_valid_invalidation_paths(path: str) -> None:
    assert validate_invalidation_path(path) is None


# -- request collapsing -------------------------------------------------------------


def test_collapsing_is_on_unless_caching_is_disabled_or_cookies_are_forwarded() -> None:
    assert collapses_requests(behavior())
    assert collapses_requests(behavior(query_strings=Selection("all")))
    assert not collapses_requests(
        Behavior("*", "o", cache=MANAGED_CACHE_POLICIES["CachingDisabled"])
    )
    assert not collapses_requests(behavior(cookies=allow("s")))
    forwarded = Behavior("*", "o", origin_request=OriginRequestPolicy(cookies=Selection("all")))
    assert not collapses_requests(forwarded)


async def test_one_leader_and_followers_released_by_finish() -> None:
    collapser = Collapser()
    store = CacheStore(1_000_000)
    origin_calls = 0
    origin_may_answer = asyncio.Event()
    joined = 0
    all_joined = asyncio.Event()
    viewers = 20

    async def viewer() -> tuple[str, bytes]:
        nonlocal origin_calls, joined
        waiter = collapser.join("/a.jpg")
        joined += 1
        if joined == viewers:
            all_joined.set()
        if waiter is None:
            try:
                origin_calls += 1
                await origin_may_answer.wait()
                store.put(entry(body=b"from origin"))
            finally:
                collapser.finish("/a.jpg")
            return "leader", b"from origin"
        await waiter
        got = store.get("/a.jpg")
        assert got is not None
        return "follower", got.body

    tasks = [asyncio.create_task(viewer()) for _ in range(viewers)]
    await asyncio.wait_for(all_joined.wait(), 5)
    assert len(collapser) == 1
    assert not any(t.done() for t in tasks)
    origin_may_answer.set()
    results = await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert origin_calls == 1
    assert sorted(role for role, _ in results) == ["follower"] * (viewers - 1) + ["leader"]
    assert {body for _, body in results} == {b"from origin"}
    assert collapser.collapsed == viewers - 1
    assert len(collapser) == 0
    # The key is free again: the next miss leads.
    assert collapser.join("/a.jpg") is None
    collapser.finish("/a.jpg")


async def test_finish_in_finally_releases_followers_when_the_leader_fails() -> None:
    collapser = Collapser()
    store = CacheStore(1_000_000)
    leader_started = asyncio.Event()
    fail_now = asyncio.Event()

    async def leader() -> None:
        assert collapser.join("/k") is None
        try:
            leader_started.set()
            await fail_now.wait()
            raise ConnectionError("origin went away")
        finally:
            collapser.finish("/k")

    async def follower() -> str:
        waiter = collapser.join("/k")
        assert waiter is not None
        await waiter
        # Nothing was stored: a follower goes to the origin itself.
        return "fetch myself" if store.get("/k") is None else "hit"

    lead = asyncio.create_task(leader())
    await asyncio.wait_for(leader_started.wait(), 5)
    followers = [asyncio.create_task(follower()) for _ in range(5)]
    await asyncio.sleep(0)
    fail_now.set()
    with pytest.raises(ConnectionError):
        await asyncio.wait_for(lead, 5)
    assert await asyncio.wait_for(asyncio.gather(*followers), 5) == ["fetch myself"] * 5
    assert len(collapser) == 0


async def test_cancelling_one_follower_does_not_disturb_the_others() -> None:
    collapser = Collapser()
    assert collapser.join("/k") is None
    first = collapser.join("/k")
    second = collapser.join("/k")
    assert first is not None and second is not None and first is not second

    async def wait(future: asyncio.Future[None]) -> str:
        await future
        return "released"

    cancelled = asyncio.create_task(wait(first))
    kept = asyncio.create_task(wait(second))
    await asyncio.sleep(0)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert not second.done()
    collapser.finish("/k")
    assert await asyncio.wait_for(kept, 5) == "released"


async def test_different_keys_are_not_collapsed() -> None:
    collapser = Collapser()
    assert collapser.join("/a") is None
    assert collapser.join("/b") is None
    assert len(collapser) == 2
    collapser.finish("/a")
    collapser.finish("/b")
    collapser.finish("/never-joined")  # harmless
    assert len(collapser) == 0
