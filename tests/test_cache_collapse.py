"""Request collapsing (edgesim.cache.collapse)."""

from __future__ import annotations

import asyncio

import pytest

from edgesim.cache import CacheStore, Collapser, collapses_requests
from edgesim.config.schema import (
    MANAGED_CACHE_POLICIES,
    Behavior,
    OriginRequestPolicy,
    Selection,
)
from tests.cache_support import allow, behavior, entry


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
