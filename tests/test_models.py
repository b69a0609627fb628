"""Wire values: Headers lookups and the replace helpers of Request and Response."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from edgesim.models import Headers, Request, Response, slot_init


def test_request_replace_carries_every_field() -> None:
    original = Request("GET", "/a", "x=1", Headers([("Host", "h")]), "10.0.0.1", 5, "1.1", b"b")
    for field in dataclasses.fields(Request):
        marker = object()
        changed = original.replace(**{field.name: marker})
        for other in dataclasses.fields(Request):
            expected = marker if other is field else getattr(original, other.name)
            assert getattr(changed, other.name) is expected, (field.name, other.name)


def test_response_replace_drops_a_stale_prerendered_head() -> None:
    response = Response(200, Headers([("A", "1")]), b"x", "OK", b"HTTP/1.1 200 OK\r\nA: 1\r\n")
    assert response.replace(body=b"y").head == response.head
    assert response.replace(headers=Headers([("A", "2")])).head is None
    assert response.replace(status=404).head is None


def test_headers_keep_case_order_and_repeats() -> None:
    headers = Headers([("Set-Cookie", "a=1"), ("X-A", "1"), ("set-cookie", "b=2")])
    assert headers.get("set-cookie") == "a=1"
    assert headers.get_all("set-cookie") == ["a=1", "b=2"]
    assert "x-a" in headers and "x-b" not in headers
    assert headers.set("x-a", "2").fields == (
        ("Set-Cookie", "a=1"),
        ("X-A", "2"),
        ("set-cookie", "b=2"),
    )
    assert headers.without("set-cookie").fields == (("X-A", "1"),)


def test_equal_headers_share_one_index_and_each_looks_up_its_own() -> None:
    fields = [("Content-Type", "text/plain"), ("ETag", '"1"')]
    first, again = Headers(fields), Headers(list(fields))
    assert first.get("etag") == again.get("etag") == '"1"'
    assert first._index is again._index  # built once for equal fields
    other = Headers([("Content-Type", "text/html"), ("etag", '"2"')])
    assert other.get("content-type") == "text/html" and other.get("etag") == '"2"'
    assert first.get("content-type") == "text/plain"  # untouched by the other's lookups


def test_headers_that_never_repeat_cannot_grow_the_shared_indexes() -> None:
    from edgesim import models

    for n in range(3 * models._INDEXES_LIMIT):
        assert Headers([("X-Id", str(n))]).get("x-id") == str(n)
    assert len(models._INDEXES) <= models._INDEXES_LIMIT


def test_request_replace_drops_a_prerendered_head_with_its_headers() -> None:
    request = Request("GET", "/a", "", Headers([("Host", "h")]), head=b"Host: h\r\n")
    assert request.replace(path="/b").head == b"Host: h\r\n"
    assert request.replace(headers=Headers([("Host", "other")])).head is None
    assert request == request.replace(head=None)  # a rendering, not part of the value


def test_slot_init_sets_every_field_keeps_defaults_and_stays_frozen() -> None:
    @slot_init
    @dataclasses.dataclass(frozen=True, slots=True)
    class Point:
        x: int
        y: int = 7
        label: str = dataclasses.field(default="p", compare=False)

    assert Point(1) == Point(1, 7, "other")
    assert (Point(1).x, Point(1).y, Point(1).label) == (1, 7, "p")
    assert Point(y=2, x=3, label="q") == Point(3, 2)
    assert Point(3, 2, label="q").label == "q"
    assert list(inspect.signature(Point).parameters) == ["x", "y", "label"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        Point(1).x = 2  # type: ignore[misc]
    with pytest.raises(TypeError):
        Point()  # type: ignore[call-arg]


def test_slot_init_refuses_what_it_would_get_wrong() -> None:
    with pytest.raises(TypeError, match="only plain fields"):

        @slot_init
        @dataclasses.dataclass(frozen=True, slots=True)
        class Tags:
            names: list[str] = dataclasses.field(default_factory=list)

    with pytest.raises(TypeError, match="__post_init__"):

        @slot_init
        @dataclasses.dataclass(frozen=True, slots=True)
        class Checked:
            x: int

            def __post_init__(self) -> None:
                pass
