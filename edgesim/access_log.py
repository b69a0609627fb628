"""CloudFront's standard access log, written to a local file (``access_log:`` in the config).

The format is the standard (legacy) log file format of AccessLogs.md
(cloudfront-semantics.md section 8): a ``#Version: 1.0`` and a ``#Fields:``
line, then one line per request with the 33 fields below, tab-separated,
``-`` for an empty value, and bytes 0-32 and 127-255 plus ``<>"#%{}|\\^~[]``,
backtick, apostrophe and space %-encoded.

On the request path the server only appends the finished Exchange to a
list; a background task formats the lines about once a second and writes
them from a worker thread, so neither formatting nor disk I/O delays a
response. Lines are written when the edge stops, too.

Choices where CloudFront's behavior does not carry over to one local file:

- One plain-text file, appended to, instead of gzipped hourly files in a
  bucket; the two header lines are written when the file is new or empty.
- Lines are in the order requests finished (CloudFront promises no order).
- ``cs(Host)`` is the distribution's domain name and ``x-edge-location`` its
  ``pop``; ``cs-protocol`` is ``http`` and the TLS fields ``-`` (the edge
  listens on plain HTTP), unless the viewer simulation (edgesim.viewer) made
  the viewer an HTTPS one: then ``https`` and its simulated version and
  cipher. ``c-ip`` is the simulated viewer's address when there is one.
- ``cs-bytes`` is the request line and header fields as received (less the
  viewer simulation's own header, which the edge removes first) and the body
  by its Content-Length (a chunked upload counts its head only).
- A response cut off (the viewer went away, or the origin broke off)
  logs ``x-edge-result-type`` ``Error`` with the result the response had as
  ``x-edge-response-result-type``, as CloudFront does; status ``000`` if the
  head had not been sent.
- If the file can't be written (disk full), the lines are kept and tried
  again, up to 100,000 of them; beyond that the oldest are dropped and the
  count is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from edgesim.config.schema import AccessLogSettings, Distribution
from edgesim.models import Exchange
from edgesim.trace import wall_time

__all__ = ["FIELDS", "AccessLog", "encode_field", "log_line"]

log = logging.getLogger("edgesim.access_log")

FIELDS = (
    "date",
    "time",
    "x-edge-location",
    "sc-bytes",
    "c-ip",
    "cs-method",
    "cs(Host)",
    "cs-uri-stem",
    "sc-status",
    "cs(Referer)",
    "cs(User-Agent)",
    "cs-uri-query",
    "cs(Cookie)",
    "x-edge-result-type",
    "x-edge-request-id",
    "x-host-header",
    "cs-protocol",
    "cs-bytes",
    "time-taken",
    "x-forwarded-for",
    "ssl-protocol",
    "ssl-cipher",
    "x-edge-response-result-type",
    "cs-protocol-version",
    "fle-status",
    "fle-encrypted-fields",
    "c-port",
    "time-to-first-byte",
    "x-edge-detailed-result-type",
    "sc-content-type",
    "sc-content-len",
    "sc-range-start",
    "sc-range-end",
)
HEADER = "#Version: 1.0\n#Fields: " + " ".join(FIELDS) + "\n"

_FLUSH_INTERVAL = 1.0  # seconds between writes
_MAX_KEPT_LINES = 100_000  # lines kept while the file can't be written
_UNSAFE_ASCII = "<>\"#%{}|\\^~[]`'"
_UNSAFE = re.compile("[\x00-\x20\x7f-\U0010ffff" + re.escape(_UNSAFE_ASCII) + "]")
# Header values arrive as latin-1 text, one character per byte on the wire:
# characters up to U+00FF are that byte, %-encoded by a translate table.
_PERCENT = {c: f"%{c:02X}" for c in range(256) if c <= 32 or c >= 127 or chr(c) in _UNSAFE_ASCII}
# Everything unsafe but "%" and space, which the common case replaces in C.
_UNSAFE_REST = re.compile(
    "[\x00-\x1f\x7f-\U0010ffff" + re.escape(_UNSAFE_ASCII[:4] + _UNSAFE_ASCII[5:]) + "]"
)
_WIDE = re.compile("[\u0100-\U0010ffff]")
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/")


def _utf8(match: re.Match[str]) -> str:
    return "".join(f"%{byte:02X}" for byte in match.group().encode("utf-8"))


def encode_field(value: str | None) -> str:
    """A field value as CloudFront writes it: ``-`` when empty, unsafe bytes %-encoded."""
    if not value:
        return "-"
    if _UNSAFE.search(value) is None:
        return value
    if _UNSAFE_REST.search(value) is None:  # only spaces and percent signs (user agents)
        return value.replace("%", "%25").replace(" ", "%20")
    encoded = value.translate(_PERCENT)
    # Beyond latin-1 (a URI a function set, say): its UTF-8 bytes.
    return encoded if encoded.isascii() else _WIDE.sub(_utf8, encoded)


class _Clock:
    """``date`` and ``time`` fields, formatted once per second."""

    def __init__(self) -> None:
        self._second = -1
        self._fields = ("", "")

    def __call__(self, wall: float) -> tuple[str, str]:
        second = int(wall)
        if second != self._second:
            self._second = second
            stamp = time.gmtime(second)
            self._fields = (time.strftime("%Y-%m-%d", stamp), time.strftime("%H:%M:%S", stamp))
        return self._fields


def log_line(
    ex: Exchange,
    distribution: Distribution,
    *,
    include_cookies: bool = False,
    clock: Callable[[float], tuple[str, str]] | None = None,
) -> str:
    """The access-log line for one answered exchange (no newline)."""
    viewer = ex.viewer_request
    headers = viewer.headers
    response = ex.response
    finished = ex.finished or ex.started
    date, hms = (clock or _Clock())(wall_time(finished))
    status = ex.sent_status
    result = "Error" if ex.aborted else ex.result_type
    content_type = content_len = range_start = range_end = None
    if response is not None and status:
        out = response.headers
        content_type = out.get("content-type")
        content_len = out.get("content-length")
        if content_len is None and isinstance(response.body, bytes):
            content_len = str(len(response.body))
        match = _CONTENT_RANGE.match(out.get("content-range") or "")
        if match is not None:
            range_start, range_end = match.groups()
    # A simulated HTTPS viewer (edgesim.viewer) logs its protocol and cipher.
    tls = getattr(getattr(ex.viewer, "location", None), "tls", None)
    protocol, ssl_protocol, ssl_cipher = "http", "-", "-"
    if tls:
        protocol = "https"
        ssl_protocol, _, rest = tls.partition(":")
        ssl_cipher = rest.partition(":")[0] or "-"
    fields = (
        date,
        hms,
        encode_field(distribution.pop),
        str(ex.bytes_out),
        viewer.client_ip,
        encode_field(viewer.method),
        encode_field(distribution.domain),
        encode_field(viewer.path),
        str(status) if status else "000",
        encode_field(headers.get("referer")),
        encode_field(headers.get("user-agent")),
        encode_field(viewer.query),
        encode_field(headers.get("cookie")) if include_cookies else "-",
        result,
        ex.request_id,
        encode_field(headers.get("host")),
        protocol,
        str(viewer.size()),
        f"{finished - ex.started:.3f}",
        encode_field(headers.get("x-forwarded-for")),
        encode_field(ssl_protocol),
        encode_field(ssl_cipher),
        ex.result_type,
        f"HTTP/{viewer.http_version}",
        "-",
        "-",
        str(viewer.client_port),
        f"{(ex.first_byte or finished) - ex.started:.3f}",
        ex.detailed_result_type,
        encode_field(content_type),
        encode_field(content_len),
        range_start or "-",
        range_end or "-",
    )
    return "\t".join(fields)


class AccessLog:
    """The access log of one edge: ``add`` on the request path, the rest in the background.

    ``distribution`` is read when lines are formatted, so a reloaded config's
    domain and POP apply from then on.
    """

    def __init__(
        self, settings: AccessLogSettings, distribution: Callable[[], Distribution]
    ) -> None:
        self.settings = settings
        self.path: Path = settings.path
        self._distribution = distribution
        self._pending: list[Exchange] = []
        self.add: Callable[[Exchange], None] = self._pending.append
        self._unwritten: list[str] = []
        self._file: TextIO | None = None
        self._task: asyncio.Task[None] | None = None
        self._clock = _Clock()
        self._lock = asyncio.Lock()
        self._stop = asyncio.Event()
        self.dropped = 0

    async def start(self) -> None:
        """Open (create) the file; raises OSError if it can't be written."""
        loop = asyncio.get_running_loop()
        self._file = await loop.run_in_executor(None, self._open)
        self._task = asyncio.create_task(self._run())

    def _open(self) -> TextIO:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        file = self.path.open("a", encoding="utf-8", newline="\n")
        try:
            if file.tell() == 0:
                file.write(HEADER)
                file.flush()
        except OSError:
            with contextlib.suppress(OSError):
                file.close()
            raise
        return file

    async def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), _FLUSH_INTERVAL)
            await self.flush()

    async def flush(self) -> None:
        """Format what was added since the last flush and write it (in a thread;
        one write at a time, so lines keep their order)."""
        async with self._lock:
            await self._flush()

    async def _flush(self) -> None:
        batch = self._pending.copy()
        self._pending.clear()
        if batch:
            distribution = self._distribution()
            cookies = self.settings.include_cookies
            for ex in batch:
                try:
                    line = log_line(ex, distribution, include_cookies=cookies, clock=self._clock)
                except Exception:  # a bug here must not stop the log (or the edge)
                    log.exception("access log: can't format request %s", ex.request_id)
                    self.dropped += 1
                    continue
                self._unwritten.append(line + "\n")
        if not self._unwritten or self._file is None:
            return
        lines, self._unwritten = self._unwritten, []
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, self._write, lines)
        except OSError as error:
            log.error("access log %s: %s; keeping %d lines to retry", self.path, error, len(lines))
            self._unwritten = lines + self._unwritten
            excess = len(self._unwritten) - _MAX_KEPT_LINES
            if excess > 0:
                del self._unwritten[:excess]
                self.dropped += excess
                log.error("access log %s: dropped %d lines", self.path, excess)

    def _write(self, lines: list[str]) -> None:
        assert self._file is not None
        self._file.write("".join(lines))
        self._file.flush()

    async def close(self) -> None:
        """Write everything still pending and close the file."""
        if self._task is not None:
            # Not cancelled: a write in its thread would go on without it.
            self._stop.set()
            await self._task
            self._task = None
        await self.flush()
        if self._file is not None:
            file, self._file = self._file, None
            with contextlib.suppress(OSError):
                file.close()
