"""One keep-alive HTTP/1.1 connection to an origin, and the body stream it feeds.

``OriginConnection`` is an asyncio protocol that carries one exchange at a
time. Bytes go through aiohttp's C response parser (llhttp) into an aiohttp
``StreamReader``, whose high/low water marks pause and resume reading from the
socket, so a slow consumer holds back the origin instead of growing memory.

Life of a connection::

    IDLE --start()--> HEAD --final head--> BODY --message complete--> IDLE (pooled)
                        \\                    \\--> CLOSED (close, error, abandon)
                         \\--> CLOSED

A connection returns to its pool (``on_reusable``) as soon as the origin has
sent the whole message and keep-alive allows, even while the consumer is
still reading the last buffered bytes: the StreamReader owns those bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from aiohttp._http_parser import HttpResponseParser
from aiohttp.base_protocol import BaseProtocol
from aiohttp.streams import StreamReader

from edgesim.errors import OriginError, OriginInvalidResponse, OriginReadError, OriginTimeout

__all__ = ["READ_BUFFER", "OriginBody", "OriginConnection"]

# StreamReader pauses the socket above 2x this and resumes below it.
READ_BUFFER = 2**17
# Origin response head limits; CloudFront allows ~20 KB of response headers.
_MAX_FIELD = 20_480
_MAX_HEADERS = 256

IDLE, HEAD, BODY, CLOSED = range(4)


class _ConnectionGone(Exception):
    """Writing failed because the connection is gone; the head future says why."""


class OriginConnection(BaseProtocol):
    """An origin connection; ``start`` begins an exchange and returns the head future."""

    __slots__ = (
        "_eof_deferred",
        "_head",
        "_head_only",
        "_idle_parser",
        "_keep_alive",
        "_last_rx",
        "_payload",
        "_read_timeout",
        "_response_parser",
        "_state",
        "_timer",
        "_writing",
        "closed",
        "idle_since",
        "key",
        "on_reusable",
        "received",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        key: tuple[str, str, int],
        on_reusable: Callable[[OriginConnection], None],
    ) -> None:
        super().__init__(loop)
        self.key = key
        self.on_reusable = on_reusable
        self.closed = False
        self.received = 0  # bytes received during the current exchange
        self.idle_since = 0.0
        self._state = IDLE
        self._head: asyncio.Future[tuple[Any, StreamReader]] | None = None
        self._payload: StreamReader | None = None
        self._keep_alive = False
        self._writing = False
        self._eof_deferred = False
        self._read_timeout = 30.0
        self._last_rx = 0.0
        self._timer: asyncio.TimerHandle | None = None
        # The same parser as BaseProtocol._parser, typed loosely: it is Cython.
        self._response_parser: Any = None
        self._idle_parser: Any = None  # kept from the last GET for the next one
        self._head_only = False

    @property
    def reading_paused(self) -> bool:
        """Flow control holds the socket because the consumer is behind."""
        return self._reading_paused

    @property
    def reusable(self) -> bool:
        transport = self.transport
        return (
            self._state == IDLE
            and not self.closed
            and transport is not None
            and not transport.is_closing()
        )

    # -- the exchange, driven by the client --------------------------------

    def start(
        self, *, head_only: bool, read_timeout: float
    ) -> asyncio.Future[tuple[Any, StreamReader]]:
        """Begin an exchange; the future resolves to (message, payload) or an OriginError."""
        assert self._state == IDLE, "connection is busy"
        loop = self._loop
        parser = self._idle_parser
        if parser is None or head_only:
            parser = HttpResponseParser(
                self,
                loop,
                READ_BUFFER,
                max_line_size=_MAX_FIELD,
                max_field_size=_MAX_FIELD,
                max_headers=_MAX_HEADERS,
                response_with_body=not head_only,
                read_until_eof=True,  # a body without framing runs until the origin closes
                auto_decompress=False,  # the edge passes bytes through untouched
            )
        self._idle_parser = None
        self._parser = self._response_parser = parser
        self._head_only = head_only
        self._head = head = loop.create_future()
        self._state = HEAD
        self._payload = None
        self._keep_alive = False
        self.received = 0
        self._read_timeout = read_timeout
        self._last_rx = loop.time()
        if self._timer is None:
            self._timer = loop.call_at(self._last_rx + read_timeout, self._on_timer)
        return head

    def write(self, data: bytes | list[bytes]) -> None:
        transport = self.transport
        if transport is None or self._state == CLOSED:
            raise _ConnectionGone
        if isinstance(data, bytes):
            transport.write(data)
        else:
            transport.writelines(data)

    async def drain(self) -> None:
        """Wait until the transport's write buffer is low; progress resets the read timer."""
        if self._paused and self.transport is not None:
            waiter = self._drain_waiter = self._loop.create_future()
            try:
                await waiter
            except ConnectionError as exc:
                raise _ConnectionGone from exc
        if self.transport is None or self._state == CLOSED:
            raise _ConnectionGone
        self._last_rx = self._loop.time()

    def writing(self, active: bool) -> None:
        """Mark a streamed request body in progress: a response meanwhile disables keep-alive."""
        self._writing = active

    def abandon(self, owner: object) -> None:
        """Close the connection mid-exchange (consumer gave up, request body failed, cancel).

        ``owner`` is the exchange's head future or payload; if the connection
        has moved on from that exchange (pooled, reused or closed) this is a no-op.
        """
        if owner is None or (owner is not self._head and owner is not self._payload):
            return
        head = self._head
        if head is not None and head.done() and not head.cancelled():
            head.exception()  # mark retrieved: nobody will await it now
        self._state = CLOSED
        self._head = None
        self._payload = None
        self.close()

    def close(self) -> None:
        self.closed = True
        self._cancel_timer()
        if self.transport is not None:
            self.transport.close()

    # -- asyncio protocol callbacks -----------------------------------------

    def data_received(self, data: bytes) -> None:
        state = self._state
        if state not in (HEAD, BODY):
            if data and state == IDLE:
                # Bytes nobody asked for: framing is broken, never reuse this.
                self.close()
            return
        if data:
            self.received += len(data)
            self._last_rx = self._loop.time()
        try:
            messages, upgraded, _tail = self._response_parser.feed_data(data)
        except Exception as exc:
            self._fail(exc)
            return
        for message, payload in messages:
            if self._state != HEAD:
                self._fail(OriginInvalidResponse("origin sent a response nobody asked for"))
                return
            if message.code < 200:
                continue  # 100 Continue and other interim responses: wait for the final one
            head = self._head
            assert head is not None
            if head.done():  # the fetch was cancelled
                self.abandon(head)
                return
            self._state = BODY
            self._payload = payload
            # An origin that answers before reading all of a streamed body may
            # not have consumed it: close afterwards rather than desync.
            self._keep_alive = not (message.should_close or self._writing)
            head.set_result((message, payload))
        if upgraded:
            self._fail(OriginInvalidResponse("origin switched protocols"))
        elif self._state == BODY and self._payload is not None and self._payload.is_eof():
            self._complete()

    def pause_reading(self) -> None:
        if self._parser is not None:
            super().pause_reading()

    def resume_reading(self, resume_parser: bool = True) -> None:
        # StreamReader calls this on every read; skip the parser round trip
        # unless reading is actually paused.
        if not self._reading_paused:
            return
        super().resume_reading(resume_parser)
        self._last_rx = self._loop.time()
        if self._eof_deferred and not self.reading_paused:
            self._eof_deferred = False
            self._feed_eof()

    def connection_lost(self, exc: BaseException | None) -> None:
        self.closed = True
        self._cancel_timer()
        super().connection_lost(exc)
        state = self._state
        if state == HEAD:
            if self.received:
                self._fail(OriginInvalidResponse("origin closed the connection mid-head"))
            else:
                self._fail(OriginReadError("origin closed the connection without responding"))
        elif state == BODY:
            if self._reading_paused:
                # Bytes still wait in the paused parser; judge the end once
                # the consumer has drained them (resume_reading).
                self._eof_deferred = True
            else:
                self._feed_eof()

    # -- internals ----------------------------------------------------------

    def _feed_eof(self) -> None:
        payload = self._payload
        try:
            if self._response_parser is not None:
                self._response_parser.feed_eof()
        except Exception as exc:
            self._fail(exc)
            return
        if payload is not None and not payload.is_eof():
            self._fail(OriginReadError("origin closed the connection mid-body"))
        self._state = CLOSED

    def _complete(self) -> None:
        """The origin sent the whole message: pool the connection or close it.

        The read timer is left running (it re-arms only while an exchange is
        in progress) and a GET's parser is kept for the next exchange: llhttp
        starts a new message after a complete one, and a busy connection then
        costs neither a timer nor a parser per request.
        """
        if not self._head_only:
            self._idle_parser = self._response_parser
        self._parser = self._response_parser = None
        self._payload = None
        self._head = None
        if self._keep_alive and not self.closed:
            self._state = IDLE
            self.idle_since = self._last_rx
            self.on_reusable(self)
        else:
            self._state = CLOSED
            self.close()

    def _fail(self, exc: Exception) -> None:
        """End the exchange with an OriginError delivered to whoever waits."""
        state = self._state
        if state == HEAD:
            error = exc if isinstance(exc, OriginError) else OriginInvalidResponse(str(exc))
            head = self._head
            if head is not None and not head.done():
                head.set_exception(error)
        elif state == BODY and self._payload is not None:
            if not isinstance(exc, OriginError):
                exc = OriginReadError(f"origin sent a broken body: {exc}")
            self._payload.set_exception(exc)
        self._state = CLOSED
        self.close()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_timer(self) -> None:
        # One timer per exchange, moved forward lazily instead of being
        # rescheduled on every packet.
        self._timer = None
        state = self._state
        if state not in (HEAD, BODY):
            return
        now = self._loop.time()
        if self._reading_paused:
            self._last_rx = now  # the consumer is slow, not the origin
        deadline = self._last_rx + self._read_timeout
        if now < deadline:
            self._timer = self._loop.call_at(deadline, self._on_timer)
        elif state == HEAD:
            self._fail(OriginTimeout(f"no response head within {self._read_timeout:g} s"))
        else:
            self._fail(OriginReadError(f"origin body stalled for {self._read_timeout:g} s"))


