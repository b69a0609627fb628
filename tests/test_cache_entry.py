"""Cached entries and 304 header merging (edgesim.cache.entry)."""

from __future__ import annotations

from edgesim.cache import Entry, merge_304_headers
from edgesim.models import Headers, Response
from tests.cache_support import entry


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


def _is_the_entry(response: Response, e: Entry) -> bool:
    return (response.status, response.headers, response.body, response.reason, response.head) == (
        e.status,
        e.headers,
        e.body,
        e.reason,
        e.head,
    )


def test_the_entry_as_a_response_agrees_with_it_however_it_was_made() -> None:
    e = entry(headers=[("ETag", '"v1"'), ("Cache-Control", "max-age=10")])
    assert _is_the_entry(e.response, e)
    assert (
        _is_the_entry(Entry.create("/x", 404, "Nope", Headers(), b"", 0.0, 10.0).response, e)
        is False
    )
    revalidated = e.refreshed(100.0, 50.0, Headers([("ETag", '"v2"')]))
    assert _is_the_entry(revalidated.response, revalidated)
    assert revalidated.response.head is not None and b'"v2"' in revalidated.response.head
    kept = e.refreshed(30.0, 10.0)  # nothing of the object changed: the same value
    assert kept.response is e.response
