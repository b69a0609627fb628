"""The cache key, Accept-Encoding normalization, query and cookie selection (edgesim.cache.key)."""

from __future__ import annotations

import pytest

from edgesim.cache import (
    cache_key,
    key_target,
    normalize_accept_encoding,
    select_cookies,
    select_query,
)
from edgesim.config.schema import MANAGED_CACHE_POLICIES, Behavior, Selection
from edgesim.models import Headers
from tests.cache_support import allow, behavior, except_, request


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


def test_key_parts_tell_what_a_key_is_made_of() -> None:
    from edgesim.cache import key_parts
    from edgesim.config.schema import CachePolicy

    b = Behavior(
        "*",
        "app",
        cache=CachePolicy(
            query_strings=Selection("all"),
            headers=allow("accept-language"),
            cookies=allow("sid"),
            accept_encoding_gzip=True,
        ),
    )
    fields = [("Accept-Language", "en"), ("Cookie", "sid=1; other=2"), ("Accept-Encoding", "gzip")]
    key = cache_key(b, request("/a\x00b.jpg", "v=1", fields))
    assert key_parts(key) == [
        ("path", "/a\x00b.jpg"),
        ("query", "v=1"),
        ("headers", "accept-language=en"),
        ("cookies", "sid=1"),
        ("accept-encoding", "gzip"),
    ]
    assert key_parts(cache_key(behavior(), request("/p", method="OPTIONS"))) == [
        ("path", "/p"),
        ("method", "OPTIONS"),
    ]
