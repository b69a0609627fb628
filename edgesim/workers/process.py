"""The proxy's handle on one worker process (one execution environment).

A ``WorkerProcess`` owns the parent's ends of the worker's two channels: the
framed socket (``protocol``) and the pipe that carries everything the worker
writes to fds 1 and 2. It runs one exchange at a time (the init handshake,
then invocations; more may wait behind the running one, see ``invoke``) and
watches it from the event loop:

* a ``Watchdog`` tick every few milliseconds reads each busy worker's
  resident memory from ``/proc/<pid>/statm`` and SIGKILLs the worker the
  moment it is over the function's memory size; the same tick ends the
  exchange at its deadline;
* output is drained as it arrives (keeping the first ``OUTPUT_CAP`` bytes of
  each exchange, discarding the rest), so a worker printing megabytes never
  blocks and never grows the proxy. The worker writes its output before its
  result, so the pipe was readable when the result was, and the loop has run
  the pipe's reader by the time the waiting invocation resumes: the output
  is complete without another read. An exchange that ends otherwise (a
  timeout, a crash) drains the pipe once more, synchronously;
* a frame that breaks the protocol, or one nobody asked for, ends the
  exchange as ``invalid``; end of stream ends it as a crash, with the exit
  status the zygote reports.

Memory is read from the kernel at every tick, and checked once more
against the worker's own peak (``ru_maxrss``, in each reply), so a spike
between two ticks is still caught (see ``watchdog`` for why not a cgroup).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from . import protocol
from .watchdog import Watchdog

__all__ = ["OUTPUT_CAP", "Outcome", "WorkerProcess"]

# CloudWatch Logs takes events of up to 256 KB (Lambda logs past that are cut).
OUTPUT_CAP = 256 * 1024
_PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024

# "unstarted": queued behind an exchange that ended the worker, so never run.
Kind = Literal["ok", "error", "timeout", "crash", "oom", "invalid", "unstarted"]


@dataclass(slots=True)
class Outcome:
    """How one exchange with a worker ended, before it becomes an ``InvokeResult``."""

    # An answer's fields first: it is made positionally, once per invocation
    # (keywords would cost it a dict); the other ends are made by keyword.
    kind: Kind
    payload: Any = None
    duration_ms: float = 0.0  # the worker's own measure when it answered, else wall time
    rss_kb: int = 0  # peak resident memory seen
    # CloudFront Functions: compute utilization (0-100) and the run's log lines.
    compute: int | None = None
    lines: list[str] | None = None
    error: dict[str, Any] | None = None
    status: int | None = None  # waitpid status, for a crash
    reason: str = ""  # what was wrong, for ``invalid``
    output: bytes = b""
    dropped: int = 0  # output bytes over OUTPUT_CAP
    queued_s: float = 0.0  # how long it waited in the worker behind earlier exchanges


class _Queued:
    """An exchange written to a worker that was running another."""

    __slots__ = ("future", "started", "timeout", "written")

    def __init__(self, future: asyncio.Future[tuple[str, Any]], timeout: float, now: float) -> None:
        self.future = future
        self.timeout = timeout
        self.written = now
        self.started = now  # when it became the running one


class WorkerProcess:
    """One forked worker as seen from the proxy. Not reusable after it dies."""

    def __init__(
        self,
        *,
        pid: int,
        sock: socket.socket,
        output_fd: int,
        tmp_dir: str,
        exited: asyncio.Future[int | None],
        memory_mb: int,
        watchdog: Watchdog,
    ) -> None:
        self.pid = pid
        self.tmp_dir = tmp_dir
        self.exited = exited
        self.last_used = 0.0
        self.on_lost: Callable[[WorkerProcess], None] | None = None
        # An invocation whose caller was cancelled, still running to its end.
        self.abandoned: asyncio.Future[Outcome] | None = None
        self._late: tuple[str, Any] | None = None  # an answer its cancelled caller takes
        self._sock = sock
        self._out_fd: int | None = output_fd
        self._limit_kb = memory_mb * 1024
        self._loop = asyncio.get_running_loop()
        self._watchdog = watchdog
        self._transport: asyncio.Transport | None = None
        self._statm: int | None = None
        self._waiter: asyncio.Future[tuple[str, Any]] | None = None
        self._queued: deque[_Queued] = deque()  # written behind the running exchange
        self._deadline = 0.0
        self._peak_kb = 0
        self._out = bytearray()
        self._dropped = 0
        self._unread = False  # the output reader stopped before the pipe was empty
        self._broken = False
        self._closed = False
        self._early: list[tuple[str, Any]] | None = []

    async def open(self) -> None:
        """Attach the channel and the output pipe to the event loop."""
        self._transport, _ = await self._loop.create_unix_connection(
            lambda: _Channel(self), sock=self._sock
        )
        assert self._out_fd is not None
        os.set_blocking(self._out_fd, False)
        self._loop.add_reader(self._out_fd, self._read_output)
        try:
            self._statm = os.open(f"/proc/{self.pid}/statm", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            self._statm = None  # already gone; the channel will say so

    @property
    def alive(self) -> bool:
        return not self._broken and not self.exited.done() and self._transport is not None

    @property
    def pending(self) -> int:
        """Exchanges written to the worker and not yet ended: the running one and
        those queued behind it."""
        waiter = self._waiter
        return (waiter is not None and not waiter.done()) + len(self._queued)

    async def ready(self, timeout: float) -> Outcome:
        """Wait for the end of the Init phase (``duration_ms`` is the Init Duration)."""
        if self._early == [] and self.exited.done():
            # Gone before its channel was read (the zygote's word of the exit can
            # come first): what it wrote before it went, an init_error, is in the
            # socket, and one pass of the loop reads it.
            await asyncio.sleep(0)
        outcome = await self._exchange(None, timeout, "")
        return outcome

    def invoke(self, request_id: str, event: Any, timeout: float) -> Coroutine[Any, Any, Outcome]:
        """Run one invocation, ``timeout`` seconds at most from when it starts (await
        the result).

        Called while the worker runs another invocation, it is written behind
        that one and starts when it ends: the worker goes from one to the next
        without sleeping, and the proxy reads their answers together
        (bench/README.md, "The cost of a hook"). Still one at a time. If the
        running one ends the worker, those queued come back ``unstarted``. The
        pool queues so only CloudFront Functions, whose logs come in their
        answers and whose runtime reads no deadline: a Lambda runtime's output
        and ``get_remaining_time_in_millis`` belong to the invocation running.

        A plain function returning the exchange: one coroutine fewer per invocation."""
        deadline_ms = int((time.time() + timeout) * 1000)  # context's epoch deadline
        # orjson takes a tenth of the stdlib encoder's time for an event; the
        # workers keep the stdlib (user code shares their imports).
        frame = protocol.encode(
            {"t": "invoke", "id": request_id, "deadline_ms": deadline_ms, "event": event},
            dumps=orjson.dumps,
        )
        waiter = self._waiter
        if waiter is not None and not waiter.done() and self.alive:
            return self._queue(frame, timeout, request_id)
        return self._exchange(frame, timeout, request_id)

    def rss_kb(self) -> int:
        """Resident memory now (from /proc), 0 when unknown."""
        if self._statm is None:
            return 0
        try:
            return int(os.pread(self._statm, 128, 0).split()[1]) * _PAGE_KB
        except (OSError, IndexError, ValueError):
            return 0

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the worker's process group: the worker and anything it started."""
        try:
            os.killpg(self.pid, sig)  # the worker leads its own session (setsid)
        except ProcessLookupError:
            if not self.exited.done():  # not yet a group leader: just forked
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, sig)
        except PermissionError:
            pass

    async def terminate(self, grace: float) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds (uvicorn/gunicorn style)."""
        self.kill(signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.exited), grace)
        self.kill(signal.SIGKILL)

    def close(self) -> None:
        """Release the proxy's ends. Call once the worker is dead."""
        if self._closed:
            return
        self._closed = True
        self._watchdog.unwatch(self)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(("eof", None))
        self._next("eof")
        self._close_output()
        if self._transport is not None:
            self._transport.close()
        else:
            self._sock.close()
        if self._statm is not None:
            os.close(self._statm)
            self._statm = None

    # -- one exchange ------------------------------------------------------

    async def _exchange(self, frame: bytes | None, timeout: float, request_id: str) -> Outcome:
        loop = self._loop
        self.abandoned = None  # this exchange's, if its caller goes away
        waiter: asyncio.Future[tuple[str, Any]] = loop.create_future()
        early, self._early = self._early, None
        if early:
            # The worker spoke before the first exchange began (a fast Init):
            # the first event answers it, anything after it is a fault.
            waiter.set_result(early[0])
            self._broken = len(early) > 1
            if any(what != "eof" for what, _ in early[1:]):
                self.kill()
        elif not self.alive:
            return await self._crashed(loop.time())
        self._waiter = waiter
        started = loop.time()
        self._deadline = started + timeout
        self._peak_kb = 0
        if frame is not None and not waiter.done():
            assert self._transport is not None
            self._transport.write(frame)
        self._watchdog.watch(self)
        try:
            what, value = await waiter
        except asyncio.CancelledError:
            # The caller went away (its viewer disconnected). On Lambda the
            # invocation runs to its end all the same: its outcome comes in the
            # background (``abandoned``), still under the deadline and memory watch.
            late, self._late = self._late, None
            if late is None and waiter.done() and not waiter.cancelled():
                late = waiter.result()
            if request_id and (late is not None or self.alive):
                rest: asyncio.Future[tuple[str, Any]] = loop.create_future()
                if late is not None:  # answered as it went (the next may be running)
                    rest.set_result(late)
                else:
                    self._waiter = rest
                self.abandoned = asyncio.ensure_future(
                    self._run_on(rest, timeout, request_id, started)
                )
            elif self._waiter is waiter:
                self._watchdog.unwatch(self)
                self._waiter = None
            raise
        if self._waiter is waiter:  # else the next queued exchange runs
            self._watchdog.unwatch(self)
            self._waiter = None
        if what == "msg":
            return self._answered(value, request_id, started)
        return await self._outcome(what, value, timeout, request_id, started)

    async def _queue(self, frame: bytes, timeout: float, request_id: str) -> Outcome:
        """An invocation written behind the running one (``invoke``)."""
        loop = self._loop
        entry = _Queued(loop.create_future(), timeout, loop.time())
        self._queued.append(entry)
        assert self._transport is not None
        self._transport.write(frame)
        try:
            # Shielded: a caller that goes away leaves it to end in the background.
            await asyncio.shield(entry.future)
        except asyncio.CancelledError:
            self.abandoned = asyncio.ensure_future(self._queued_end(entry, request_id))
            raise
        return await self._queued_end(entry, request_id)

    async def _queued_end(self, entry: _Queued, request_id: str) -> Outcome:
        what, value = await entry.future
        if self._waiter is entry.future:
            self._watchdog.unwatch(self)
            self._waiter = None
        if what == "unstarted":
            return Outcome("unstarted")
        outcome = await self._outcome(what, value, entry.timeout, request_id, entry.started)
        outcome.queued_s = entry.started - entry.written
        return outcome

    def _next(self, what: str) -> None:
        """The running exchange ended (``what``): start the next queued one, or, if
        the worker is done for, send every queued one back unstarted."""
        queued = self._queued
        if not queued:
            return
        if what != "msg" or not self.alive:
            while queued:
                entry = queued.popleft()
                if not entry.future.done():
                    entry.future.set_result(("unstarted", None))
            return
        entry = queued.popleft()
        entry.started = now = self._loop.time()
        self._waiter = entry.future
        self._deadline = now + entry.timeout
        self._peak_kb = 0

    async def _run_on(
        self,
        waiter: asyncio.Future[tuple[str, Any]],
        timeout: float,
        request_id: str,
        started: float,
    ) -> Outcome:
        """The rest of an exchange whose caller was cancelled."""
        try:
            what, value = await waiter
        finally:
            if self._waiter is waiter:
                self._watchdog.unwatch(self)
                self._waiter = None
        return await self._outcome(what, value, timeout, request_id, started)

    async def _outcome(
        self, what: str, value: Any, timeout: float, request_id: str, started: float
    ) -> Outcome:
        loop = self._loop
        if what == "msg":
            return self._answered(value, request_id, started)
        elapsed = (loop.time() - started) * 1000
        if what == "timeout":
            return self._take(Outcome("timeout", duration_ms=timeout * 1000, rss_kb=self._peak_kb))
        if what == "oom":
            return self._take(Outcome("oom", duration_ms=elapsed, rss_kb=value))
        if what == "invalid":
            self._broken = True
            self.kill()
            return self._take(Outcome("invalid", duration_ms=elapsed, reason=str(value)))
        return await self._crashed(started)

    def _answered(self, msg: dict[str, Any], request_id: str, started: float) -> Outcome:
        kind = msg["t"]
        expected = ("result",) if request_id else ("ready", "init_error")
        if kind not in expected or (request_id and msg.get("id") != request_id):
            self._broken = True
            self.kill()
            elapsed = (self._loop.time() - started) * 1000
            return self._take(Outcome("invalid", duration_ms=elapsed, reason=f"unexpected {kind}"))
        try:
            rss_kb = max(int(msg.get("rss_kb", 0)), self._peak_kb)
            if request_id:
                duration = int(msg.get("duration_ns", 0)) / 1e6
            else:
                duration = float(msg.get("init_ms", 0.0))
        except (TypeError, ValueError):
            self._broken = True
            self.kill()
            return self._take(Outcome("invalid", reason="bad numbers in reply"))
        if rss_kb > self._limit_kb:
            # Over the limit between two samples: the kernel would have killed it.
            self.kill()
            return self._take(Outcome("oom", duration_ms=duration, rss_kb=rss_kb))
        compute, lines = msg.get("compute"), msg.get("logs")
        if (compute is not None or lines is not None) and (
            not isinstance(compute, int) or not isinstance(lines, list)
        ):
            self._broken = True
            self.kill()
            return self._take(Outcome("invalid", reason="bad compute or logs in reply"))
        if kind == "init_error" or "error" in msg:
            error = msg.get("error")
            if not isinstance(error, dict):
                self._broken = True
                self.kill()
                return self._take(Outcome("invalid", reason="error is not an object"))
            return self._take(
                Outcome(
                    "error",
                    error=error,
                    duration_ms=duration,
                    rss_kb=rss_kb,
                    compute=compute,
                    lines=lines,
                ),
                drain=not request_id,
            )
        answer = Outcome("ok", msg.get("payload"), duration, rss_kb, compute, lines)
        # An Init answer may come before the loop has read the output pipe (the
        # worker can speak before the pipe is watched): once per environment,
        # read it to be sure. An invocation's answer needs no read (``_take``).
        return self._take(answer, drain=not request_id)

    async def _crashed(self, started: float) -> Outcome:
        """The channel ended: wait for the exit status, killing the worker if it lingers."""
        status: int | None = None
        for _ in range(2):
            try:
                status = await asyncio.wait_for(asyncio.shield(self.exited), 1.0)
                break
            except TimeoutError:
                self.kill()
        elapsed = (self._loop.time() - started) * 1000
        self._broken = True
        return self._take(
            Outcome("crash", duration_ms=elapsed, rss_kb=self._peak_kb, status=status)
        )

    def _take(self, outcome: Outcome, drain: bool = True) -> Outcome:
        """Attach this exchange's output to ``outcome`` and start afresh.

        ``drain`` reads what is left in the pipe first. An invocation's answer needs none:
        its exchange resumes from a callback the loop runs after those of
        every descriptor that was ready with the answer (or before it), and
        the worker wrote its output before its answer, so the output pipe's
        reader has already run (and found it empty, or it is drained now).
        """
        if drain or self._unread:
            self._read_output(drain=True)
        outcome.output = bytes(self._out)
        outcome.dropped = self._dropped
        self._out.clear()
        self._dropped = 0
        return outcome

    def check(self) -> None:
        """A watchdog tick: over the memory size, or past the deadline, ends the exchange."""
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        rss = self.rss_kb()
        if rss > self._limit_kb:
            self.kill()
            waiter.set_result(("oom", rss))
            self._next("oom")
            return
        self._peak_kb = max(self._peak_kb, rss)
        if self._loop.time() >= self._deadline:
            if self._queued:
                # Killed now, not after a grace: it must not start the queued ones,
                # which go back to the pool to run elsewhere.
                self.kill()
            waiter.set_result(("timeout", None))
            self._next("timeout")

    def _on_event(self, what: str, value: Any) -> None:
        waiter = self._waiter
        if waiter is not None:
            if not waiter.done():
                waiter.set_result((what, value))
                self._next(what)
                return
            if waiter.cancelled() and self._late is None:
                # Its caller was cancelled and has yet to run: _exchange takes it.
                self._late = (what, value)
                self._next(what)
                return
        if self._early is not None:  # before the first exchange: keep for it
            self._early.append((what, value))
            return
        if self._closed:
            return
        if what == "eof":
            self._broken = True
            if self.on_lost is not None:
                self.on_lost(self)
        elif what in ("msg", "invalid") and not self._broken:
            # Nobody asked: the worker is not following the protocol.
            self._broken = True
            self.kill()
            if self.on_lost is not None:
                self.on_lost(self)

    # -- output ------------------------------------------------------------

    def _read_output(self, drain: bool = False) -> None:
        fd = self._out_fd
        # Bounded per call so a flood of output cannot starve the loop. A final
        # drain needs at most one pipe's worth: the writer blocks when it is full.
        self._unread = True  # until a read finds the pipe empty
        for _ in range(64 if drain else 16):
            if fd is None:
                return
            try:
                data = os.read(fd, 1 << 16)
            except BlockingIOError:
                self._unread = False
                return
            except OSError:
                data = b""
            if not data:
                self._close_output()
                return
            room = OUTPUT_CAP - len(self._out)
            if room > 0:
                self._out += data[:room]
            self._dropped += max(0, len(data) - max(room, 0))

    def _close_output(self) -> None:
        if self._out_fd is not None:
            self._loop.remove_reader(self._out_fd)
            os.close(self._out_fd)
            self._out_fd = None


class _Channel(asyncio.BufferedProtocol):
    """Frames in, events out: ``msg``, ``invalid`` or ``eof`` to the worker.

    A buffered protocol reads into one preallocated buffer: the default
    ``recv(256 KiB)`` allocates a fresh 256 KiB object per read, which costs
    more than the rest of a small round trip.
    """

    def __init__(self, worker: WorkerProcess) -> None:
        self._worker = worker
        self._decoder = protocol.FrameDecoder(orjson.loads)
        self._view = memoryview(bytearray(1 << 16))
        self._broken = False

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._view

    def buffer_updated(self, nbytes: int) -> None:
        if self._broken:
            return
        try:
            messages = self._decoder.feed(bytes(self._view[:nbytes]))
        except protocol.ProtocolError as exc:
            self._broken = True
            self._worker._on_event("invalid", str(exc))
            return
        for msg in messages:
            self._worker._on_event("msg", msg)

    def connection_lost(self, exc: Exception | None) -> None:
        self._worker._on_event("eof", None)
