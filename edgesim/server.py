"""The edge's HTTP/1.1 front: asyncio protocol on aiohttp's C request parser.

A cache hit is answered inside ``data_received``: the pipeline's synchronous
first half finds the entry, and the server writes the entry's pre-rendered
head plus the per-request edge headers and the body in one write. Anything
that has to wait (an origin fetch) runs in one task per connection, which
also keeps pipelined responses in order. This is the only module that knows
about sockets; it is also the last-resort handler, so a traceback never
reaches a viewer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections import deque
from collections.abc import AsyncIterator
from time import perf_counter
from typing import Any

from aiohttp._http_parser import HttpRequestParser
from aiohttp.base_protocol import BaseProtocol
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from aiohttp.http_writer import HttpVersion11
from aiohttp.streams import StreamReader

from edgesim.access_log import AccessLog
from edgesim.cache import CacheStore
from edgesim.config.schema import Config
from edgesim.errors import ConfigError, EdgeError, InvalidRequest, OriginError, RequestTooLarge
from edgesim.invoker import Invoker
from edgesim.metrics import EdgeMetrics
from edgesim.models import WHOLE_BODY, BodyStream, Exchange, Headers, Request, Response, close_body
from edgesim.origins import OriginClient
from edgesim.origins.client import OriginClients
from edgesim.pages import error_response
from edgesim.pipeline import Clock, Pipeline, new_request_id
from edgesim.trace import TraceRing
from edgesim.wire import JOIN_LIMIT, decode_block, render_fields, render_head, render_headers

__all__ = ["EdgeServer"]

log = logging.getLogger("edgesim.server")

# CloudFront's request limits (cloudfront-limits.html): URL 8,192 bytes;
# request line plus headers 20,480 bytes.
_MAX_URL = 8192
_MAX_HEADERS_TOTAL = 20_480
_NO_BODY_STATUSES = frozenset({204, 304})
_BODY_LIMIT = 2**16  # flow-control window of the request body reader
# Idle viewer connections are closed after this long; CloudFront does not
# publish its viewer keep-alive timeout, so this is edgesim's choice.
VIEWER_IDLE_TIMEOUT = 60.0


class _RequestBody:
    """The viewer's request body as a BodyStream over aiohttp's StreamReader."""

    __slots__ = ("_reader", "length")

    def __init__(self, reader: StreamReader, length: int | None) -> None:
        self._reader = reader
        self.length = length

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        while True:
            chunk = await self._reader.readany()
            if not chunk:
                return
            yield chunk

    async def aclose(self) -> None:
        return None


async def _abandon(ex: Exchange) -> None:
    """Close a response body nobody will read, so its origin connection and any
    collapsed waiters are released."""
    if ex.response is not None:
        with contextlib.suppress(Exception):
            await close_body(ex.response.body)


class _Connection(BaseProtocol):
    """One viewer connection: parse, answer in order, keep alive."""

    def __init__(self, server: EdgeServer) -> None:
        loop = asyncio.get_running_loop()
        parser = HttpRequestParser(
            self,
            loop,
            _BODY_LIMIT,
            max_line_size=_MAX_URL + 16,
            max_field_size=_MAX_HEADERS_TOTAL,
            max_headers=256,
            auto_decompress=False,
        )
        super().__init__(loop, parser)
        self._request_parser = parser
        self._server = server
        self._queue: deque[tuple[Any, StreamReader]] = deque()
        # The connection's task answers what has to wait; it lives as long as
        # the connection once started (cheaper than a task per request) and
        # sleeps on ``_wakeup`` between requests.
        self._task: asyncio.Task[None] | None = None
        self._wakeup: asyncio.Future[Exchange | None] | None = None
        self._busy = False
        # The pipeline (generation) of the exchange being answered by the task: a
        # reload swaps the server's pipeline, and an exchange finishes on its own.
        self.pipeline: Pipeline | None = None
        self._closing = False
        self.last_active = loop.time()

    # -- asyncio.Protocol -------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._server.connections.add(self)
        peer = transport.get_extra_info("peername") or ("127.0.0.1", 0)
        self._client_ip, self._client_port = str(peer[0]), int(peer[1])

    def connection_lost(self, exc: BaseException | None) -> None:
        super().connection_lost(exc)
        self._server.connections.discard(self)
        self._closing = True
        with contextlib.suppress(HttpProcessingError):
            self._request_parser.feed_eof()
        for _, payload in self._queue:
            payload.feed_eof()
        self._queue.clear()
        if self._task is not None:
            self._task.cancel()

    def data_received(self, data: bytes) -> None:
        if self.transport is None:
            return
        self.last_active = self._loop.time()
        try:
            messages, _upgraded, _tail = self._request_parser.feed_data(data)
        except LineTooLong as exc:
            self._refuse(RequestTooLarge(str(exc)))
            return
        except HttpProcessingError as exc:
            self._refuse(InvalidRequest(str(exc.message)))
            return
        for message, payload in messages:
            if self._closing:
                return
            if not self._busy and not self._queue:
                self._answer_now(message, payload)
            else:
                self._queue.append((message, payload))

    def eof_received(self) -> bool:
        return False

    # -- requests ---------------------------------------------------------

    def _request(self, message: Any, payload: StreamReader) -> Request:
        url = message.url
        headers, size = decode_block(message.raw_headers)
        if size + len(message.path) > _MAX_HEADERS_TOTAL:
            raise RequestTooLarge("request headers exceed 20,480 bytes")
        body: bytes | BodyStream | None = None
        length = headers.get("content-length")
        if message.chunked or (length is not None and length != "0"):
            body = _RequestBody(payload, int(length) if length is not None else None)
            if (headers.get("expect") or "").lower() == "100-continue" and self.transport:
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        version = message.version  # the parser's own constant for 1.1
        http_version = "1.1" if version is HttpVersion11 else f"{version.major}.{version.minor}"
        # Positional: a class called with keywords first packs them into a dict.
        return Request(
            message.method,
            url.raw_path,
            url.raw_query_string,
            headers,
            self._client_ip,
            self._client_port,
            http_version,
            body,
        )

    def _answer_now(self, message: Any, payload: StreamReader) -> None:
        """Answer without a task when the pipeline can: cache hits, refusals, and
        misses it sent to the origin at once (answered when the origin is);
        otherwise hand the request to this connection's task."""
        try:
            request = self._request(message, payload)
        except EdgeError as error:
            self._refuse(error)
            return
        pipeline = self._server.pipeline
        ex = pipeline.start(request)
        if ex.pending or ex.response is None or not isinstance(ex.response.body, WHOLE_BODY):
            self._queue.append((message, payload))
            self.pipeline = pipeline
            self._busy = True
            direct = ex.direct
            if direct is not None:
                direct.on_answer(lambda: self._origin_answered(ex, pipeline))
            else:
                self._hand_over(ex)
            return
        self._write_buffered(ex, message)
        if not payload.is_eof():
            self._close()

    def _origin_answered(self, ex: Exchange, pipeline: Pipeline) -> None:
        """The origin answered a miss ``_answer_now`` left waiting: finish it here if
        the pipeline can without waiting, else in the task."""
        if self._closing or self.transport is None or not self._queue:
            pipeline.abandon(ex)  # the viewer went away meanwhile
            return
        if not pipeline.finish_now(ex):
            self._hand_over(ex)
            return
        message, payload = self._queue.popleft()
        self._busy = False
        self.pipeline = None
        self._write_buffered(ex, message)
        if not payload.is_eof():
            self._close()
        elif self._queue and not self._closing:
            self._busy = True  # pipelined requests came meanwhile
            self.pipeline = self._server.pipeline
            self._hand_over(None)

    def _hand_over(self, first: Exchange | None) -> None:
        """Let the connection's task answer the queue; ``first`` is its head, started."""
        wakeup = self._wakeup
        if wakeup is not None:
            self._wakeup = None
            wakeup.set_result(first)
        else:
            self._task = self._loop.create_task(self._serve(first))

    async def _serve(self, first: Exchange | None) -> None:
        """Answer the queued requests in order (``first`` is the head's exchange,
        started), then sleep until ``_answer_now`` hands over the next exchange
        that has to wait; ends with the connection. One loop rather than a
        coroutine per wake-up: each level of coroutines costs a request that
        waits (a hooked one) ~1.8k instructions."""
        try:
            while True:
                while self._queue and not self._closing:
                    message, payload = self._queue[0]
                    ex = first
                    first = None
                    if ex is None:
                        try:
                            request = self._request(message, payload)
                        except EdgeError as error:
                            self._refuse(error)
                            break
                        self.pipeline = self._server.pipeline
                        ex = self.pipeline.start(request)
                    await self._answer(ex, message, payload)
                    self._queue.popleft()
                    if not payload.is_eof():
                        # The request body was not read (refused or ignored): the
                        # connection cannot carry another request.
                        self._close()
                        break
                self._busy = False
                self.pipeline = None
                if self._closing:
                    return
                self._wakeup = self._loop.create_future()
                first = await self._wakeup
        except asyncio.CancelledError:
            return
        finally:
            self._task = self._wakeup = None
            self._busy = False
            self.pipeline = None

    async def _answer(self, ex: Exchange, message: Any, payload: StreamReader) -> None:
        try:
            if ex.pending:
                assert self.pipeline is not None
                await self.pipeline.finish(ex)
            response = ex.response
            assert response is not None
            if isinstance(response.body, WHOLE_BODY):
                self._write_buffered(ex, message)
            else:
                await self._write_streamed(ex, message, response.body)
        except (asyncio.CancelledError, ConnectionError):
            await _abandon(ex)
            # The viewer went away: logged as CloudFront logs a broken response.
            ex.aborted = True
            ex.detailed_result_type = "ClientCommError"
            self._server.record(ex)
            raise
        except Exception:
            log.exception("unexpected error answering %s %s", message.method, message.path)
            await _abandon(ex)
            if self.transport is not None and ex.response is None:
                self._refuse(EdgeError("internal error"))
            else:
                self._abort()

    # -- writing ----------------------------------------------------------

    def _head(
        self, ex: Exchange, message: Any, response: Response, framing: bytes, close: bool
    ) -> bytes:
        head = response.head or render_head(response.status, response.reason, response.headers)
        tail = render_fields(ex.edge_headers)
        if close:
            connection = b"Connection: close\r\n"
        elif message.version.minor == 0:
            connection = b"Connection: keep-alive\r\n"
        else:
            connection = b""
        return b"".join((head, tail, framing, connection, b"\r\n"))

    def _write_buffered(self, ex: Exchange, message: Any) -> None:
        response = ex.response
        assert response is not None
        transport = self.transport
        if transport is None:
            return
        body = response.body or b""
        assert isinstance(body, bytes)
        framing = b""
        if (
            response.head is None
            and "content-length" not in response.headers
            and response.status not in _NO_BODY_STATUSES
        ):
            framing = b"Content-Length: %d\r\n" % len(body)
        close = message.should_close or self._server.stopping
        head = self._head(ex, message, response, framing, close)
        if message.method == "HEAD" or response.status in _NO_BODY_STATUSES:
            transport.write(head)
            ex.bytes_out = len(head)
        else:
            if len(body) <= JOIN_LIMIT:
                transport.write(head + body)
            else:
                transport.writelines((head, body))  # one writev, no copy of the body
            ex.bytes_out = len(head) + len(body)
        self._server.record(ex)
        if close:
            self._close()

    async def _write_streamed(self, ex: Exchange, message: Any, body: BodyStream) -> None:
        response = ex.response
        assert response is not None
        http11 = message.version.minor >= 1
        known = "content-length" in response.headers
        chunked = not known and http11
        close = message.should_close or self._server.stopping or not (known or chunked)
        framing = b"Transfer-Encoding: chunked\r\n" if chunked else b""
        no_body = message.method == "HEAD" or response.status in _NO_BODY_STATUSES
        transport = self.transport
        if transport is None:
            await body.aclose()
            return
        head = self._head(ex, message, response, framing, close)
        transport.write(head)
        ex.first_byte = perf_counter()
        sent = len(head)
        if no_body:
            await body.aclose()
        else:
            try:
                async for chunk in body:
                    if self.transport is None:
                        raise ConnectionError("viewer went away")
                    if chunk:
                        if not chunked:
                            transport.write(chunk)
                            sent += len(chunk)
                        elif len(chunk) <= JOIN_LIMIT:
                            data = b"%x\r\n%b\r\n" % (len(chunk), chunk)
                            transport.write(data)
                            sent += len(data)
                        else:
                            size = b"%x\r\n" % len(chunk)
                            transport.writelines((size, chunk, b"\r\n"))
                            sent += len(size) + len(chunk) + 2
                    if self._paused:
                        await self._drain_helper()
            except OriginError as error:
                # Headers are already sent: like CloudFront, cut the viewer off.
                ex.notes += (str(error),)
                ex.bytes_out = sent
                ex.aborted = True
                ex.detailed_result_type = error.detailed_result_type
                self._server.record(ex)
                self._abort()
                return
            except BaseException:
                ex.bytes_out = sent
                await body.aclose()
                raise
            if chunked:
                transport.write(b"0\r\n\r\n")
                sent += 5
        ex.bytes_out = sent
        self._server.record(ex)
        if close:
            self._close()

    def _refuse(self, error: EdgeError) -> None:
        """Answer a request the edge cannot take, then close the connection."""
        transport = self.transport
        if transport is None or self._closing:
            return
        started = perf_counter()
        pipeline = self._server.pipeline
        request_id = new_request_id()
        response = error_response(error, request_id, pipeline.date())
        extra = Headers([("X-Cache", error.x_cache), ("Connection", "close")])
        head = render_head(response.status, response.reason, response.headers)
        body = response.body if isinstance(response.body, bytes) else b""
        data = head + render_headers(extra) + b"\r\n" + body
        transport.write(data)
        self._close()
        # Logged and traced like any answer, with what is known of the request.
        unknown = Request("-", "-", "", Headers(), self._client_ip, self._client_port)
        ex = Exchange(unknown, request_id, unknown, response=response, started=started)
        ex.x_cache = error.x_cache
        ex.result_type = error.result_type
        ex.detailed_result_type = error.detailed_result_type
        ex.edge_headers = list(extra)[:1]
        ex.notes += (str(error),)
        ex.bytes_out = len(data)
        self._server.record(ex)

    def _close(self) -> None:
        self._closing = True
        if self.transport is not None:
            self.transport.close()

    def _abort(self) -> None:
        self._closing = True
        if self.transport is not None:
            self.transport.abort()

    @property
    def busy(self) -> bool:
        return self._busy


