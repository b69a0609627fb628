"""Messages between the proxy and the processes that run edge functions.

This module is imported on both sides of the sandbox wall, so it uses the
standard library only.

Two channels carry JSON objects, each with a type under the key ``"t"``:

* **Worker channel** (one per execution environment): an ``AF_UNIX``
  ``SOCK_STREAM`` socketpair. A frame is a 4-byte big-endian length and that
  many bytes of UTF-8 JSON. Events and results can be megabytes, hence a
  stream with explicit framing.

  ====================  =========================================================
  proxy -> worker       ``invoke {id, timeout_ms, event}``
  worker -> proxy       ``ready {init_ms, rss_kb, tmp}`` once, after the handler
                        module imported; or ``init_error {error, init_ms, rss_kb}``
                        (the worker then exits)
  worker -> proxy       ``result {id, duration_ns, rss_kb, payload | error}``,
                        one per ``invoke`` (the run's Duration, in integer
                        nanoseconds: a float's text costs the stdlib encoder
                        a quarter of a small result)
  ====================  =========================================================

* **Queue** (Python environments): an ``AF_UNIX``
  ``SOCK_SEQPACKET`` socketpair carrying ``invoke`` frames (length prefix
  included, one per packet) that the proxy wrote while the worker ran an
  earlier invocation. The worker takes the next one when it ends an
  invocation; the proxy holds the worker's end too, and takes back what the
  worker has not taken when it must run elsewhere (a packet is read whole, by
  one side or the other: no invocation is both run and taken back). A frame
  over ``QUEUED_MAX`` is not queued. The worker ends each exchange's output
  with ``OUTPUT_MARK``, so that the proxy can tell whose output is whose when
  one follows another without a pause. (A CloudFront Functions worker has no
  queue: its queued invocations wait on the channel, and it logs in its
  answers.)

* **Control channel** (one per pool, to its zygote): an ``AF_UNIX``
  ``SOCK_SEQPACKET`` socketpair, one JSON object per packet, so a spawn request
  and the file descriptors it hands over (``SCM_RIGHTS``) arrive together.

  ====================  =========================================================
  proxy -> zygote       ``spawn {spec}`` + fds ``[channel, output]``
  zygote -> proxy       ``hello {pid}`` once; ``spawned {pid}`` or
                        ``spawn_failed {error}`` per spawn, in order;
                        ``exit {pid, status}`` (a ``waitpid`` status) per worker
  ====================  =========================================================

Anything else on a worker channel (a bad length, bytes that are not a JSON
object, a message nobody asked for) is a protocol error: the proxy kills that
worker.

Either end may write with a faster encoder and read with a faster parser
(orjson). The two read and write the same JSON but for one thing: the fast
parser reads an integer past 64 bits as a float. The fast encoder refuses
such integers (and lone surrogates), so a frame that it refused is written by
the standard library and says so (``"strict": true``); a reader that parsed
it the fast way parses it again with the standard library. (The Python
runtime writes with the standard library alone, as Lambda's runtime does, so
an integer past 64 bits that a Python function returns reaches the proxy as
a float.)
"""

from __future__ import annotations

import contextlib
import json
import json.encoder
import os
import select
import socket
import struct
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = [
    "CONTROL_MAX",
    "MAX_FRAME",
    "OUTPUT_MARK",
    "QUEUED_MAX",
    "STRICT",
    "BlockingChannel",
    "FrameDecoder",
    "ProtocolError",
    "decode",
    "dumps_ascii",
    "encode",
    "recv_control",
    "send_control",
]

HEADER = struct.Struct(">I")
QUEUED_MAX = 128 * 1024  # the largest frame put on the queue (a packet)
# Ends an exchange's output (fds 1 and 2) before its answer (the queue, above).
OUTPUT_MARK = b"\x00\x1eedgesim:end-of-output\x1e\x00"
# Lambda's synchronous invoke payload limit is 6 MB each way (gettingstarted-limits.md);
# the frame cap leaves room for JSON escaping of such a payload.
MAX_FRAME = 64 * 1024 * 1024
CONTROL_MAX = 64 * 1024
# Marks a frame the fast encoder refused (module docstring).
STRICT = "strict"

Message = dict[str, Any]


class ProtocolError(Exception):
    """A peer broke the framing or sent something that is not a message."""


