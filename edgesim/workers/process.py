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
# One read of the output pipe asks for this much.
_READ_SIZE = 1 << 16

# "unstarted": on the queue and not taken by the worker (``WorkerProcess.invoke``).
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
    """An invocation put on a worker's queue while it ran another (``invoke``)."""

    __slots__ = ("frame", "future", "id", "on_channel", "started", "timeout", "written")

    def __init__(
        self, future: asyncio.Future[tuple[str, Any]], request_id: str, timeout: float, now: float
    ) -> None:
        self.future = future
        self.id = request_id
        self.timeout = timeout
        self.written = now
        self.started = now  # when it became the running one
        # Held here, not written (too big for the queue, or behind one that is):
        # written to the channel when it becomes the running one.
        self.frame: bytes | None = None
        self.on_channel = False  # written to the channel behind the running one


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
        queue: tuple[socket.socket, socket.socket] | None = None,
        marks_output: bool = False,
        gathers_frames: bool = False,
    ) -> None:
        """``queue``: both ends of the worker's queue (``protocol``), if it has one;
        ``marks_output``: it ends each exchange's output with ``protocol.OUTPUT_MARK``;
        ``gathers_frames``: the frames of one pass of the loop are written together
        (a CloudFront Function's, queued on the channel: a worker woken a little
        later finds more of them; bench/README.md, "The cost of a hook")."""
        self.pid = pid
        self.marks_output = marks_output
        self.gathers_frames = gathers_frames and queue is None
        self._queue_send: socket.socket | None = None
        self._queue_take: socket.socket | None = None
        if queue is not None:
            self._queue_send, self._queue_take = queue
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
        self._channel_fd = -1
        self._statm: int | None = None
        self._waiter: asyncio.Future[tuple[str, Any]] | None = None
        self._queued: deque[_Queued] = deque()  # behind the running exchange
        # Invocations written (or held) and not answered: the worker is busy while
        # any is, whatever became of their callers.
        self._outstanding = 0
        self._unsent: list[bytes] = []  # for the channel when this pass of the loop ends
        self._promoted: _Queued | None = None  # the running exchange, if it was queued
        self._deadline = 0.0
        self._peak_kb = 0
        self._out = bytearray()
        self._dropped = 0
        # Marked output: finished exchanges' output not yet taken, bytes that may
        # start a mark cut between two reads, and what answers took (``_take``).
        self._finished_output: deque[tuple[bytes, int]] = deque()
        self._tail = b""
        self._outputs: dict[int, tuple[bytes, int]] = {}
        self._own_output: tuple[bytes, int] | None = None
        self._unread = False  # the output reader stopped before the pipe was empty
        self._broken = False
        self._closed = False
        self._early: list[tuple[str, Any]] | None = []

    async def open(self) -> None:
        """Attach the channel and the output pipe to the event loop."""
        self._transport, _ = await self._loop.create_unix_connection(
            lambda: _Channel(self), sock=self._sock
        )
        self._channel_fd = self._transport.get_extra_info("socket").fileno()
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
        """Invocations given to the worker and not yet answered: the running one and
        those queued behind it."""
        return self._outstanding

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

        Called while the worker runs another invocation, it waits in the worker and
        starts when that one ends: on the worker's queue (a Python worker: see
        ``protocol``), or on the channel behind the running one (a CloudFront
        Function's, whose runs are short). The worker goes from one to the next
        without sleeping, and the proxy reads their answers together
        (bench/README.md, "The cost of a hook"). Still one at a time. Those the
        worker has not taken when it must stop (the running one ended it), and
        those the pool takes back from the queue (``withdraw``), come back
        ``unstarted``: they run in another environment.

        A plain function returning the exchange: one coroutine fewer per invocation."""
        # orjson takes a tenth of the stdlib encoder's time for an event; the
        # workers keep the stdlib (user code shares their imports).
        frame = protocol.encode(
            {"t": "invoke", "id": request_id, "timeout_ms": int(timeout * 1000), "event": event},
            dumps=orjson.dumps,
        )
        if self._outstanding and self.alive:
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
        for end in (self._queue_send, self._queue_take):
            if end is not None:
                end.close()
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
            self._outstanding += 1
            self._write(frame)
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
        """An invocation put on the queue behind the running one (``invoke``)."""
        loop = self._loop
        entry = _Queued(loop.create_future(), request_id, timeout, loop.time())
        queued = self._queued
        assert self._transport is not None
        if self._queue_send is None:
            # No queue (a CloudFront Function): behind the running one on the channel.
            entry.on_channel = True
            self._write(frame)
        elif (
            (queued and queued[-1].frame is not None)  # behind one held: the order
            or self._transport.get_write_buffer_size()  # the channel's frames go first
            or len(frame) > protocol.QUEUED_MAX
        ):
            entry.frame = frame
        else:
            try:
                self._queue_send.send(frame)
            except OSError:  # full, or the worker is gone
                entry.frame = frame
        queued.append(entry)
        self._outstanding += 1
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
            self._waiter = self._promoted = None
        if what == "unstarted":
            return Outcome("unstarted", reason=str(value or ""))
        outcome = await self._outcome(what, value, entry.timeout, request_id, entry.started)
        outcome.queued_s = entry.started - entry.written
        return outcome

    def _next(self, what: str) -> None:
        """The running exchange ended (``what``): the next queued one runs, or, if the
        worker is done for, those it has not taken come back unstarted."""
        queued = self._queued
        if what != "msg" or not self.alive:
            self._take_back("", dying=True)
            self._outstanding = 0
            return
        self._promoted = None
        if not queued:
            return
        entry = queued.popleft()
        entry.started = now = self._loop.time()
        self._waiter, self._promoted = entry.future, entry
        self._deadline = now + entry.timeout
        self._peak_kb = 0
        if entry.frame is not None:  # held: the worker is free for it now
            self._write(entry.frame)
            entry.frame = None

    def _write(self, frame: bytes) -> None:
        """A frame to the channel. With a queue, now, since one put on the queue
        meanwhile would be read first. A worker that ``gathers_frames`` gets those
        written in this pass of the loop together, in one system call when the
        pass ends (the transport would make one per frame)."""
        transport = self._transport
        assert transport is not None
        if self.gathers_frames:
            if not self._unsent:
                self._loop.call_soon(self._send_unsent)
            self._unsent.append(frame)
            return
        if self._queue_send is not None and transport.get_write_buffer_size() == 0:
            try:
                sent = os.write(self._channel_fd, frame)
            except OSError:  # full (the transport waits), or gone (it reports it)
                sent = 0
            if sent == len(frame):
                return
            frame = frame[sent:]
        transport.write(frame)

    def _send_unsent(self) -> None:
        frames, self._unsent = self._unsent, []
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.write(b"".join(frames))

    def withdraw(self) -> int:
        """Take back the queued invocations the worker has not taken (they come back
        ``unstarted``, reason ``"stall"``); how many."""
        return self._take_back("stall", dying=False)

    def _take_back(self, reason: str, dying: bool) -> int:
        """Invocations on the queue that the worker has not taken, and those held,
        come back unstarted. ``dying``: the worker is gone, so those it took share
        its end (a crash)."""
        promoted = self._promoted
        if not self._queued and promoted is None:
            return 0
        taken_back: set[str] = set()
        while self._queue_take is not None:
            try:
                packet = self._queue_take.recv(protocol.QUEUED_MAX + protocol.HEADER.size)
            except OSError:  # empty (BlockingIOError) or closed
                break
            if not packet:
                break
            with contextlib.suppress(ValueError, TypeError, KeyError):
                taken_back.add(str(orjson.loads(packet[protocol.HEADER.size :])["id"]))
        count = 0
        entries = [promoted] if promoted is not None else []
        for entry in [*entries, *self._queued]:
            if entry.future.done():
                continue
            # Held, or taken back from the queue: it never ran. Nor did one on the
            # channel behind the run that ended the worker (a CloudFront Function's);
            # the running one did, wherever it came from.
            never_ran = entry.frame is not None or entry.id in taken_back
            if never_ran or (dying and entry.on_channel and entry is not promoted):
                entry.future.set_result(("unstarted", reason))
                count += 1
                if not dying:  # dying: none is left (``_next``)
                    self._outstanding -= 1
            elif dying and entry is not promoted:  # the running one: the caller's
                entry.future.set_result(("eof", None))
        if dying:
            self._queued.clear()
        else:
            self._queued = deque(e for e in self._queued if not e.future.done())
        return count

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
        self._own_output = self._outputs.pop(id(msg), None)  # for ``_take``
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
        own, self._own_output = self._own_output, None
        if own is not None:  # marked, and taken as it was answered (``_mark_taken``)
            outcome.output, outcome.dropped = own
            return outcome
        if drain or self._unread:
            self._read_output(drain=True)
        # What is left: any marked parts (it marked its output, then ended otherwise)
        # and the rest.
        parts = [*self._finished_output, self._cut()]
        self._finished_output.clear()
        outcome.output = b"".join(out for out, _ in parts)[:OUTPUT_CAP]
        outcome.dropped = sum(dropped for _, dropped in parts)
        return outcome

    def _cut(self) -> tuple[bytes, int]:
        """The output kept since the last cut (a held-back piece of a mark included,
        as it was not one) and its dropped bytes; the next starts empty."""
        if self._tail:
            self._keep(self._tail)
            self._tail = b""
        part = (bytes(self._out), self._dropped)
        self._out.clear()
        self._dropped = 0
        return part

    def _mark_taken(self, msg: dict[str, Any]) -> None:
        """An answer of a worker that marks its output: its output is what came before
        its mark, read now, before the next exchange's can follow it."""
        if not self._finished_output:
            self._read_output(drain=True)  # the mark came before the answer
        if self._finished_output:
            self._outputs[id(msg)] = self._finished_output.popleft()
        else:  # no mark (an Init that failed)
            self._outputs[id(msg)] = self._cut()

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
                # Killed now, not after a grace: it must not take the queued ones,
                # which go back to the pool to run elsewhere.
                self.kill()
            waiter.set_result(("timeout", None))
            self._next("timeout")

    def _on_event(self, what: str, value: Any) -> None:
        waiter = self._waiter
        if what == "msg" and self._outstanding and value.get("t") == "result":
            self._outstanding -= 1
        if waiter is not None:
            if what != "msg":
                # The worker is done for: what it has not taken runs elsewhere, the
                # running one too if it was queued and never taken (then nobody
                # waits for this end below, and the pool hears of it as a loss).
                self._next(what)
            elif self.marks_output:
                self._mark_taken(value)
            if not waiter.done():
                waiter.set_result((what, value))
                if what == "msg":
                    self._next(what)
                return
            if waiter.cancelled() and self._late is None:
                # Its caller was cancelled and has yet to run: _exchange takes it.
                self._late = (what, value)
                if what == "msg":
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
                data = os.read(fd, _READ_SIZE)
            except BlockingIOError:
                self._unread = False
                return
            except OSError:
                data = b""
            if not data:
                self._close_output()
                return
            if self.marks_output:
                self._split(data)
            else:
                self._keep(data)
            if len(data) < _READ_SIZE:
                # A pipe's read returns all it holds up to the size asked: it is
                # empty now, and a read to find that out would be a system call
                # for nothing. Whatever comes next wakes the reader again.
                self._unread = False
                return

    def _split(self, data: bytes) -> None:
        """Output of a worker that marks it: each mark ends one exchange's."""
        mark = protocol.OUTPUT_MARK
        if self._tail:
            data, self._tail = self._tail + data, b""
        while (at := data.find(mark)) >= 0:
            self._keep(data[:at])
            self._finished_output.append(self._cut())
            data = data[at + len(mark) :]
        # A mark may be cut between two reads: hold back what could begin one.
        for size in range(min(len(mark) - 1, len(data)), 0, -1):
            if mark.startswith(data[-size:]):
                self._tail = data[-size:]
                data = data[:-size]
                break
        self._keep(data)

    def _keep(self, data: bytes) -> None:
        """The first ``OUTPUT_CAP`` bytes of an exchange's output; the rest is counted."""
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
