"""The load generator's HTTP/1.1 connection: the edge's origin connection, driven by callbacks.

``OriginConnection`` (edgesim.origins.connection) already is a lean
keep-alive client on aiohttp's C response parser. A load generator needs
no coroutine per request on top of it: ``LoadConnection`` sends a request,
drops body bytes as they arrive (so flow control never pauses the socket),
and calls its owner back from ``data_received`` once the response is
complete, or from ``connection_lost`` when the exchange failed. The next
request can be written from inside that callback.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Protocol

from edgesim.errors import OriginInvalidResponse, OriginReadError, OriginTimeout
from edgesim.origins.connection import OriginConnection

__all__ = ["LoadConnection", "Owner", "error_kind"]

Key = tuple[str, str, int]


class Owner(Protocol):
    def answered(self, conn: LoadConnection, status: int, x_cache: str | None) -> None:
        """The response to ``conn``'s request is complete."""

    def failed(self, conn: LoadConnection, kind: str) -> None:
        """``conn``'s request got no (complete) response; the connection is closed."""

    def idle_lost(self, conn: LoadConnection) -> None:
        """``conn`` closed while no request was in flight (the server let it go)."""


def error_kind(exc: BaseException | None) -> str:
    """A short name for why an exchange failed, for the report's error counts."""
    if isinstance(exc, OriginTimeout):
        return "timeout"
    if isinstance(exc, OriginInvalidResponse):
        return "invalid response"
    if isinstance(exc, OriginReadError):
        return "connection closed"
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return "connect timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, OSError):
        return "connect error"
    return "connection closed"


def _no_pool(_: OriginConnection) -> None:
    """Completion is seen in ``data_received``; there is no pool to return to."""


class LoadConnection(OriginConnection):
    """One connection of the load generator; one request in flight at a time."""

    __slots__ = ("busy", "exchange", "owner", "payload", "started", "user")

    def __init__(self, loop: asyncio.AbstractEventLoop, key: Key, owner: Owner) -> None:
        super().__init__(loop, key, _no_pool)
        self.owner = owner
        self.user: Any = None  # the closed-loop user that holds this connection, if any
        self.busy = False
        self.started = 0.0  # perf_counter when the request was (meant to be) sent
        self.exchange: asyncio.Future[Any] | None = None
        self.payload: Any = None

    def send(self, data: bytes, started: float, read_timeout: float) -> None:
        """Write one request; ``started`` is when its latency starts counting."""
        self.busy = True
        self.started = started
        self.payload = None
        self.exchange = self.start(head_only=data.startswith(b"HEAD "), read_timeout=read_timeout)
        self.write(data)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if not self.busy:
            return
        payload = self.payload
        exchange = self.exchange
        if payload is None:
            if exchange is None or not exchange.done() or exchange.exception() is not None:
                return
            payload = self.payload = exchange.result()[1]
        if payload.exception() is not None:
            return  # connection_lost reports it
        if payload.is_eof():
            message = exchange.result()[0]  # type: ignore[union-attr]
            self.busy = False
            self.owner.answered(self, message.code, message.headers.get("X-Cache"))
        else:
            payload.read_nowait()  # drop what arrived: only its size matters

    def connection_lost(self, exc: BaseException | None) -> None:
        super().connection_lost(exc)
        if not self.busy:
            self.owner.idle_lost(self)
            return
        self.busy = False
        exchange = self.exchange
        reason: BaseException | None = None
        if exchange is not None and exchange.done():
            reason = exchange.exception()
            if reason is None and self.payload is not None:
                reason = self.payload.exception()
        self.owner.failed(self, error_kind(reason))


async def open_connection(
    loop: asyncio.AbstractEventLoop,
    key: Key,
    owner: Owner,
    timeout: float,
    factory: Callable[[], LoadConnection] | None = None,
) -> LoadConnection:
    """Connect to ``key`` (scheme, host, port); raises OSError or TimeoutError."""
    scheme, host, port = key
    make = factory or (lambda: LoadConnection(loop, key, owner))
    ssl = True if scheme == "https" else None
    async with asyncio.timeout(timeout):
        _, conn = await loop.create_connection(make, host, port, ssl=ssl)
    return conn


def now() -> float:
    """The generator's clock: perf_counter (uvloop's loop.time() has 1 ms steps)."""
    return time.perf_counter()
