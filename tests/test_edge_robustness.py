"""Bad input and scale: what the edge does with broken viewers, broken origins and many viewers.

Each case checks the viewer gets a clear CloudFront status, nothing is cached
that should not be, and the edge keeps serving afterwards.
"""

from __future__ import annotations

import asyncio
import hashlib
import resource
from pathlib import Path

import httpx
from aiohttp import web

from edgesim.config.schema import ALL_METHODS, CachePolicy, DirectoryOrigin, Selection
from tests.conftest import EdgeFactory, RecordingOrigin, behavior, raw_request


async def test_viewer_disconnecting_mid_upload_loses_nothing_else(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient
) -> None:
    origin.reply("/upload", "stored")
    origin.reply("/ok", "fine", Cache_Control="max-age=60")
    edge = await make_edge(default=behavior(allowed_methods=ALL_METHODS))
    assert edge.address is not None
    _, writer = await asyncio.open_connection("127.0.0.1", edge.address.port)
    writer.write(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"a" * 10)
    await writer.drain()
    await asyncio.sleep(0.1)
    writer.close()
    await asyncio.sleep(0.1)
    assert (await client.get(f"{edge.url}/ok")).text == "fine"
    assert all(len(s.body) in (0, 100_000) for s in origin.seen if s.path_qs == "/upload")


async def test_large_upload_reaches_origin_byte_exact(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient
) -> None:
    payload = hashlib.sha256(b"seed").digest() * (20 * 1024 * 1024 // 32)

    async def digest(request: web.Request) -> web.StreamResponse:
        return web.Response(text=hashlib.sha256(origin.seen[-1].body).hexdigest())

    origin.route("/digest", digest)
    edge = await make_edge(default=behavior(allowed_methods=ALL_METHODS))

    async def chunks():  # type: ignore[no-untyped-def]
        for i in range(0, len(payload), 1 << 20):
            yield payload[i : i + (1 << 20)]

    fixed = await client.put(f"{edge.url}/digest", content=payload)
    streamed = await client.post(f"{edge.url}/digest", content=chunks())
    expected = hashlib.sha256(payload).hexdigest()
    assert fixed.text == expected
    assert streamed.text == expected


async def test_origin_sending_garbage_is_502_and_not_cached(
    make_edge: EdgeFactory, client: httpx.AsyncClient
) -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\nthis is not http\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(garbage, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        edge = await make_edge(port=port, connection_attempts=1)
        for _ in range(2):
            response = await client.get(f"{edge.url}/x")
            assert response.status_code == 502
            assert response.headers["x-cache"] == "Error from cloudfront"
        stats = (await client.get(f"{edge.admin_url}/stats")).json()
        assert stats["cache"]["entries"] == 0
    finally:
        server.close()
        await server.wait_closed()


async def test_hop_by_hop_and_set_cookie_from_origin(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient
) -> None:
    async def noisy(_: web.Request) -> web.StreamResponse:
        return web.Response(
            text="ok",
            headers={
                "Set-Cookie": "sid=abc; Path=/",
                "Keep-Alive": "timeout=5",
                "Upgrade": "h2c",
                "Trailer": "X-Checksum",
                "X-App": "kept",
                "Vary": "X-Internal, Accept-Encoding, X-Tenant",
            },
        )

    origin.route("/noisy", noisy)
    edge = await make_edge(
        behaviors=(
            behavior(
                "/cookies/*", cache=CachePolicy(cookies=Selection("allow", frozenset({"sid"})))
            ),
        )
    )
    origin.route("/cookies/noisy", noisy)
    plain = await client.get(f"{edge.url}/noisy")
    forwarded = await client.get(f"{edge.url}/cookies/noisy")
    assert plain.headers["x-app"] == "kept"
    for name in ("set-cookie", "keep-alive", "upgrade", "trailer"):
        assert name not in plain.headers
    assert forwarded.headers["set-cookie"] == "sid=abc; Path=/"
    # Vary keeps only what the edge varies on: here Accept-Encoding, not unforwarded headers.
    assert plain.headers["vary"] == "Accept-Encoding"


async def test_directory_origin_through_the_edge(
    tmp_path: Path, make_edge: EdgeFactory, client: httpx.AsyncClient
) -> None:
    site = tmp_path / "site"
    (site / "css").mkdir(parents=True)
    (site / "css" / "a.css").write_text("body{}")
    (tmp_path / "secret.txt").write_text("do not serve")
    edge = await make_edge(
        origins={"site": DirectoryOrigin("site", site)},
        default=behavior(origin="site"),
    )
    css = await client.get(f"{edge.url}/css/a.css")
    assert css.status_code == 200
    assert css.text == "body{}"
    assert css.headers["content-type"].startswith("text/css")
    assert css.headers["etag"] == f'"{hashlib.md5(b"body{}").hexdigest()}"'
    missing = await client.get(f"{edge.url}/css/none.css")
    assert missing.status_code == 403
    assert "<Code>AccessDenied</Code>" in missing.text
    assert edge.address is not None
    for attempt in (b"/../secret.txt", b"/%2e%2e/secret.txt", b"/css/..%2f..%2fsecret.txt"):
        out = await raw_request(
            edge.address.port,
            b"GET " + attempt + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        assert b"do not serve" not in out
        assert out.startswith((b"HTTP/1.1 403", b"HTTP/1.1 400"))


async def test_a_thousand_keep_alive_viewers(
    origin: RecordingOrigin, make_edge: EdgeFactory
) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 8192)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    viewers = min(1000, (want - 200) // 3)
    origin.reply("/shared", "x" * 100, Cache_Control="max-age=60")
    edge = await make_edge()
    assert edge.address is not None
    port = edge.address.port
    request = b"GET /shared HTTP/1.1\r\nHost: x\r\n\r\n"

    async def viewer() -> int:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        ok = 0
        for _ in range(3):
            writer.write(request)
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            ok += head.startswith(b"HTTP/1.1 200")
        writer.close()
        return ok

    results = await asyncio.gather(*(viewer() for _ in range(viewers)))
    assert sum(results) == viewers * 3
    assert origin.hits("/shared") == 1


async def test_idle_viewer_connections_are_closed(
    origin: RecordingOrigin, make_edge: EdgeFactory
) -> None:
    origin.reply("/x", "x")
    edge = await make_edge()
    edge.server.idle_timeout = 0.2
    assert edge.address is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", edge.address.port)
    writer.write(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    await reader.readexactly(1)
    # Nothing more is sent: the edge closes the idle connection by itself.
    assert await asyncio.wait_for(reader.read(), 10) == b""
    writer.close()


async def test_collapsed_viewers_survive_the_first_viewer_leaving(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient
) -> None:
    body = b"z" * (4 << 20)
    gate = asyncio.Event()

    async def slow_stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Length": str(len(body)), "Cache-Control": "max-age=60"}
        )
        await response.prepare(request)
        await response.write(body[: 1 << 20])
        await gate.wait()
        await response.write(body[1 << 20 :])
        return response

    origin.route("/stream", slow_stream)
    edge = await make_edge()
    assert edge.address is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", edge.address.port)
    writer.write(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    await reader.readuntil(b"\r\n\r\n")
    follower = asyncio.create_task(client.get(f"{edge.url}/stream"))
    await asyncio.sleep(0.2)
    writer.close()  # the first viewer leaves mid-body
    await asyncio.sleep(0.2)
    gate.set()
    response = await asyncio.wait_for(follower, 20)
    assert response.status_code == 200
    assert response.content == body
