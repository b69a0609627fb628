"""The byte-budgeted store and invalidation (edgesim.cache.store)."""

from __future__ import annotations

import re

import pytest

from edgesim.cache import CacheStore, cache_key, key_target, validate_invalidation_path
from edgesim.config.schema import Selection
from tests.cache_support import allow, behavior, entry, request

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
