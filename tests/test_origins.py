"""Origin clients against real origins on loopback: aiohttp apps and raw asyncio servers.

Raw servers stand in for origins that misbehave in ways a framework would not
(garbage, early close, silence, interim responses).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path

import pytest
from aiohttp import web

from edgesim.config.schema import CustomOrigin, DirectoryOrigin
from edgesim.errors import (
    InvalidRequest,
    OriginConnectError,
    OriginDnsError,
    OriginInvalidResponse,
    OriginReadError,
    OriginTimeout,
)
from edgesim.models import Headers, Request, Response, read_body
from edgesim.origins.client import OriginClients, create_origin_client
from edgesim.origins.connection import READ_BUFFER, OriginBody
from edgesim.origins.directory import DirectoryOriginClient
from edgesim.origins.http import HttpOriginClient

RawHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def get(path: str, query: str = "", method: str = "GET", **kwargs: object) -> Request:
    headers = kwargs.pop("headers", Headers([("Host", "origin.test")]))
    return Request(method, path, query, headers, **kwargs)  # type: ignore[arg-type]


def custom(port: int, **options: object) -> CustomOrigin:
    return CustomOrigin("o", "http", "127.0.0.1", port, **options)  # type: ignore[arg-type]


class Chunks:
    """A request BodyStream from a list of chunks."""

    def __init__(self, chunks: list[bytes], length: int | None) -> None:
        self.length = length
        self._chunks = chunks

    async def _gen(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            await asyncio.sleep(0)
            yield chunk

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._gen()

    async def aclose(self) -> None:
        pass


@dataclass
class AppOrigin:
    port: int
    peers: set[object] = field(default_factory=set)

    @property
    def origin(self) -> CustomOrigin:
        return custom(self.port)


BIG = os.urandom(1 << 20) * 20  # 20 MiB
GZ = gzip.compress(b"compress me " * 1000)


@pytest.fixture
async def app_origin() -> AsyncIterator[AppOrigin]:
    state = AppOrigin(0)

    @web.middleware
    async def track(request: web.Request, handler: object) -> web.StreamResponse:
        state.peers.add(request.transport.get_extra_info("peername"))  # type: ignore[union-attr]
        return await handler(request)  # type: ignore[operator,no-any-return]

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text=f"hello {request.query.get('n', '')}", headers={"X-Mixed": "A"})

    async def echo(request: web.Request) -> web.Response:
        body = await request.read()
        framing = request.headers.get("Transfer-Encoding", "") or request.headers.get(
            "Content-Length", "none"
        )
        return web.Response(body=body, headers={"X-Framing": framing})

    async def chunked(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        for i in range(10):
            await resp.write(f"part{i};".encode())
        await resp.write_eof()
        return resp

    async def big(request: web.Request) -> web.Response:
        return web.Response(body=BIG)

    async def gz(request: web.Request) -> web.Response:
        return web.Response(body=GZ, headers={"Content-Encoding": "gzip"})

    async def etag(request: web.Request) -> web.Response:
        if request.headers.get("If-None-Match") == '"v1"':
            return web.Response(status=304, headers={"ETag": '"v1"'})
        return web.Response(text="fresh", headers={"ETag": '"v1"'})

    async def empty(request: web.Request) -> web.Response:
        return web.Response(status=204)

    async def close(request: web.Request) -> web.Response:
        return web.Response(text="bye", headers={"Connection": "close"})

    app = web.Application(middlewares=[track])
    for path, handler in {
        "/hello": hello,
        "/echo": echo,
        "/chunked": chunked,
        "/big": big,
        "/gz": gz,
        "/etag": etag,
        "/empty": empty,
        "/close": close,
    }.items():
        app.router.add_route("*", path, handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.port = int(runner.addresses[0][1])
    yield state
    await runner.cleanup()


@pytest.fixture
async def http() -> AsyncIterator[HttpOriginClient]:
    client = HttpOriginClient()
    yield client
    await client.close()


@contextlib.asynccontextmanager
async def raw_origin(handler: RawHandler) -> AsyncIterator[tuple[int, list[bytes]]]:
    """A raw TCP origin; yields its port and the list of requests' raw heads it read."""
    heads: list[bytes] = []
    tasks: set[asyncio.Task[None]] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def recording(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await serve(_Recorder(reader, heads), writer)  # type: ignore[arg-type]

    server = await asyncio.start_server(recording, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], heads
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


class _Recorder:
    """Wraps a StreamReader so ``read_head`` records what it read."""

    def __init__(self, reader: asyncio.StreamReader, heads: list[bytes]) -> None:
        self.reader = reader
        self.heads = heads

    async def read_head(self) -> bytes:
        head = await self.reader.readuntil(b"\r\n\r\n")
        self.heads.append(head)
        return head

    def __getattr__(self, name: str) -> object:
        return getattr(self.reader, name)


def answer(*responses: bytes, then_close: bool = True) -> RawHandler:
    """A raw handler: for each request head read, send the next canned bytes."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for data in responses:
            await reader.read_head()  # type: ignore[attr-defined]
            writer.write(data)
            await writer.drain()
        if not then_close:
            await asyncio.Event().wait()

    return handler


# -- HTTP origin: the happy paths --------------------------------------------


async def test_keepalive_reuses_one_connection(
    app_origin: AppOrigin, http: HttpOriginClient
) -> None:
    for n in range(5):
        response = await http.fetch(app_origin.origin, get("/hello", f"n={n}"))
        assert response.status == 200
        assert response.reason == "OK"
        assert await read_body(response.body) == f"hello {n}".encode()
    assert len(app_origin.peers) == 1
    assert http.idle_count(app_origin.origin) == 1


async def test_origin_headers_keep_case_and_order(
    app_origin: AppOrigin, http: HttpOriginClient
) -> None:
    response = await http.fetch(app_origin.origin, get("/hello"))
    names = [name for name, _ in response.headers]
    assert "X-Mixed" in names
    assert names.index("Content-Length") < names.index("Date")
    assert response.headers.get("x-mixed") == "A"
    assert await read_body(response.body) == b"hello "


async def test_request_head_is_exactly_what_the_pipeline_chose() -> None:
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    async with raw_origin(answer(reply)) as (port, heads):
        client = HttpOriginClient()
        # A forwarded Content-Length is dropped: framing is the client's to write.
        fields = [("Host", "example.com"), ("X-Case", "Keep"), ("x-dup", "1"), ("x-dup", "2")]
        headers = Headers([*fields, ("Content-Length", "999")])
        origin = custom(port, path="/v1")
        response = await client.fetch(origin, get("/a%20b/c", "x=1&y", headers=headers))
        assert await read_body(response.body) == b"ok"
        await client.close()
    assert heads == [
        b"GET /v1/a%20b/c?x=1&y HTTP/1.1\r\nHost: example.com\r\nX-Case: Keep\r\n"
        b"x-dup: 1\r\nx-dup: 2\r\n\r\n"
    ]


async def test_post_bytes_body_is_byte_exact(app_origin: AppOrigin, http: HttpOriginClient) -> None:
    payload = bytes(range(256)) * 1000
    response = await http.fetch(app_origin.origin, get("/echo", method="POST", body=payload))
    assert response.headers.get("x-framing") == str(len(payload))
    assert await read_body(response.body) == payload


@pytest.mark.parametrize("known_length", [True, False])
async def test_post_streamed_body(
    app_origin: AppOrigin, http: HttpOriginClient, known_length: bool
) -> None:
    chunks = [os.urandom(n) for n in (1, 70_000, 3, 200_000, 0, 17)]
    total = sum(map(len, chunks))
    body = Chunks(chunks, total if known_length else None)
    response = await http.fetch(app_origin.origin, get("/echo", method="PUT", body=body))
    assert response.headers.get("x-framing") == (str(total) if known_length else "chunked")
    assert await read_body(response.body) == b"".join(chunks)


async def test_chunked_response_streams_with_unknown_length(
    app_origin: AppOrigin, http: HttpOriginClient
) -> None:
    response = await http.fetch(app_origin.origin, get("/chunked"))
    assert response.headers.get("transfer-encoding") == "chunked"
    if not isinstance(response.body, bytes):  # bytes when every chunk came with the head
        assert response.body is not None and response.body.length is None
    assert await read_body(response.body) == b"".join(f"part{i};".encode() for i in range(10))
    # The connection went back to the pool once the last chunk arrived.
    await http.fetch(app_origin.origin, get("/hello"))
    assert len(app_origin.peers) == 1


async def test_large_body_streams_byte_exact(app_origin: AppOrigin, http: HttpOriginClient) -> None:
    response = await http.fetch(app_origin.origin, get("/big"))
    assert response.body is not None and not isinstance(response.body, bytes)
    assert response.body.length == len(BIG)
    digest = hashlib.sha256()
    largest = 0
    async for chunk in response.body:
        digest.update(chunk)
        largest = max(largest, len(chunk))
    assert digest.digest() == hashlib.sha256(BIG).digest()
    assert largest <= 4 * READ_BUFFER  # streamed, never gathered


async def test_gzip_passes_through_untouched(app_origin: AppOrigin, http: HttpOriginClient) -> None:
    response = await http.fetch(app_origin.origin, get("/gz"))
    assert response.headers.get("content-encoding") == "gzip"
    assert await read_body(response.body) == GZ


async def test_head_has_no_body_and_keeps_the_connection(
    app_origin: AppOrigin, http: HttpOriginClient
) -> None:
    response = await http.fetch(app_origin.origin, get("/big", method="HEAD"))
    assert response.status == 200
    assert response.headers.get("content-length") == str(len(BIG))
    assert response.body is None
    response = await http.fetch(app_origin.origin, get("/hello"))
    assert await read_body(response.body) == b"hello "
    assert len(app_origin.peers) == 1


@pytest.mark.parametrize(("path", "status"), [("/etag", 304), ("/empty", 204)])
async def test_bodiless_statuses(
    app_origin: AppOrigin, http: HttpOriginClient, path: str, status: int
) -> None:
    headers = Headers([("Host", "o"), ("If-None-Match", '"v1"')])
    response = await http.fetch(app_origin.origin, get(path, headers=headers))
    assert response.status == status
    assert response.body is None
    assert http.idle_count(app_origin.origin) == 1


async def test_connection_close_is_not_pooled(
    app_origin: AppOrigin, http: HttpOriginClient
) -> None:
    for _ in range(2):
        response = await http.fetch(app_origin.origin, get("/close"))
        assert await read_body(response.body) == b"bye"
    assert http.idle_count(app_origin.origin) == 0
    assert len(app_origin.peers) == 2


async def test_interim_100_continue_is_skipped() -> None:
    reply = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"
    async with raw_origin(answer(reply)) as (port, _):
        client = HttpOriginClient()
        response = await client.fetch(custom(port), get("/"))
        assert (response.status, await read_body(response.body)) == (201, b"ok")
        await client.close()


async def test_body_until_close() -> None:
    reply = b"HTTP/1.1 200 OK\r\n\r\nuntil the end"
    async with raw_origin(answer(reply)) as (port, _):
        client = HttpOriginClient()
        response = await client.fetch(custom(port), get("/"))
        assert response.body is not None and not isinstance(response.body, bytes)
        assert response.body.length is None
        assert await read_body(response.body) == b"until the end"
        assert client.idle_count(custom(port)) == 0
        await client.close()


async def test_concurrent_fetches(app_origin: AppOrigin, http: HttpOriginClient) -> None:
    async def one(n: int) -> bytes:
        response = await http.fetch(app_origin.origin, get("/hello", f"n={n}"))
        return await read_body(response.body)

    results = await asyncio.gather(*(one(n) for n in range(100)))
    assert results == [f"hello {n}".encode() for n in range(100)]
    assert len(app_origin.peers) <= 100
    # A second wave reuses the pooled connections instead of opening new ones.
    before = len(app_origin.peers)
    await asyncio.gather(*(one(n) for n in range(50)))
    assert len(app_origin.peers) == before


# -- HTTP origin: flow control -------------------------------------------------


async def test_slow_consumer_pauses_the_origin() -> None:
    size = 50 * 2**20
    block = os.urandom(2**16)
    sent = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal sent
        await reader.read_head()  # type: ignore[attr-defined]
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        for _ in range(size // len(block)):
            writer.write(block)
            await writer.drain()
            sent += len(block)

    async with raw_origin(handler) as (port, _):
        client = HttpOriginClient()
        response = await client.fetch(custom(port), get("/"))
        body = response.body
        assert isinstance(body, OriginBody)
        consumed = 0
        digest = hashlib.sha256()
        peak = 0
        async for chunk in body:
            consumed += len(chunk)
            digest.update(chunk)
            peak = max(peak, body.buffered)
            if consumed >= 2**20 and consumed - len(chunk) < 2**20:
                # Give an unthrottled origin every chance to push the whole body.
                await asyncio.sleep(0.5)
                assert body.buffered <= 4 * READ_BUFFER
                in_flight = sent - consumed
                assert in_flight < size // 2, f"origin was not held back: {in_flight} bytes ahead"
        assert consumed == size
        assert digest.digest() == hashlib.sha256(block * (size // len(block))).digest()
        assert peak <= 4 * READ_BUFFER
        await client.close()


@pytest.mark.parametrize("framing", ["content-length", "chunked", "until-close"])
async def test_origin_closing_while_consumer_lags_loses_nothing(framing: str) -> None:
    # The origin sends everything and closes while the consumer lags behind
    # flow control: whenever the close is noticed, no buffered byte is lost.
    blocks = [os.urandom(2**16) for _ in range(64)]  # 4 MiB

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read_head()  # type: ignore[attr-defined]
        head = {
            "content-length": b"Content-Length: %d\r\n" % (len(blocks) * 2**16),
            "chunked": b"Transfer-Encoding: chunked\r\n",
            "until-close": b"",
        }[framing]
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n" + head + b"\r\n")
        for block in blocks:
            writer.write(b"10000\r\n" + block + b"\r\n" if framing == "chunked" else block)
        if framing == "chunked":
            writer.write(b"0\r\n\r\n")
        await writer.drain()

    async with raw_origin(handler) as (port, _):
        client = HttpOriginClient()
        response = await client.fetch(custom(port), get("/"))
        assert response.body is not None and not isinstance(response.body, bytes)
        received = []
        async for chunk in response.body:
            if not received:
                await asyncio.sleep(0.3)  # the origin finishes and closes meanwhile
            received.append(chunk)
        assert b"".join(received) == b"".join(blocks)
        await client.close()


async def test_aclose_midway_drops_the_connection(
    app_origin: AppOrigin, http: HttpOriginClient
) -> None:
    response = await http.fetch(app_origin.origin, get("/big"))
    assert response.body is not None and not isinstance(response.body, bytes)
    async for _chunk in response.body:
        break
    await response.body.aclose()
    assert http.idle_count(app_origin.origin) == 0
    response = await http.fetch(app_origin.origin, get("/hello"))
    assert await read_body(response.body) == b"hello "
    assert len(app_origin.peers) == 2


async def test_idle_connections_expire() -> None:
    async with raw_origin(
        answer(*[b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"] * 2, then_close=False)
    ) as (port, _):
        client = HttpOriginClient(keepalive_timeout=0.1)
        response = await client.fetch(custom(port), get("/"))
        await read_body(response.body)
        assert client.idle_count(custom(port)) == 1
        await asyncio.sleep(0.4)
        assert client.idle_count(custom(port)) == 0
        await client.close()


# -- HTTP origin: failures ---------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        b"Content-Length: 1000\r\n\r\n" + b"x" * 100,
        b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n5\r\nwor",
        b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nZZ\r\n",
    ],
    ids=["content-length", "chunked", "bad-chunk"],
)
async def test_cut_off_body_raises_read_error(reply: bytes) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read_head()  # type: ignore[attr-defined]
        head, _, rest = reply.partition(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\n" + head + b"\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.05)  # let the head arrive on its own
        writer.write(rest)
        await writer.drain()

    async with raw_origin(handler) as (port, _):
        client = HttpOriginClient()
        response = await client.fetch(custom(port), get("/"))
        assert response.status == 200
        with pytest.raises(OriginReadError):
            await read_body(response.body)
        await client.close()


async def test_garbage_is_an_invalid_response() -> None:
    async with raw_origin(answer(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")) as (port, _):
        client = HttpOriginClient()
        with pytest.raises(OriginInvalidResponse):
            await client.fetch(custom(port), get("/"))
        await client.close()


async def test_close_before_head_is_a_read_error() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read_head()  # type: ignore[attr-defined]

    async with raw_origin(handler) as (port, _):
        client = HttpOriginClient()
        with pytest.raises(OriginReadError):
            await client.fetch(custom(port), get("/"))
        await client.close()


async def test_refused_connection_is_a_connect_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = HttpOriginClient()
    with pytest.raises(OriginConnectError):
        await client.fetch(custom(port, connection_attempts=2, connect_timeout=1.0), get("/"))
    await client.close()


async def test_connect_timeout_is_a_connect_error() -> None:
    # A listener whose accept queue is full drops further SYNs, so connect hangs.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = [socket.socket() for _ in range(3)]
        for filler in fillers:
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.1", port))
        client = HttpOriginClient()
        origin = custom(port, connect_timeout=0.2, connection_attempts=2, read_timeout=0.2)
        with pytest.raises(OriginConnectError):
            await client.fetch(origin, get("/"))
        await client.close()
        for filler in fillers:
            filler.close()


async def test_unresolvable_host_is_a_dns_error() -> None:
    client = HttpOriginClient()
    origin = CustomOrigin("o", "http", "no-such-host.invalid", 80, connect_timeout=5.0)
    with pytest.raises(OriginDnsError):
        await client.fetch(origin, get("/"))
    await client.close()


async def test_silent_origin_is_a_timeout() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read_head()  # type: ignore[attr-defined]
        await asyncio.Event().wait()

    async with raw_origin(handler) as (port, heads):
        client = HttpOriginClient()
        origin = custom(port, read_timeout=0.1, connection_attempts=2)
        with pytest.raises(OriginTimeout):
            await client.fetch(origin, get("/"))
        assert len(heads) == 2  # CloudFront tries a GET again after a response timeout
        with pytest.raises(OriginTimeout):
            await client.fetch(origin, get("/", method="POST", body=b"x"))
        assert len(heads) == 3  # but never a POST
        await client.close()


async def test_a_pooled_connection_still_times_out_on_its_next_exchange() -> None:
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read_head()  # type: ignore[attr-defined]
        writer.write(ok)
        await reader.read_head()  # type: ignore[attr-defined]
        await asyncio.Event().wait()  # the second request is never answered

    async with raw_origin(handler) as (port, heads):
        client = HttpOriginClient()
        origin = custom(port, read_timeout=0.2, connection_attempts=1)
        first = await client.fetch(origin, get("/a"))
        assert await read_body(first.body) == b"ok"
        with pytest.raises(OriginTimeout):
            await client.fetch(origin, get("/b"))
        assert len(heads) == 2  # the second went out on the pooled connection
        await client.close()


async def test_get_head_get_on_one_connection_parse_each_response_right() -> None:
    # The parser of a GET is reused for the next GET; a HEAD response has no
    # body whatever its Content-Length says, so it needs a parser of its own.
    get_reply = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"
    head_reply = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n"
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nxy\r\n0\r\n\r\n"
    replies = [get_reply, head_reply, get_reply, chunked, get_reply]
    async with raw_origin(answer(*replies, then_close=False)) as (port, heads):
        client = HttpOriginClient()
        origin = custom(port)
        bodies = []
        for method in ("GET", "HEAD", "GET", "GET", "GET"):
            response = await client.fetch(origin, get("/", method=method))
            assert response.status == 200
            bodies.append(await read_body(response.body))
        assert bodies == [b"abc", b"", b"abc", b"xy", b"abc"]
        assert len(heads) == 5
        assert client.idle_count(origin) == 1  # one connection carried all five
        await client.close()


async def test_stalled_body_is_a_read_error() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read_head()  # type: ignore[attr-defined]
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        await asyncio.Event().wait()

    async with raw_origin(handler) as (port, _):
        client = HttpOriginClient()
        response = await client.fetch(custom(port, read_timeout=0.2), get("/"))
        with pytest.raises(OriginReadError):
            await read_body(response.body)
        await client.close()


async def test_stale_pooled_connection_is_retried_for_get_only() -> None:
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Answer one request, then drop the connection on the next one, as an
        # origin whose keep-alive timer fired while the request was on its way.
        await reader.read_head()  # type: ignore[attr-defined]
        writer.write(ok)
        await reader.read_head()  # type: ignore[attr-defined]

    async with raw_origin(handler) as (port, heads):
        client = HttpOriginClient()
        for _ in range(2):
            response = await client.fetch(custom(port), get("/"))
            assert await read_body(response.body) == b"ok"
        assert len(heads) == 3  # second GET: sent on the stale connection, then again
        with pytest.raises(OriginReadError):
            await client.fetch(custom(port), get("/", method="POST", body=b"once"))
        await client.close()


async def test_header_injection_is_refused(http: HttpOriginClient) -> None:
    headers = Headers([("Host", "o"), ("X-Evil", "a\r\nGET /smuggled HTTP/1.1")])
    with pytest.raises(InvalidRequest):
        await http.fetch(custom(1), get("/", headers=headers))


# -- Directory origin ------------------------------------------------------------------


@pytest.fixture
def bucket(tmp_path: Path) -> Path:
    root = tmp_path / "bucket"
    (root / "css").mkdir(parents=True)
    (root / "index.html").write_bytes(b"<h1>hi</h1>")
    (root / "css" / "site.css").write_bytes(b"body{}")
    (root / "data.bin").write_bytes(bytes(range(256)) * 4096)  # 1 MiB
    (root / "noext").write_bytes(b"?")
    (root / "a b.txt").write_bytes(b"spaced")
    (tmp_path / "secret.txt").write_bytes(b"top secret")
    (root / "inside-link.html").symlink_to(root / "index.html")
    (root / "escape-link").symlink_to(tmp_path / "secret.txt")
    (root / "escape-dir").symlink_to(tmp_path)
    return root


async def fetch_dir(
    root: Path, path: str, method: str = "GET", **headers: str
) -> tuple[Response, bytes]:
    client = DirectoryOriginClient()
    h = Headers([("Host", "bucket"), *((k.replace("_", "-"), v) for k, v in headers.items())])
    response = await client.fetch(DirectoryOrigin("b", root), Request(method, path, "", h))
    return response, await read_body(response.body)


async def test_directory_serves_files_like_s3(bucket: Path) -> None:
    response, body = await fetch_dir(bucket, "/index.html")
    assert (response.status, body) == (200, b"<h1>hi</h1>")
    h = response.headers
    assert h.get("content-type") == "text/html"
    assert h.get("content-length") == "11"
    assert h.get("etag") == f'"{hashlib.md5(b"<h1>hi</h1>").hexdigest()}"'
    assert h.get("accept-ranges") == "bytes"
    assert h.get("server") == "AmazonS3"
    assert (h.get("last-modified") or "").endswith(" GMT")
    assert len(h.get("x-amz-request-id") or "") == 16
    assert (await fetch_dir(bucket, "/css/site.css"))[0].headers.get("content-type") == "text/css"
    assert (await fetch_dir(bucket, "/noext"))[0].headers.get("content-type") == (
        "binary/octet-stream"
    )
    assert (await fetch_dir(bucket, "/a%20b.txt"))[1] == b"spaced"
    assert (await fetch_dir(bucket, "/inside-link.html"))[1] == b"<h1>hi</h1>"


async def test_directory_streams_large_files(bucket: Path) -> None:
    client = DirectoryOriginClient()
    request = Request("GET", "/data.bin", "", Headers([("Host", "b")]))
    response = await client.fetch(DirectoryOrigin("b", bucket), request)
    assert response.body is not None and not isinstance(response.body, bytes)
    assert response.body.length == 2**20
    chunks = [chunk async for chunk in response.body]
    assert len(chunks) == 16
    assert b"".join(chunks) == (bucket / "data.bin").read_bytes()


async def test_directory_head(bucket: Path) -> None:
    response, _ = await fetch_dir(bucket, "/index.html", "HEAD")
    assert response.status == 200
    assert response.body is None
    assert response.headers.get("content-length") == "11"


async def test_directory_conditional_get(bucket: Path) -> None:
    etag = (await fetch_dir(bucket, "/index.html"))[0].headers.get("etag")
    assert etag is not None
    response, _ = await fetch_dir(bucket, "/index.html", If_None_Match=etag)
    assert (response.status, response.body) == (304, None)
    assert response.headers.get("etag") == etag
    assert (await fetch_dir(bucket, "/index.html", If_None_Match='"other"'))[0].status == 200
    later = formatdate((bucket / "index.html").stat().st_mtime + 60, usegmt=True)
    earlier = formatdate((bucket / "index.html").stat().st_mtime - 60, usegmt=True)
    assert (await fetch_dir(bucket, "/index.html", If_Modified_Since=later))[0].status == 304
    assert (await fetch_dir(bucket, "/index.html", If_Modified_Since=earlier))[0].status == 200
    assert (await fetch_dir(bucket, "/index.html", If_Match='"other"'))[0].status == 412


async def test_directory_etag_follows_content(bucket: Path) -> None:
    client = DirectoryOriginClient()
    origin = DirectoryOrigin("b", bucket)
    request = Request("GET", "/index.html", "", Headers())
    first = (await client.fetch(origin, request)).headers.get("etag")
    (bucket / "index.html").write_bytes(b"changed!!")
    os.utime(bucket / "index.html", (1_000_000, 1_000_000))
    response = await client.fetch(origin, request)
    assert response.headers.get("etag") != first
    assert await read_body(response.body) == b"changed!!"


@pytest.mark.parametrize(
    ("spec", "status", "content", "content_range"),
    [
        ("bytes=0-4", 206, b"<h1>h", "bytes 0-4/11"),
        ("bytes=7-", 206, b"/h1>", "bytes 7-10/11"),
        ("bytes=-3", 206, b"h1>", "bytes 8-10/11"),
        ("bytes=5-100", 206, b"i</h1>", "bytes 5-10/11"),
        ("bytes=0-1,3-4", 200, b"<h1>hi</h1>", None),
        ("lines=1-2", 200, b"<h1>hi</h1>", None),
        ("bytes=11-", 416, None, "bytes */11"),
    ],
)
async def test_directory_ranges(
    bucket: Path, spec: str, status: int, content: bytes | None, content_range: str | None
) -> None:
    response, body = await fetch_dir(bucket, "/index.html", Range=spec)
    assert response.status == status
    assert response.headers.get("content-range") == content_range
    if content is not None:
        assert body == content
        assert response.headers.get("content-length") == str(len(content))
    else:
        assert b"<Code>InvalidRange</Code>" in body


@pytest.mark.parametrize(
    "path",
    [
        "/missing.html",
        "/",
        "/css",
        "/css/",
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/css/%2E%2E/%2e%2e/secret.txt",
        "/css/..%2f..%2fsecret.txt",
        "//etc/passwd",
        "/%2fetc%2fpasswd",
        "/escape-link",
        "/escape-dir/secret.txt",
        "/index.html%00.png",
        "/%ff%fe",
        "/./index.html",
    ],
)
async def test_directory_refuses_with_access_denied(bucket: Path, path: str) -> None:
    response, body = await fetch_dir(bucket, path)
    assert response.status == 403
    assert response.headers.get("content-type") == "application/xml"
    assert response.headers.get("server") == "AmazonS3"
    request_id = response.headers.get("x-amz-request-id")
    assert request_id is not None
    assert body.startswith(
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message>"
        b"<RequestId>" + request_id.encode() + b"</RequestId><HostId>"
    )
    assert b"secret" not in body


async def test_directory_methods(bucket: Path) -> None:
    response, body = await fetch_dir(bucket, "/index.html", "PUT")
    assert response.status == 403 and b"AccessDenied" in body
    response, body = await fetch_dir(bucket, "/index.html", "POST")
    assert response.status == 405 and b"<Code>MethodNotAllowed</Code>" in body
    response, body = await fetch_dir(bucket, "/missing", "HEAD")
    assert (response.status, response.body) == (403, None)


# -- The dispatcher -------------------------------------------------------------------


async def test_origin_clients_dispatch(app_origin: AppOrigin, bucket: Path) -> None:
    clients: OriginClients = create_origin_client()
    response = await clients.fetch(app_origin.origin, get("/hello"))
    assert await read_body(response.body) == b"hello "
    response = await clients.fetch(DirectoryOrigin("b", bucket), get("/index.html"))
    assert await read_body(response.body) == b"<h1>hi</h1>"
    await clients.close()
