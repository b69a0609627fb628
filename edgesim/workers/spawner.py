"""The proxy's end of a zygote: start it, have it fork workers, hear them exit.

The zygote (``bootstrap.main``) is started once per pool with an empty
environment, in its own session, from a launcher that loads only
``edgesim.workers``' sandbox-side modules (not ``edgesim/__init__``). A spawn
hands it the worker's ends of a fresh socketpair and output pipe over the
``SOCK_SEQPACKET`` control socket; the zygote forks and answers with the pid.
Replies to spawns come in order, so pending spawns are a FIFO. The zygote
also reports each worker's ``waitpid`` status, which only it can collect.

If the zygote dies, its workers die with it (``PR_SET_PDEATHSIG``), every
pending exit status resolves to None, and the next spawn starts a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import socket
import subprocess
import sys
from collections import deque
from pathlib import Path
from typing import Any

from . import protocol
from .limits import Sandbox
from .process import WorkerProcess
from .watchdog import Watchdog

__all__ = ["SpawnError", "Spawner"]

# Import the sandbox-side modules under their real names without running
# edgesim/__init__.py or edgesim/workers/__init__.py (which pull in asyncio
# and the rest of the proxy).
_LAUNCHER = """\
import sys, types
root = sys.argv[1]
for name in ("edgesim", "edgesim.workers"):
    package = types.ModuleType(name)
    package.__path__ = [root + "/" + name.replace(".", "/")]
    sys.modules[name] = package