def _forget_body(ex: Exchange, response: Response) -> None:
    """Keep the answered response without its body: a trace does not show it, and
    what a trace keeps costs every request its memory traffic (a kilobyte a
    request is a quarter of a megabyte over the ring: colder caches for all
    requests). A response whole from the cache (it has the entry's
    pre-rendered head) is left alone, as the entry holds its body anyway. The
    Content-Length it was framed with stays."""
    headers = response.headers
    body = response.body
    if (
        isinstance(body, bytes)
        and "content-length" not in headers
        and response.status not in _NO_BODY_STATUSES
    ):
        headers = headers.add("Content-Length", str(len(body)))
    ex.response = Response(response.status, headers, None, response.reason)


class EdgeServer:
    """The edge listener plus its pipeline. ``start`` binds; ``stop`` drains."""

    def __init__(
        self,
        config: Config,
        *,
        origins: OriginClient | None = None,
        invoker: Invoker | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.config = config
        self.functions = invoker
        self.origins = origins or OriginClients()
        self.pipeline = Pipeline(config, self.origins, invoker=invoker, clock=clock)
        self.connections: set[_Connection] = set()
        self.stopping = False
        self.idle_timeout = VIEWER_IDLE_TIMEOUT
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None
        # What the edge records outlives the pipeline it was made from: a
        # reload replaces the pipeline, not these.
        self.metrics = EdgeMetrics()
        self.traces = TraceRing(config.inspector.requests)
        self.access_log: AccessLog | None = None
        if config.access_log is not None:
            self.access_log = AccessLog(config.access_log, lambda: self.config.distribution)
        self._requests = self.metrics.requests
        self._trace = self.traces.add

    def replace_pipeline(self, pipeline: Pipeline, functions: Invoker | None) -> Pipeline:
        """Answer new requests with ``pipeline`` (a reload's next generation); returns
        the one it replaces. Exchanges already started finish on theirs."""
        old = self.pipeline
        self.pipeline = pipeline
        self.config = pipeline.config
        self.functions = functions
        return old

    def in_use(self, pipeline: Pipeline) -> bool:
        """Whether an exchange of ``pipeline`` is still being answered."""
        return any(conn.pipeline is pipeline for conn in self.connections)

    def record(self, ex: Exchange) -> None:
        """Count, trace and log one answered exchange: a few references and
        counters, nothing copied or formatted (that happens when asked)."""
        ex.finished = perf_counter()
        response = ex.response
        key = (ex.sent_status, ex.x_cache)
        requests = self._requests
        requests[key] = requests.get(key, 0) + 1
        if response is not None and response.head is None and response.body is not None:
            _forget_body(ex, response)
        self._trace(ex)
        if ex.origin_fetches or ex.hook_runs or ex.aborted:
            self.metrics.observe(ex, key)
        if self.access_log is not None:
            self.access_log.add(ex)

    @property
    def counters(self) -> dict[str, int]:
        """Requests answered, by access-log result type (``Hit``, ``Miss``, ...)."""
        return self.metrics.by_result_type()

    @property
    def store(self) -> CacheStore:
        """The cache of the pipeline now in use."""
        return self.pipeline.store

    @property
    def connection_count(self) -> int:
        return len(self.connections)

    async def start(self, host: str | None = None, port: int | None = None) -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        host = host if host is not None else self.config.listen.host
        port = port if port is not None else self.config.listen.port
        if self.access_log is not None:
            try:
                await self.access_log.start()
            except OSError as exc:
                source = str(self.config.source) if self.config.source else None
                raise ConfigError(
                    f"can't write the access log {str(self.access_log.path)!r}: {exc.strerror}",
                    file=source,
                    path="access_log",
                ) from None
        self._server = await loop.create_server(
            lambda: _Connection(self), host, port, reuse_address=True, backlog=2048
        )
        sock: socket.socket = self._server.sockets[0]
        address = sock.getsockname()
        self._sweeper = asyncio.create_task(self._close_idle())
        return str(address[0]), int(address[1])

    async def _close_idle(self) -> None:
        """Close keep-alive connections that have been idle too long (one sweep, not a
        timer per request, to keep the hot path free of timer churn)."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(min(self.idle_timeout / 4, 1.0))
            deadline = loop.time() - self.idle_timeout
            for conn in list(self.connections):
                if not conn.busy and conn.last_active < deadline:
                    conn._close()

    async def stop(self, grace: float = 10.0) -> None:
        """Stop listening, let in-flight requests finish (up to ``grace`` s), close the rest."""
        self.stopping = True
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            if not conn.busy:
                conn._close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while any(c.busy for c in self.connections) and loop.time() < deadline:
            await asyncio.sleep(0.05)
        for conn in list(self.connections):
            conn._abort()
        if self._server is not None:
            await self._server.wait_closed()
        await self.origins.close()
        if self.access_log is not None:
            # After the last connections are gone, so their lines are in it.
            await self.access_log.close()
