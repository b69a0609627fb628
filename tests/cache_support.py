"""Small builders shared by the cache tests."""

from __future__ import annotations

from edgesim.cache import Entry
from edgesim.config.schema import Behavior, CachePolicy, Selection
from edgesim.models import Headers, Request


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