from edgesim.workers.bootstrap import main
main(int(sys.argv[2]), sys.argv[3])
"""
_ROOT = str(Path(__file__).resolve().parents[2])
_PIPE_SIZE = 1 << 20  # fewer wake-ups when a function prints a lot
_F_SETPIPE_SZ = 1031


class SpawnError(Exception):
    """The zygote could not fork a worker (or is gone)."""


class Spawner:
    """One zygote process and the workers it forked."""

    def __init__(self, engine: str = "python") -> None:
        self._engine = engine  # the zygote preloads what this engine needs
        self._proc: asyncio.subprocess.Process | None = None
        self._sock: socket.socket | None = None
        self._hello: asyncio.Future[int] | None = None
        self._pending: deque[asyncio.Future[tuple[int, asyncio.Future[int | None]]]] = deque()
        self._exits: dict[int, asyncio.Future[int | None]] = {}
        self._lock = asyncio.Lock()

    @property
    def alive(self) -> bool:
        return self._sock is not None

    async def start(self) -> None:
        """Start the zygote and wait until it has loaded the runtime."""
        async with self._lock:
            if self._sock is not None:
                return
            await self._reap_old()
            loop = asyncio.get_running_loop()
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            try:
                self._proc = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-I",
                    "-c",
                    _LAUNCHER,
                    _ROOT,
                    str(theirs.fileno()),
                    self._engine,
                    pass_fds=(theirs.fileno(),),
                    env={},
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    start_new_session=True,
                )
            except BaseException:
                ours.close()
                raise
            finally:
                theirs.close()
            ours.setblocking(False)
            self._sock = ours
            self._hello = loop.create_future()
            loop.add_reader(ours.fileno(), self._on_readable)
            try:
                await asyncio.wait_for(asyncio.shield(self._hello), 30.0)
            except BaseException:
                self._lost()
                raise

    async def spawn(self, spec: Sandbox, *, memory_mb: int, watchdog: Watchdog) -> WorkerProcess:
        """Fork a worker for ``spec`` and attach it; raises ``SpawnError``."""
        if self._sock is None:
            await self.start()
        sock = self._sock
        if sock is None:
            raise SpawnError("zygote is not running")
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        out_r, out_w = os.pipe()
        with contextlib.suppress(OSError):
            fcntl.fcntl(out_w, _F_SETPIPE_SZ, _PIPE_SIZE)
        fds = [theirs.fileno(), out_w]
        queue: tuple[socket.socket, socket.socket] | None = None
        python = spec["engine"] == "python"  # a queue and marked output: WorkerProcess.invoke
        if python:
            # Both ends stay here: the worker's, to take back what it has not taken.
            queue = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            for end in queue:
                end.setblocking(False)
            fds.append(queue[1].fileno())
        reply: asyncio.Future[tuple[int, asyncio.Future[int | None]]] = loop.create_future()
        try:
            await self._send(sock, {"t": "spawn", "spec": spec}, fds)
            self._pending.append(reply)
        except BaseException:
            ours.close()
            os.close(out_r)
            for end in queue or ():
                end.close()
            raise
        finally:
            theirs.close()
            os.close(out_w)
        try:
            pid, exited = await reply
        except BaseException:
            ours.close()
            os.close(out_r)
            for end in queue or ():
                end.close()
            raise
        worker = WorkerProcess(
            pid=pid,
            sock=ours,
            output_fd=out_r,
            tmp_dir=spec["tmp_dir"],
            exited=exited,
            memory_mb=memory_mb,
            watchdog=watchdog,
            queue=queue,
            marks_output=python,
            gathers_frames=spec["engine"] == "cloudfront-js",
        )
        await worker.open()
        return worker

    async def close(self) -> None:
        """Stop the zygote (it SIGKILLs the workers it still has) and reap it."""
        self._lost()
        await self._reap_old()

    async def _send(self, sock: socket.socket, msg: dict[str, Any], fds: list[int]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                protocol.send_control(sock, msg, fds)
                return
            except BlockingIOError:
                writable: asyncio.Future[None] = loop.create_future()
                loop.add_writer(sock.fileno(), writable.set_result, None)
                try:
                    await writable
                finally:
                    loop.remove_writer(sock.fileno())
            except OSError as exc:
                self._lost()
                raise SpawnError(f"zygote is gone: {exc}") from None

    async def _reap_old(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            await asyncio.wait_for(proc.wait(), 2.0)
        except TimeoutError:
            proc.kill()
            await proc.wait()

    def _on_readable(self) -> None:
        sock = self._sock
        while sock is not None:
            try:
                msg, fds = protocol.recv_control(sock)
            except BlockingIOError:
                return
            except (OSError, protocol.ProtocolError):
                msg, fds = None, []
            for fd in fds:
                os.close(fd)
            if msg is None:
                self._lost()
                return
            self._on_message(msg)

    def _on_message(self, msg: dict[str, Any]) -> None:
        kind = msg["t"]
        if kind == "hello" and self._hello is not None and not self._hello.done():
            self._hello.set_result(int(msg["pid"]))
        elif kind == "spawned" and self._pending:
            exited: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
            pid = int(msg["pid"])
            self._exits[pid] = exited
            reply = self._pending.popleft()
            if not reply.done():
                reply.set_result((pid, exited))
        elif kind == "spawn_failed" and self._pending:
            reply = self._pending.popleft()
            if not reply.done():
                reply.set_exception(SpawnError(str(msg.get("error"))))
        elif kind == "exit":
            exit_future = self._exits.pop(int(msg["pid"]), None)
            if exit_future is not None and not exit_future.done():
                exit_future.set_result(int(msg["status"]))

    def _lost(self) -> None:
        """The control channel is closed: fail what waits on the zygote."""
        sock, self._sock = self._sock, None
        if sock is not None:
            asyncio.get_running_loop().remove_reader(sock.fileno())
            sock.close()
        if self._hello is not None and not self._hello.done():
            self._hello.set_exception(SpawnError("zygote exited during startup"))
            self._hello.exception()  # retrieved: start() reports it
        while self._pending:
            reply = self._pending.popleft()
            if not reply.done():
                reply.set_exception(SpawnError("zygote exited"))
        for exit_future in self._exits.values():
            if not exit_future.done():
                exit_future.set_result(None)
        self._exits.clear()
