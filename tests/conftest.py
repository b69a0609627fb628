"""Shared fixtures: a real recording origin, a real edge, a clock tests can move.

Everything runs on 127.0.0.1 with ephemeral ports; nothing under test is mocked.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from aiohttp import web

from edgesim.config.schema import (
    Behavior,
    CachePolicy,
    CacheSettings,
    Config,
    CustomOrigin,
    FunctionConfig,
    Listen,
)
from edgesim.service import Edge
from tests.browser_support import browser

__all__ = ["browser"]  # the headless Chromium fixture, for every test module

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ManualClock:
    """The edge's clock, moved by the test instead of by waiting."""

    def __init__(self) -> None:
        self._mono = 10_000.0
        self._wall = time.time()

    def monotonic(self) -> float:
        return self._mono

    def time(self) -> float:
        return self._wall

    def advance(self, seconds: float) -> None:
        self._mono += seconds
        self._wall += seconds


@dataclass
class Seen:
    method: str
    path_qs: str
    headers: dict[str, str]
    raw_headers: list[tuple[str, str]]
    body: bytes


@dataclass
class RecordingOrigin:
    """An aiohttp origin that records every request and answers by route."""

    routes: dict[str, Handler] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    connections: int = 0
    port: int = 0

    def route(self, path: str, handler: Handler) -> None:
        self.routes[path] = handler

    def reply(
        self, path: str, body: bytes | str = b"hello", status: int = 200, **headers: str
    ) -> None:
        """Answer ``path`` with a fixed response; header names use _ for -."""
        data = body.encode() if isinstance(body, str) else body
        hdrs = {k.replace("_", "-"): v for k, v in headers.items()}

        async def handler(_: web.Request) -> web.StreamResponse:
            return web.Response(body=data, status=status, headers=hdrs)

        self.routes[path] = handler

    def hits(self, path: str) -> int:
        return sum(1 for s in self.seen if s.path_qs.split("?")[0] == path)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.seen.append(
            Seen(
                request.method,
                request.path_qs,
                {k.lower(): v for k, v in request.headers.items()},
                [(k.decode(), v.decode()) for k, v in request.raw_headers],
                body,
            )
        )
        handler = self.routes.get(request.path)
        if handler is None:
            return web.Response(status=404, text="no route")
        return await handler(request)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
async def origin() -> AsyncIterator[RecordingOrigin]:
    rec = RecordingOrigin()
    app = web.Application(client_max_size=1 << 30)
    app.router.add_route("*", "/{tail:.*}", rec.handle)

    # A short shutdown: some tests leave handlers hanging on purpose.
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    rec.port = int(runner.addresses[0][1])
    yield rec
    await runner.cleanup()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


EdgeFactory = Callable[..., Awaitable[Edge]]


@pytest.fixture
async def make_edge(origin: RecordingOrigin, clock: ManualClock) -> AsyncIterator[EdgeFactory]:
    """Start an edge in front of ``origin``: ``await make_edge(behaviors=[...], default=...)``."""
    edges: list[Edge] = []

    async def factory(
        *,
        behaviors: tuple[Behavior, ...] = (),
        default: Behavior | None = None,
        cache: CacheSettings | None = None,
        origins: dict[str, Any] | None = None,
        functions: dict[str, FunctionConfig] | None = None,
        settings: dict[str, Any] | None = None,
        **origin_options: Any,
    ) -> Edge:
        port = origin_options.pop("port", origin.port)
        app = CustomOrigin("app", "http", "127.0.0.1", port, **origin_options)
        config = Config(
            origins={"app": app, **(origins or {})},
            default_behavior=default or Behavior("*", "app"),
            behaviors=behaviors,
            listen=Listen("127.0.0.1", 0),
            admin_listen=Listen("127.0.0.1", 0),
            cache=cache or CacheSettings(),
            functions=functions or {},
        )
        if settings:
            config = dataclasses.replace(config, **settings)
        edge = Edge(config, clock=clock)
        await edge.start()
        edges.append(edge)
        return edge

    yield factory
    for edge in edges:
        await edge.stop(grace=1.0)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10.0) as c:
        yield c


def behavior(path: str = "*", **changes: Any) -> Behavior:
    """A behavior to the ``app`` origin; ``ttl=(min, default, max)`` sets the cache TTLs."""
    ttl = changes.pop("ttl", None)
    base = Behavior(path, changes.pop("origin", "app"))
    if ttl is not None:
        changes["cache"] = dataclasses.replace(
            changes.get("cache", CachePolicy()), min_ttl=ttl[0], default_ttl=ttl[1], max_ttl=ttl[2]
        )
    return dataclasses.replace(base, **changes)


async def raw_request(port: int, data: bytes, *, read_until_close: bool = True) -> bytes:
    """Send raw bytes to the edge and return what comes back (until close or 2 s of quiet)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    chunks = []
    try:
        while True:
            chunk = await asyncio.wait_for(reader.read(65536), 2.0)
            if not chunk:
                break
            chunks.append(chunk)
            if not read_until_close:
                break
    except TimeoutError:
        pass
    writer.close()
    return b"".join(chunks)