def _not_serializable(obj: object) -> object:
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


class _Encoder:
    """``json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))``, built once.

    ``JSONEncoder.encode`` makes a new C encoder (and a closure) on every
    call, which costs more than encoding a small message; this keeps one.
    It first encodes without the circular-reference check (an eighth of the
    C encoder's work for a small message); a cycle then recurses until
    ``RecursionError``, and the message is encoded again with the check, so
    what is raised is the standard library's ("Circular reference detected").
    """

    __slots__ = ("_checked", "_fast", "_markers")

    _fast: Callable[[Any, int], Any]
    _checked: Callable[[Any, int], Any]

    def __init__(self, default: Callable[[Any], Any] | None, ascii: bool = False) -> None:
        self._markers: dict[int, Any] = {}
        make = getattr(json.encoder, "c_make_encoder", None)
        if make is None:  # a Python without the _json accelerator
            slow = json.JSONEncoder(ensure_ascii=ascii, separators=(",", ":"), default=default)
            self._fast = self._checked = lambda obj, _: (slow.encode(obj),)
            return
        self._fast, self._checked = (
            make(
                markers,
                default or _not_serializable,
                json.encoder.encode_basestring_ascii if ascii else json.encoder.encode_basestring,
                None,  # indent
                ":",
                ",",
                False,  # sort_keys
                False,  # skipkeys
                True,  # allow_nan, as JSONEncoder
            )
            for markers in (None, self._markers)
        )

    def __call__(self, msg: Any) -> str:
        try:
            return "".join(self._fast(msg, 0))
        except RecursionError:
            pass
        try:
            return "".join(self._checked(msg, 0))
        except BaseException:
            self._markers.clear()  # a failed encode leaves its markers
            raise


_ENCODERS: dict[Callable[[Any], Any] | None, _Encoder] = {}
_ASCII = _Encoder(None, ascii=True)
_DECODER = json.JSONDecoder()


def dumps_ascii(obj: Any) -> str:
    """Compact ASCII JSON text of ``obj`` (lone surrogates escaped), with a kept encoder."""
    return _ASCII(obj)


def encode(
    msg: Mapping[str, Any],
    *,
    default: Callable[[Any], Any] | None = None,
    dumps: Callable[[Any], bytes] | None = None,
) -> bytes:
    """One frame. Raises ``TypeError``/``ValueError`` when ``msg`` is not JSON-serializable.

    ``dumps`` is a faster encoder to UTF-8 JSON to try first (without ``default``);
    what it refuses with ``TypeError`` is encoded here, marked ``strict`` (see
    the module docstring), so that it reads the same whichever parser reads it."""
    body = None
    if dumps is not None and default is None:
        try:
            body = dumps(msg)
        except TypeError:
            msg = {**msg, STRICT: True}
    if body is None:
        encoder = _ENCODERS.get(default)
        if encoder is None:
            encoder = _ENCODERS[default] = _Encoder(default)
        body = encoder(msg).encode("utf-8", "surrogatepass")
    if len(body) > MAX_FRAME:
        raise ValueError(f"message of {len(body)} bytes is over the {MAX_FRAME}-byte frame limit")
    return HEADER.pack(len(body)) + body


def decode(body: bytes, loads: Callable[[bytes], Any] | None = None) -> Message:
    """A frame body as a message, or ``ProtocolError``.

    ``loads`` is a faster JSON parser to try first; whatever it refuses, and
    a frame marked ``strict``, is parsed here, so the messages are the same."""
    if loads is not None:
        try:
            msg = loads(body)
        except ValueError:
            pass
        else:
            if not isinstance(msg, dict) or not isinstance(msg.get("t"), str):
                raise ProtocolError("frame is not one message object")
            if msg.get(STRICT) is not True:
                return msg
    try:
        text = body.decode("utf-8", "surrogatepass")
        msg, end = _DECODER.raw_decode(text)
    except ValueError as exc:  # includes UnicodeDecodeError and JSONDecodeError
        raise ProtocolError(f"frame is not JSON: {exc}") from None
    if end != len(text) or not isinstance(msg, dict) or not isinstance(msg.get("t"), str):
        raise ProtocolError("frame is not one message object")
    return msg