class OriginBody:
    """The streamed body of an origin response (a ``models.BodyStream``).

    Yields chunks as the parser delivers them. Raises ``OriginReadError`` if
    the origin breaks off, stalls past the read timeout, or sends bad framing.
    ``aclose`` before the end closes the connection instead of pooling it.
    """

    __slots__ = ("_conn", "_consumed", "_payload", "length")

    def __init__(self, conn: OriginConnection, payload: StreamReader, length: int | None) -> None:
        self.length = length
        self._conn = conn
        self._payload = payload
        self._consumed = 0

    @property
    def buffered(self) -> int:
        """Bytes received from the origin that the consumer has not read yet."""
        return self._payload.total_bytes - self._consumed

    def __aiter__(self) -> OriginBody:
        return self

    async def __anext__(self) -> bytes:
        payload = self._payload
        while True:
            try:
                data, end_of_chunk = await payload.readchunk()
            except OriginError:
                raise
            except Exception as exc:
                self._conn.abandon(payload)
                raise OriginReadError(f"origin body failed: {exc}") from exc
            if data:
                self._consumed += len(data)
                return data
            if not end_of_chunk:  # (b"", False) is StreamReader's end of stream
                raise StopAsyncIteration

    async def aclose(self) -> None:
        self._conn.abandon(self._payload)

    def __del__(self) -> None:
        # A body dropped unread must not pin its connection open forever.
        with contextlib.suppress(RuntimeError):  # the event loop is already closed
            self._conn.abandon(self._payload)
