"""What goes to the origin and what comes back to the viewer (edgesim.forwarding).

The edge-level tests (tests/test_edge.py) show the same rules through a real
origin; these pin the rules themselves, including what they remember between
requests and when they hand back their input.
"""

from __future__ import annotations

from edgesim.config.schema import CustomOrigin, Distribution, Selection
from edgesim.forwarding import Forwarding
from edgesim.models import Headers, Request
from tests.cache_support import allow, behavior


def forwarding(**policy: object) -> Forwarding:
    return Forwarding.for_behavior(behavior(**policy), Distribution())


def test_headers_with_nothing_to_drop_come_back_as_given() -> None:
    origin = Headers([("Content-Type", "text/plain"), ("ETag", '"1"'), ("Vary", "Accept-Encoding")])
    assert forwarding().viewer_headers(origin) is origin


def test_hop_by_hop_and_the_edges_own_headers_are_dropped() -> None:
    origin = Headers(
        [
            ("Content-Type", "text/plain"),
            ("Connection", "keep-alive"),
            ("Keep-Alive", "timeout=5"),
            ("Transfer-Encoding", "chunked"),
            ("X-Cache", "Hit from somewhere"),
            ("Via", "1.1 origin-proxy"),
            ("Server", "app"),
        ]
    )
    viewer = forwarding().viewer_headers(origin)
    assert viewer.fields == (("Content-Type", "text/plain"), ("Server", "app"))
    assert "connection" not in viewer and "via" not in viewer


def test_set_cookie_reaches_the_viewer_only_when_cookies_are_forwarded() -> None:
    origin = Headers([("Set-Cookie", "s=1"), ("Content-Type", "text/plain")])
    assert "set-cookie" not in forwarding().viewer_headers(origin)
    kept = forwarding(cookies=Selection("all")).viewer_headers(origin)
    assert kept.get("set-cookie") == "s=1"


def test_vary_keeps_only_what_the_edge_varies_on() -> None:
    origin = Headers([("Vary", "Accept-Encoding, X-Device, Origin")])
    assert forwarding().viewer_headers(origin).fields == (("Vary", "Accept-Encoding"),)
    selected = forwarding(headers=allow("origin")).viewer_headers(origin)
    assert selected.fields == (("Vary", "Accept-Encoding, Origin"),)
    assert "vary" not in forwarding().viewer_headers(Headers([("Vary", "X-Device")]))


# -- the request to the origin: each input still decides, however often it repeats --


def viewer(headers: list[tuple[str, str]], client_ip: str = "203.0.113.9") -> Request:
    return Request("GET", "/a", "", Headers(headers), client_ip, 4242)


APP = CustomOrigin("app", "http", "app.internal", 8080)
OTHER = CustomOrigin("other", "http", "other.internal", 80)


def test_the_origin_request_repeats_for_repeated_viewer_headers_with_a_fresh_id() -> None:
    rules = forwarding(headers=allow("x-tenant"))
    fields = [("Host", "d.example"), ("X-Tenant", "t1"), ("Accept", "*/*")]
    first = rules.origin_request(viewer(fields), APP, "id-1", cacheable=True)
    again = rules.origin_request(viewer(list(fields)), APP, "id-2", cacheable=True)
    assert first.headers.fields == (
        ("Host", "app.internal:8080"),
        ("X-Tenant", "t1"),
        ("User-Agent", "Amazon CloudFront"),
        ("X-Forwarded-For", "203.0.113.9"),
        ("Via", rules.via),
        ("X-Amz-Cf-Id", "id-1"),
    )
    assert again.headers.fields == (*first.headers.fields[:-1], ("X-Amz-Cf-Id", "id-2"))


def test_each_input_of_the_origin_request_changes_it() -> None:
    rules = forwarding()
    fields = [("X-Forwarded-For", "198.51.100.1"), ("If-None-Match", '"v1"')]
    base = rules.origin_request(viewer(fields), APP, "id", cacheable=True).headers
    assert base.get("x-forwarded-for") == "198.51.100.1, 203.0.113.9"
    assert "if-none-match" not in base  # the cache revalidates on its own
    # Another client, another origin, a request never cached: asked right after.
    other_ip = rules.origin_request(viewer(fields, "192.0.2.7"), APP, "id", cacheable=True)
    assert other_ip.headers.get("x-forwarded-for") == "198.51.100.1, 192.0.2.7"
    other_origin = rules.origin_request(viewer(fields), OTHER, "id", cacheable=True)
    assert other_origin.headers.get("host") == "other.internal"
    uncached = rules.origin_request(viewer(fields), APP, "id", cacheable=False)
    assert uncached.headers.get("if-none-match") == '"v1"'
    assert rules.origin_request(viewer(fields), APP, "id", cacheable=True).headers == base


def test_an_origin_changed_for_one_request_is_not_taken_for_another() -> None:
    # A CloudFront Function's updateRequestOrigin makes a new origin per request;
    # one gone and another made may share an id(), never a remembered answer.
    rules = forwarding()
    hosts = set()
    for n in range(50):
        changed = CustomOrigin("app", "http", f"h{n}.internal", 80)
        hosts.add(
            rules.origin_request(viewer([]), changed, "id", cacheable=True).headers.get("host")
        )
        del changed
    assert hosts == {f"h{n}.internal" for n in range(50)}


def test_the_origin_request_comes_rendered_as_its_headers_are() -> None:
    from edgesim.wire import render_request_fields

    rules = forwarding(headers=allow("x-tenant", "content-length"))
    fields = [("X-Tenant", "caf\xe9"), ("Content-Length", "0")]
    sent = rules.origin_request(viewer(fields), APP, "id-1", cacheable=True)
    assert sent.head == render_request_fields(sent.headers.fields)[0]
    assert b"Content-Length" not in (sent.head or b"")  # the client frames the body
    assert b"X-Tenant: caf\xe9\r\n" in (sent.head or b"")  # latin-1, byte for byte


def test_a_header_that_cannot_go_on_the_wire_is_left_to_the_client_to_refuse() -> None:
    rules = forwarding(headers=allow("x-bad"))
    sent = rules.origin_request(
        viewer([("X-Bad", "a\r\nX-Smuggled: 1")]), APP, "id", cacheable=True
    )
    assert sent.head is None