class FrameDecoder:
    """Turns a byte stream into messages; keeps partial frames between calls."""

    __slots__ = ("_buf", "_loads")

    def __init__(self, loads: Callable[[bytes], Any] | None = None) -> None:
        self._buf = bytearray()
        self._loads = loads  # see ``decode``

    def feed(self, data: bytes) -> list[Message]:
        buf = self._buf
        if not buf and len(data) >= HEADER.size:
            # Fast path: exactly one whole frame, the usual case for a round trip.
            (size,) = HEADER.unpack_from(data)
            if size + HEADER.size == len(data) and size <= MAX_FRAME:
                return [decode(data[HEADER.size :], self._loads)]
        buf += data
        out: list[Message] = []
        while len(buf) >= HEADER.size:
            (size,) = HEADER.unpack_from(buf)
            if size > MAX_FRAME:
                raise ProtocolError(f"frame length {size} is over the limit")
            end = HEADER.size + size
            if len(buf) < end:
                break
            body = bytes(buf[HEADER.size : end])
            del buf[:end]
            out.append(decode(body, self._loads))
        return out


class BlockingChannel:
    """The worker's end of its channel: blocking reads and writes of whole frames.

    It waits for a frame in ``poll`` rather than in ``recv``: when the proxy
    reads the worker's answer, the kernel wakes everything sleeping on the
    socket to say it is writable again, a ``recv`` sleeper included, which
    then finds nothing and sleeps again (two context switches per
    invocation, for nothing); ``poll`` is woken only for what it waits for.
    """

    def __init__(self, sock: socket.socket, queue: socket.socket | None = None) -> None:
        """``queue``: the worker's end of its queue (module docstring), if it has one."""
        self._sock = sock
        self._fd = sock.fileno()
        self._queue = queue
        self._decoder = FrameDecoder()
        self._loads: Callable[[bytes], Any] | None = None
        self._pending: deque[Message] = deque()
        self._view = memoryview(bytearray(1 << 16))  # reused: no allocation per read
        self._poll = select.poll()
        self._poll.register(sock.fileno(), select.POLLIN)
        if queue is not None:
            queue.setblocking(False)
            self._poll.register(queue.fileno(), select.POLLIN)
            # A packet is read whole into one buffer (recv(n) would allocate n bytes).
            self._packet = memoryview(bytearray(QUEUED_MAX + HEADER.size))

    def recv(self) -> Message | None:
        """The next message, or None when the proxy closed the channel.

        A frame on the channel is older than any on the queue (the proxy queues
        only while an invocation it wrote is unanswered), so it comes first."""
        while not self._pending:
            events = self._poll.poll()  # until readable, at end of stream or on error
            if self._queue is not None and all(fd != self._fd for fd, _ in events):
                try:
                    size = self._queue.recv_into(self._packet)
                except BlockingIOError:  # the proxy took it back
                    continue
                if size:
                    body = bytes(self._packet[HEADER.size : size])
                    self._pending.append(decode(body, self._loads))
                    continue
                self._poll.unregister(self._queue.fileno())  # the proxy closed it
                self._queue = None
                continue
            size = self._sock.recv_into(self._view)
            if not size:
                return None
            self._pending.extend(self._decoder.feed(bytes(self._view[:size])))
        return self._pending.popleft()

    def send(self, frame: bytes) -> None:
        self._sock.sendall(frame)

    def parse_with(self, loads: Callable[[bytes], Any]) -> None:
        """Parse frames with a faster JSON parser from now on (see ``decode``)."""
        self._decoder = FrameDecoder(loads)
        self._loads = loads


def send_control(sock: socket.socket, msg: Mapping[str, Any], fds: Iterable[int] = ()) -> None:
    """One control packet, with ``fds`` attached."""
    data = json.dumps(msg, separators=(",", ":")).encode()
    if len(data) > CONTROL_MAX:
        raise ValueError("control message too large")
    socket.send_fds(sock, [data], list(fds))


def recv_control(sock: socket.socket) -> tuple[Message | None, list[int]]:
    """One control packet and its fds; ``(None, [])`` at end of stream."""
    data, fds, _flags, _addr = socket.recv_fds(sock, CONTROL_MAX, 4)
    if not data:
        for fd in fds:
            _close_quietly(fd)
        return None, []
    try:
        return decode(data), fds
    except ProtocolError:
        for fd in fds:
            _close_quietly(fd)
        raise


def _close_quietly(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)
