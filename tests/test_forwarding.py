"""What the origin's response headers become for the viewer (edgesim.forwarding).

The edge-level tests (tests/test_edge.py) show the same rules through a real
origin; these pin the filter itself, including when it hands back its input.
"""

from __future__ import annotations

from edgesim.config.schema import Distribution, Selection
from edgesim.forwarding import Forwarding
from edgesim.models import Headers
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
