"""Misses the edge sends to the origin at once, on a pooled connection.

With no function on the behavior and one HTTP origin, ``Pipeline.start``
sends a miss straight away and the server answers it when the origin does,
without a task. Whatever the origin's answer turns out to need (a retry on a
fresh connection, a timeout, a streamed body, a custom error page, collapsed
followers, a revalidation), the viewer must see exactly what the long way
gives. Each test first leaves one warm connection in the pool, so the
request under test goes the short way.
"""

from __future__ import annotations

import asyncio

import httpx
from aiohttp import web

from edgesim.config.schema import CustomErrorResponse, CustomOrigin
from edgesim.service import Edge
from tests.conftest import EdgeFactory, ManualClock, RecordingOrigin, behavior, raw_request


def _pooled(edge: Edge) -> int:
    origin = edge.config.origins["app"]
    assert isinstance(origin, CustomOrigin)
    return edge.server.origins.http.idle_count(origin)  # type: ignore[attr-defined]


async def _warm(edge: Edge, origin: RecordingOrigin, client: httpx.AsyncClient) -> None:
    origin.reply("/warm", "warm", Cache_Control="no-store")
    assert (await client.get(f"{edge.url}/warm")).text == "warm"
    assert _pooled(edge) == 1


async def test_a_miss_on_a_warm_connection_is_answered_like_any_miss(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient
) -> None:
    origin.reply("/a", "hello", Cache_Control="max-age=60")
    edge = await make_edge()
    await _warm(edge, origin, client)
    miss = await client.get(f"{edge.url}/a?x=1", headers={"X-Forwarded-For": "192.0.2.9"})
    hit = await client.get(f"{edge.url}/a?x=1")
    assert (miss.status_code, miss.text) == (200, "hello")
    assert miss.headers["x-cache"] == "Miss from cloudfront"
    assert len(miss.headers["x-amz-cf-id"]) == 56
    assert hit.headers["x-cache"] == "Hit from cloudfront"
    seen = origin.seen[-1]
    assert seen.path_qs == "/a"  # query strings are not forwarded by default
    assert seen.headers["x-forwarded-for"] == "192.0.2.9, 127.0.0.1"
    assert seen.headers["x-amz-cf-id"] == miss.headers["x-amz-cf-id"]
    assert _pooled(edge) == 1  # the same connection carried it
    stats = (await client.get(f"{edge.admin_url}/stats")).json()
    assert stats["cache"]["misses"] == 2 and stats["cache"]["hits"] == 1


async def test_a_pooled_connection_the_origin_drops_is_retried_on_a_fresh_one(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient
) -> None:
    dropped: list[int] = []

    async def drop_once(request: web.Request) -> web.StreamResponse:
        if not dropped:
            # Read the request and hang up without a byte of answer, as an origin
            # closing an idle keep-alive connection at that moment does.
            dropped.append(1)
            assert request.transport is not None
            request.transport.abort()
            await asyncio.sleep(1)
        return web.Response(text="fresh")

    origin.route("/next", drop_once)
    edge = await make_edge()
    await _warm(edge, origin, client)
    response = await client.get(f"{edge.url}/next")
    assert (response.status_code, response.text) == (200, "fresh")
    assert origin.hits("/next") == 2  # a GET is sent again on a new connection


async def test_a_silent_origin_times_out_after_its_attempts(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient
) -> None:
    async def hang(_: web.Request) -> web.StreamResponse:
        await asyncio.sleep(30)
        return web.Response(text="late")

    origin.route("/hang", hang)
    edge = await make_edge(read_timeout=0.2, connection_attempts=2)
    await _warm(edge, origin, client)
    response = await client.get(f"{edge.url}/hang")
    assert response.status_code == 504
    assert response.headers["x-cache"] == "Error from cloudfront"
    assert origin.hits("/hang") == 2  # CloudFront tries a GET again, up to the attempts
    origin.reply("/after", "still serving")
    assert (await client.get(f"{edge.url}/after")).text == "still serving"


async def test_a_body_that_does_not_come_with_the_head_streams_through(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient
) -> None:
    body = bytes(range(256)) * 8192  # 2 MB, in several writes
    gate = asyncio.Event()

    async def slow(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Length": str(len(body)), "Cache-Control": "max-age=60"}
        )
        await response.prepare(request)
        await response.write(body[:1000])
        await gate.wait()
        await response.write(body[1000:])
        return response

    origin.route("/slow", slow)
    edge = await make_edge()
    await _warm(edge, origin, client)
    pending = asyncio.create_task(client.get(f"{edge.url}/slow"))
    while origin.hits("/slow") == 0:
        await asyncio.sleep(0.01)
    gate.set()
    response = await pending
    assert response.content == body
    assert response.headers["x-cache"] == "Miss from cloudfront"
    assert (await client.get(f"{edge.url}/slow")).headers["x-cache"] == "Hit from cloudfront"


