"""The origin behind bench/run.py's proxy cases: fixed responses from pre-rendered bytes.

Same paths, bodies and headers as origin.py (Cache-Control, Content-Type,
Content-Length, Date, Server), but an asyncio protocol instead of aiohttp.web:
on core 1, beside wrk, it costs a fraction of what the proxies under test do,
so that a fast proxy is not held back by its origin (with origin.py, core 1
was 80-93% busy in the edge's miss case). Both proxies fetch from it.

Requests are GETs without a body, one after another on keep-alive
connections (pipelining works too); anything else gets a 400 and a close.

    python bench/peers/static_origin.py --port 9000
"""

from __future__ import annotations

import asyncio
import time
from email.utils import formatdate

from origin import BODIES, HEADERS, main, until_stopped

__all__ = ["serve"]

_BAD = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
_MAX_HEAD = 65_536
_NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"


class _Responses:
    """Each path's response, rendered again when the second (and Date) changes."""

    def __init__(self) -> None:
        self.count = 0
        self._second = -1
        self._rendered: dict[bytes, bytes] = {}

    def get(self, path: bytes) -> bytes:
        second = int(time.time())
        if second != self._second:
            self._second = second
            date = formatdate(second, usegmt=True)
            self._rendered = {p.encode(): _render(body, date) for p, body in BODIES.items()}
        if path == b"/_count":
            text = str(self.count).encode()
            return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(text), text)
        rendered = self._rendered.get(path)
        if rendered is None:
            return _NOT_FOUND
        self.count += 1
        return rendered


def _render(body: bytes, date: str) -> bytes:
    fields = {**HEADERS, "Content-Length": str(len(body)), "Date": date, "Server": "static"}
    head = "".join(f"{name}: {value}\r\n" for name, value in fields.items())
    return b"HTTP/1.1 200 OK\r\n" + head.encode() + b"\r\n" + body


class _Connection(asyncio.Protocol):
    def __init__(self, responses: _Responses) -> None:
        self._responses = responses
        self._buffer = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's, duck-typed

    def data_received(self, data: bytes) -> None:
        assert self._transport is not None
        buffer = self._buffer + data
        out: list[bytes] = []
        while (end := buffer.find(b"\r\n\r\n")) >= 0:
            head, buffer = buffer[:end], buffer[end + 4 :]
            line, _, fields = head.partition(b"\r\n")
            parts = line.split(b" ")
            lowered = fields.lower()
            if (
                len(parts) != 3
                or parts[0] != b"GET"
                or b"content-length:" in lowered
                or b"transfer-encoding:" in lowered
            ):
                self._transport.write(b"".join(out) + _BAD)
                self._transport.close()
                return
            out.append(self._responses.get(parts[1].partition(b"?")[0]))
        if len(buffer) > _MAX_HEAD:
            out.append(_BAD)
            self._transport.close()
        self._buffer = buffer
        if out:
            self._transport.write(b"".join(out))


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    responses = _Responses()
    server = await loop.create_server(
        lambda: _Connection(responses), "127.0.0.1", port, backlog=1024
    )
    try:
        await until_stopped(port)
    finally:
        server.close()


if __name__ == "__main__":
    main(serve, __doc__)
