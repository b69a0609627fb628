"""What a function changed, before and after (edgesim.diff)."""

from __future__ import annotations

from edgesim.diff import header_changes, request_changes, response_changes
from edgesim.models import Headers, Request, Response


def test_headers_added_removed_changed_and_repeated() -> None:
    before = Headers(
        [("Host", "a"), ("X-Gone", "1"), ("Accept", "*/*"), ("Via", "1"), ("Via", "2")]
    )
    after = Headers([("host", "a"), ("Accept", "text/html"), ("Via", "1"), ("X-New", "y")])
    assert header_changes(before, after) == [
        {"field": "header", "name": "Accept", "before": "*/*", "after": "text/html"},
        {"field": "header", "name": "Via", "before": "1, 2", "after": "1"},
        {"field": "header", "name": "X-New", "before": None, "after": "y"},
        {"field": "header", "name": "X-Gone", "before": "1", "after": None},
    ]
    same = Headers([("A", "1")])
    assert header_changes(same, same) == []
    assert header_changes(same, Headers([("a", "1")])) == []  # only the case differs


def test_request_changes_uri_query_and_body() -> None:
    before = Request("GET", "/old", "a=1", Headers([("Host", "h")]), body=b"data")
    assert request_changes(before, before) == []
    after = before.replace(path="/new", query="", body=b"replaced!")
    assert request_changes(before, after) == [
        {"field": "uri", "before": "/old", "after": "/new"},
        {"field": "querystring", "before": "a=1", "after": ""},
        {"field": "body", "before": None, "after": "replaced (9 bytes)"},
    ]


def test_response_changes_status_description_headers_and_body() -> None:
    before = Response(404, Headers([("Content-Type", "text/plain")]), b"missing", "Not Found")
    after = Response(200, Headers([("Content-Type", "text/html")]), b"<p>ok</p>", "OK")
    assert response_changes(before, after) == [
        {"field": "status", "before": 404, "after": 200},
        {"field": "statusDescription", "before": "Not Found", "after": "OK"},
        {"field": "header", "name": "Content-Type", "before": "text/plain", "after": "text/html"},
        {"field": "body", "before": None, "after": "replaced (9 bytes)"},
    ]
    kept = before.replace(headers=before.headers.add("X-A", "1"))
    assert response_changes(before, kept) == [
        {"field": "header", "name": "X-A", "before": None, "after": "1"}
    ]