async def test_an_error_with_a_custom_error_page_gets_the_page(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient
) -> None:
    origin.reply("/gone", "origin's 404", status=404)
    origin.reply("/errors/404.html", "<p>our page</p>", Cache_Control="max-age=60")
    custom = CustomErrorResponse(404, "/errors/404.html", 404, 10)
    edge = await make_edge(settings={"custom_error_responses": {404: custom}})
    await _warm(edge, origin, client)
    response = await client.get(f"{edge.url}/gone")
    assert (response.status_code, response.text) == (404, "<p>our page</p>")
    assert response.headers["x-cache"] == "Error from cloudfront"


async def test_concurrent_misses_wait_for_the_one_sent(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient
) -> None:
    release = asyncio.Event()

    async def slow(_: web.Request) -> web.StreamResponse:
        await release.wait()
        return web.Response(text="once", headers={"Cache-Control": "max-age=60"})

    origin.route("/slow", slow)
    edge = await make_edge()
    await _warm(edge, origin, client)
    first = asyncio.create_task(client.get(f"{edge.url}/slow"))
    while origin.hits("/slow") == 0:
        await asyncio.sleep(0.01)
    followers = [asyncio.create_task(client.get(f"{edge.url}/slow")) for _ in range(5)]
    await asyncio.sleep(0.1)
    release.set()
    responses = await asyncio.gather(first, *followers)
    assert [r.text for r in responses] == ["once"] * 6
    assert origin.hits("/slow") == 1
    assert responses[0].headers["x-cache"] == "Miss from cloudfront"
    assert {r.headers["x-cache"] for r in responses[1:]} == {"Hit from cloudfront"}


async def test_a_viewer_that_leaves_during_the_fetch_leaves_nothing_stuck(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient
) -> None:
    release = asyncio.Event()

    async def slow(_: web.Request) -> web.StreamResponse:
        await release.wait()
        return web.Response(text="late", headers={"Cache-Control": "max-age=60"})

    origin.route("/slow", slow)
    edge = await make_edge()
    await _warm(edge, origin, client)
    assert edge.address is not None
    _reader, writer = await asyncio.open_connection("127.0.0.1", edge.address.port)
    writer.write(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    while origin.hits("/slow") == 0:
        await asyncio.sleep(0.01)
    writer.close()  # gone before the origin answers
    await asyncio.sleep(0.1)
    release.set()
    await asyncio.sleep(0.1)
    # The key is not left collapsed on a fetch nobody finishes: the next viewer
    # gets the object (stored or fetched again), and the edge keeps serving.
    response = await asyncio.wait_for(client.get(f"{edge.url}/slow"), 10)
    assert (response.status_code, response.text) == (200, "late")
    assert len(edge.server.pipeline.collapser) == 0


async def test_pipelined_requests_behind_a_miss_are_answered_in_order(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient
) -> None:
    async def slow(_: web.Request) -> web.StreamResponse:
        await asyncio.sleep(0.05)
        return web.Response(text="first")

    origin.route("/a", slow)
    origin.reply("/b", "second")
    origin.reply("/c", "third")
    edge = await make_edge()
    await _warm(edge, origin, client)
    assert edge.address is not None
    data = (
        b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    out = await raw_request(edge.address.port, data)
    assert out.count(b"HTTP/1.1 200 OK") == 3
    assert out.index(b"first") < out.index(b"second") < out.index(b"third")


async def test_an_expired_object_is_revalidated_on_a_warm_connection(
    origin: RecordingOrigin,
    make_edge: EdgeFactory,
    client: httpx.AsyncClient,
    clock: ManualClock,
) -> None:
    async def etagged(request: web.Request) -> web.StreamResponse:
        headers = {"Cache-Control": "max-age=10", "ETag": '"v1"'}
        if request.headers.get("If-None-Match") == '"v1"':
            return web.Response(status=304, headers=headers)
        return web.Response(text="object", headers=headers)

    origin.route("/o", etagged)
    edge = await make_edge(default=behavior(ttl=(0, 86400, 31536000)))
    await _warm(edge, origin, client)
    assert (await client.get(f"{edge.url}/o")).headers["x-cache"] == "Miss from cloudfront"
    clock.advance(11)
    refreshed = await client.get(f"{edge.url}/o")
    assert (refreshed.status_code, refreshed.text) == (200, "object")
    assert refreshed.headers["x-cache"] == "RefreshHit from cloudfront"
    assert origin.seen[-1].headers["if-none-match"] == '"v1"'
