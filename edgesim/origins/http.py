"""The HTTP/1.1 origin client: a keep-alive connection pool over asyncio protocols.

Why not ``aiohttp.ClientSession``: per request it costs about three times
what the edge's server side does; this client keeps only what a reverse
proxy needs (see bench/origin_client.py for the comparison).

CloudFront's origin settings drive the timeouts (RequestAndResponseBehavior-
CustomOrigin.md, "Origin connection timeout/attempts", "Origin response
timeout"): each of ``connection_attempts`` connects gets ``connect_timeout``;
``read_timeout`` bounds the wait for the response head and every gap between
body bytes. Idle connections are kept ``keepalive_timeout`` (CloudFront's
default origin keep-alive is 5 s).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable
from typing import Any

from aiohttp.streams import StreamReader

from edgesim.config.schema import CustomOrigin
from edgesim.errors import (
    InvalidRequest,
    OriginConnectError,
    OriginDnsError,
    OriginReadError,
    OriginTimeout,
)
from edgesim.models import BodyStream, Headers, Request, Response
from edgesim.origins import StartedFetch
from edgesim.origins.connection import OriginBody, OriginConnection, _ConnectionGone
from edgesim.wire import JOIN_LIMIT, decode_fields, render_request_fields, request_bytes

__all__ = ["HttpOriginClient"]

# Methods whose request may be replayed on a fresh connection when a pooled
# one turns out dead before the origin said anything (RFC 9110 section 9.2.2).
_REPLAYABLE = frozenset({"GET", "HEAD", "OPTIONS"})
_RETRY_ON_TIMEOUT = frozenset({"GET", "HEAD"})
# Methods that carry a body by definition: send Content-Length: 0 when empty.
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_NO_BODY_STATUS = frozenset({204, 304})

Key = tuple[str, str, int]


class HttpOriginClient:
    """Fetches from ``CustomOrigin``s over pooled keep-alive HTTP/1.1 connections.

    Pools are per (scheme, host, port); idle connections are reused last-in
    first-out, capped at ``max_idle_per_host`` and closed after
    ``keepalive_timeout`` seconds. One instance belongs to one event loop.
    """

    def __init__(
        self,
        *,
        max_idle_per_host: int = 100,
        keepalive_timeout: float = 5.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._max_idle = max_idle_per_host
        self._keepalive = keepalive_timeout
        self._ssl_context = ssl_context
        self._idle: dict[Key, list[OriginConnection]] = {}
        self._reaper: asyncio.TimerHandle | None = None
        self._closed = False

    def idle_count(self, origin: CustomOrigin) -> int:
        """Idle pooled connections to ``origin`` (for tests and the inspector)."""
        return sum(c.reusable for c in self._idle.get(_key(origin), ()))

    async def fetch(
        self, origin: CustomOrigin, request: Request, started: StartedFetch | None = None
    ) -> Response:
        """Send ``request`` to ``origin``; return once the response head has arrived.

        ``started`` is this request already sent by ``start_fetch``: its answer
        is awaited as the first attempt. Raises OriginDnsError,
        OriginConnectError (after all attempts), OriginTimeout (no head within
        read_timeout; GET and HEAD are tried up to connection_attempts times,
        as CloudFront does), OriginInvalidResponse (not HTTP) or
        OriginReadError (closed before a head). The body is ``bytes`` when it
        arrived whole with the head, else an ``OriginBody`` that raises
        OriginReadError if cut off.
        """
        if self._closed:
            raise RuntimeError("HttpOriginClient is closed")
        head = started.head if isinstance(started, _Started) else _render_head(origin, request)
        body = request.body
        replayable = request.method in _REPLAYABLE and not _is_stream(body)
        attempts = max(1, origin.connection_attempts)
        fresh = False
        while True:
            try:
                if isinstance(started, _Started):
                    conn, reused, waiter = started.conn, True, started.waiter
                    started = None
                    message, payload = await _answer(conn, waiter)
                else:
                    conn, reused = await self._acquire(origin, fresh)
                    message, payload = await _exchange(conn, origin, request, head)
            except OriginTimeout:
                # CloudFront tries GET and HEAD again after a response timeout,
                # up to the connection attempts; other methods never
                # (distribution-web-values-specify.md, "Response timeout").
                attempts -= 1
                if attempts > 0 and request.method in _RETRY_ON_TIMEOUT and replayable:
                    fresh = True
                    continue
                raise
            except OriginReadError:
                # A pooled connection the origin closed meanwhile: try once more.
                if reused and replayable and not fresh and conn.received == 0:
                    fresh = True
                    continue
                raise
            return _response(conn, request, message, payload)

    def start_fetch(self, origin: CustomOrigin, request: Request) -> StartedFetch | None:
        """Send ``request`` now, without waiting, if an idle pooled connection is
        ready and the request has no streamed body; None otherwise (``fetch``
        connects). Its answer is read with ``started_response`` or awaited with
        ``fetch(..., started=...)``, exactly once."""
        body = request.body
        if self._closed or not (body is None or isinstance(body, bytes)):
            return None
        key = _key(origin)
        if not self._idle.get(key):
            return None
        try:
            head = _render_head(origin, request)
        except InvalidRequest:
            return None  # fetch() raises it
        conn = self._pooled(key)
        if conn is None:
            return None
        waiter = _send_whole(conn, origin, request.method, head, body)
        return _Started(conn, waiter, head, request)

    def started_response(self, started: StartedFetch) -> Response | None:
        """The response to a started fetch whose head has arrived, taken once; None
        while it has not, or when it failed (``fetch(..., started=...)`` raises why)."""
        assert isinstance(started, _Started)
        waiter = started.waiter
        if not waiter.done() or waiter.cancelled() or waiter.exception() is not None:
            return None
        message, payload = waiter.result()
        return _response(started.conn, started.request, message, payload)

    async def close(self) -> None:
        """Close idle connections; busy ones close when their exchange ends."""
        self._closed = True
        if self._reaper is not None:
            self._reaper.cancel()
            self._reaper = None
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()

    # -- the pool ---------------------------------------------------------------

    async def _acquire(self, origin: CustomOrigin, fresh: bool) -> tuple[OriginConnection, bool]:
        key = _key(origin)
        if not fresh:
            conn = self._pooled(key)
            if conn is not None:
                return conn, True
        return await self._connect(origin, key), False

    def _pooled(self, key: Key) -> OriginConnection | None:
        """An idle connection to ``key`` still usable, the warmest first (LIFO: the
        least likely to have been closed by the origin); the unusable are closed."""
        idle = self._idle.get(key)
        while idle:
            conn = idle.pop()
            if conn.reusable:
                return conn
            conn.close()
        return None

    def _release(self, conn: OriginConnection) -> None:
        """Called by a connection whose exchange ended cleanly with keep-alive."""
        if self._closed:
            conn.close()
            return
        idle = self._idle.setdefault(conn.key, [])
        if len(idle) >= self._max_idle:
            conn.close()
            return
        idle.append(conn)  # its idle_since is the time it last heard from the origin
        if self._reaper is None:
            loop = asyncio.get_running_loop()
            self._reaper = loop.call_later(min(1.0, self._keepalive), self._reap, loop)

    def _reap(self, loop: asyncio.AbstractEventLoop) -> None:
        self._reaper = None
        expired = loop.time() - self._keepalive
        for key in list(self._idle):
            idle = self._idle[key]
            keep = [c for c in idle if c.reusable and c.idle_since > expired]
            for conn in idle:
                if conn.reusable and conn.idle_since <= expired:
                    conn.close()
            if keep:
                idle[:] = keep
            else:
                del self._idle[key]
        if self._idle:
            self._reaper = loop.call_later(min(1.0, self._keepalive), self._reap, loop)

    async def _connect(self, origin: CustomOrigin, key: Key) -> OriginConnection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(origin.connect_timeout):
                infos = await loop.getaddrinfo(origin.host, origin.port, type=socket.SOCK_STREAM)
        except OSError as exc:  # gaierror, or a resolver that timed out
            raise OriginDnsError(f"cannot resolve {origin.host}: {exc}") from exc
        ssl_context: ssl.SSLContext | None = None
        if origin.scheme == "https":
            if self._ssl_context is None:
                self._ssl_context = ssl.create_default_context()
            ssl_context = self._ssl_context
        last: BaseException | None = None
        for _attempt in range(max(1, origin.connection_attempts)):
            for family, _type, _proto, _name, address in infos:
                host, port = str(address[0]), int(address[1])
                try:
                    async with asyncio.timeout(origin.connect_timeout):
                        _, conn = await loop.create_connection(
                            lambda: OriginConnection(loop, key, self._release),
                            host=host,
                            port=port,
                            family=family,
                            ssl=ssl_context,
                            server_hostname=origin.host if ssl_context else None,
                        )
                    return conn
                except (OSError, ssl.SSLError) as exc:  # refused, unreachable, timeout, TLS
                    last = exc
        raise OriginConnectError(
            f"cannot connect to {origin.host}:{origin.port} after "
            f"{origin.connection_attempts} attempts: {last!r}"
        )


class _Started:
    """A request sent by ``start_fetch``: its connection and the future of its head."""

    __slots__ = ("conn", "head", "request", "waiter")

    def __init__(
        self,
        conn: OriginConnection,
        waiter: asyncio.Future[tuple[Any, StreamReader]],
        head: bytes,
        request: Request,
    ) -> None:
        self.conn = conn
        self.waiter = waiter
        self.head = head
        self.request = request

    def on_head(self, callback: Callable[[], None]) -> None:
        self.waiter.add_done_callback(lambda _: callback())

    def abandon(self) -> None:
        """Nobody will read the answer: close the connection unless it is pooled again."""
        waiter = self.waiter
        if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
            _message, payload = waiter.result()
            self.conn.abandon(payload)
        else:
            self.conn.abandon(waiter)


def _response(
    conn: OriginConnection, request: Request, message: Any, payload: StreamReader
) -> Response:
    """The Response for an origin's answer: headers as sent, the body as bytes when
    it came whole with the head, else streamed."""
    status = message.code
    headers = Headers(decode_fields(message.raw_headers))
    if request.method == "HEAD" or status in _NO_BODY_STATUS:
        return Response(status, headers, None, message.reason)
    if payload.is_eof():
        # The whole body came with the head (the usual case for small
        # objects) and the connection is pooled already: hand over bytes.
        return Response(status, headers, payload.read_nowait(), message.reason)
    length: int | None = None
    if not message.chunked:
        content_length = message.headers.get("Content-Length")
        if content_length is not None:
            length = int(content_length)
    return Response(status, headers, OriginBody(conn, payload, length), message.reason)


async def _exchange(
    conn: OriginConnection, origin: CustomOrigin, request: Request, head: bytes
) -> tuple[Any, StreamReader]:
    """Write the request and wait for the final response head."""
    body = request.body
    if body is None or isinstance(body, bytes):
        return await _answer(conn, _send_whole(conn, origin, request.method, head, body))
    waiter = conn.start(head_only=request.method == "HEAD", read_timeout=origin.read_timeout)
    try:
        await _send_stream(conn, head, body)
    except _ConnectionGone:
        pass  # the origin went away (or answered early): the waiter tells which
    except BaseException:
        conn.abandon(waiter)
        raise
    return await _answer(conn, waiter)


def _send_whole(
    conn: OriginConnection, origin: CustomOrigin, method: str, head: bytes, body: bytes | None
) -> asyncio.Future[tuple[Any, StreamReader]]:
    """Begin an exchange for a request without a streamed body and write it in one
    go; the future resolves to the final response head."""
    waiter = conn.start(head_only=method == "HEAD", read_timeout=origin.read_timeout)
    try:
        conn.write(head if body is None else _with_body(head, body))
    except _ConnectionGone:
        return waiter  # gone (or answered early) mid-write: the waiter tells which
    return waiter


async def _answer(
    conn: OriginConnection, waiter: asyncio.Future[tuple[Any, StreamReader]]
) -> tuple[Any, StreamReader]:
    """The final response head; a cancelled wait closes the connection."""
    try:
        return await waiter
    except asyncio.CancelledError:
        conn.abandon(waiter)
        raise


async def _send_stream(conn: OriginConnection, head: bytes, body: BodyStream) -> None:
    """Stream a request body, waiting for the origin to take each chunk (backpressure)."""
    length = body.length
    conn.write(head)
    conn.writing(True)
    sent = 0
    async for chunk in body:
        if not chunk:
            continue
        sent += len(chunk)
        if length is None:
            conn.write([b"%x\r\n" % len(chunk), chunk, b"\r\n"])
        else:
            conn.write(chunk)
        await conn.drain()
    if length is None:
        conn.write(b"0\r\n\r\n")
    elif sent != length:
        raise InvalidRequest(f"request body was {sent} bytes, Content-Length said {length}")
    conn.writing(False)


def _with_body(head: bytes, body: bytes) -> bytes | list[bytes]:
    """What one write sends: a small body joined to the head, a large one beside
    it (one writev, without copying it)."""
    return head + body if len(body) <= JOIN_LIMIT else [head, body]


def _render_head(origin: CustomOrigin, request: Request) -> bytes:
    target = origin.path + request.path
    if request.query:
        target += "?" + request.query
    line = f"{request.method} {target} HTTP/1.1\r\n"
    # A CR or LF in the target (or a header) would let a function smuggle a
    # second request onto the origin connection.
    if line.count("\n") != 1 or line.count("\r") != 1:
        raise InvalidRequest("CR or LF in the request target")
    block = request.head  # pre-rendered by the forwarding, Host among its fields
    has_host = True
    if block is None:
        try:
            block, has_host = render_request_fields(request.headers.fields)
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None
    parts = [request_bytes(line), block]
    if not has_host:  # HTTP/1.1 requires it; the pipeline normally sets it
        port = "" if origin.port == (443 if origin.scheme == "https" else 80) else f":{origin.port}"
        parts.append(request_bytes(f"Host: {origin.host}{port}\r\n"))
    body = request.body
    if body is None:
        if request.method in _BODY_METHODS:
            parts.append(b"Content-Length: 0\r\n")
    elif isinstance(body, bytes):
        if body or request.method in _BODY_METHODS:
            parts.append(b"Content-Length: %d\r\n" % len(body))
    elif body.length is None:
        parts.append(b"Transfer-Encoding: chunked\r\n")
    else:
        parts.append(b"Content-Length: %d\r\n" % body.length)
    parts.append(b"\r\n")
    return b"".join(parts)


def _is_stream(body: bytes | BodyStream | None) -> bool:
    return body is not None and not isinstance(body, bytes)


def _key(origin: CustomOrigin) -> Key:
    return (origin.scheme, origin.host, origin.port)
