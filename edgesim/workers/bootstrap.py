"""The processes on the sandbox side: the zygote and the workers it forks.

The proxy starts one zygote per function pool, ``python -I -c <launcher>``
with an empty environment (so no secret of the proxy's is ever in a worker's
memory or ``/proc/<pid>/environ``). The zygote imports this module, the
runtime and the standard library they use, then waits on its control socket.
Each ``spawn`` request forks a worker that already has all of that in memory,
so a cold start costs one ``fork`` plus the function's own module import:
that import is what Lambda reports as Init Duration.

The forked worker enters its sandbox (``limits.enter_sandbox``), points fds 1
and 2 at the output pipe the proxy reads, and hands over to its inner
runtime: ``runtime.serve`` for Python; for Node.js it execs ``node`` on
``node_runtime.js``, which speaks the same protocol on the inherited channel
(the sandbox, being process state, survives the exec); for CloudFront
Functions ``cff_runtime.serve`` (which the zygote preloads when asked, so
that the JavaScript engine is in memory before the fork).
The zygote reaps its workers and reports each exit status to the proxy, which
turns it into Lambda's ``Runtime exited with error: ...`` messages.

Standard library, ``protocol``, ``limits`` and ``runtime`` only (with orjson,
which the runtimes parse frames with, and ``cff_runtime`` with its engine, for
CloudFront Functions).
"""

from __future__ import annotations

import contextlib
import gc
import os
import selectors
import shutil
import signal
import socket
import sys
import traceback
from typing import Any, NoReturn

from . import limits, protocol, runtime

__all__ = ["main"]


_NODE_RUNTIME = os.path.join(os.path.dirname(os.path.abspath(__file__)), "node_runtime.js")


def main(control_fd: int, engine: str = "python") -> NoReturn:
    """Run the zygote on the ``SOCK_SEQPACKET`` control socket ``control_fd``."""
    if engine == "cloudfront-js":
        import importlib

        importlib.import_module(f"{__package__}.cff_runtime")
    _Zygote(control_fd).serve()


class _Zygote:
    def __init__(self, control_fd: int) -> None:
        self.pid = os.getpid()
        self.sock = socket.socket(fileno=control_fd)
        self.sock.setblocking(True)
        self.children: dict[int, str] = {}  # pid -> private tmp folder
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        signal.signal(signal.SIGCHLD, _ignore)
        signal.set_wakeup_fd(self.wake_w)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.sock, selectors.EVENT_READ)
        self.selector.register(self.wake_r, selectors.EVENT_READ)

    def serve(self) -> NoReturn:
        limits.preload()
        # Objects that exist now are shared with every worker, copy-on-write;
        # frozen, the garbage collector never writes to (and so copies) them.
        gc.freeze()
        self.send({"t": "hello", "pid": self.pid})
        while True:
            for key, _ in self.selector.select():
                if key.fileobj is self.sock:
                    self.on_control()
                else:
                    self.reap()

    def send(self, msg: dict[str, Any]) -> None:
        try:
            protocol.send_control(self.sock, msg)
        except OSError:
            self.shutdown()

    def on_control(self) -> None:
        try:
            msg, fds = protocol.recv_control(self.sock)
        except protocol.ProtocolError:
            return
        except OSError:
            msg, fds = None, []
        if msg is None:
            self.shutdown()
        if msg.get("t") == "spawn" and len(fds) in (2, 3):
            self.spawn(msg["spec"], fds)
        else:
            for fd in fds:
                os.close(fd)

    def spawn(self, spec: limits.Sandbox, fds: list[int]) -> None:
        """``fds``: the channel, the output pipe and, for a runtime that takes
        queued invocations, the queue (``protocol.BlockingChannel``)."""
        try:
            pid = os.fork()
        except OSError as exc:
            for fd in fds:
                os.close(fd)
            self.send({"t": "spawn_failed", "error": str(exc)})
            return
        if pid == 0:
            self.become_worker(spec, fds)
        for fd in fds:
            os.close(fd)
        self.children[pid] = spec["tmp_dir"]
        self.send({"t": "spawned", "pid": pid})

    def become_worker(self, spec: limits.Sandbox, fds: list[int]) -> NoReturn:
        code = 1
        try:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            self.selector.close()
            self.sock.close()
            os.close(self.wake_r)
            os.close(self.wake_w)
            code = _run_worker(spec, fds, self.pid)
        except SystemExit as exc:
            code = _exit_code(exc)
        except BaseException:
            traceback.print_exc()
        finally:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            os._exit(code)

    def reap(self) -> None:
        try:
            while os.read(self.wake_r, 512):
                pass
        except BlockingIOError:
            pass
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.children.pop(pid, None)
            self.send({"t": "exit", "pid": pid, "status": status})

    def shutdown(self) -> NoReturn:
        """The proxy went away: take every worker down with us and clean up."""
        for pid in self.children:
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
        for pid, tmp_dir in self.children.items():
            with contextlib.suppress(OSError):
                os.waitpid(pid, 0)
            shutil.rmtree(tmp_dir, ignore_errors=True)
        os._exit(0)


def _ignore(signum: int, frame: object) -> None:
    """SIGCHLD only needs to wake the selector (through the wakeup fd)."""


def _exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code & 0xFF
    print(exc.code, file=sys.stderr)
    return 1


def _run_worker(spec: limits.Sandbox, fds: list[int], zygote_pid: int) -> int:
    channel_fd, output_fd = fds[0], fds[1]
    queue_fd = fds[2] if len(fds) > 2 else -1
    tmp = limits.enter_sandbox(spec, zygote_pid)
    os.dup2(output_fd, 1)
    os.dup2(output_fd, 2)
    os.close(output_fd)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    # Nothing of the zygote's but the channel, the queue and stdio reaches user code.
    start = 3
    for fd in sorted({channel_fd, queue_fd} - {-1}):
        os.closerange(start, fd)
        start = fd + 1
    os.closerange(start, 1 << 20)
    # The package folder is what Lambda puts first on sys.path (/var/task); it is
    # read-only there, so no bytecode is written next to the user's code.
    base = [p for p in sys.path if p and not p.startswith(spec["task_root"])]
    sys.path[:] = [spec["task_root"], *base]
    sys.dont_write_bytecode = True
    # Preloaded by the zygote for CloudFront Functions; kept before edgesim's
    # modules leave sys.modules (a re-import would load the whole proxy).
    cff = sys.modules.get(f"{__package__}.cff_runtime")
    for name in [m for m in sys.modules if m == "edgesim" or m.startswith("edgesim.")]:
        del sys.modules[name]
    tempfile = sys.modules.get("tempfile")
    if tempfile is not None:
        tempfile.tempdir = None  # type: ignore[attr-defined]  # recomputed from TMPDIR
    if spec["engine"] == "node":
        os.set_inheritable(channel_fd, True)
        argv = [spec["node"], _NODE_RUNTIME, spec["handler"], str(channel_fd), spec["arn"]]
        try:
            os.execve(spec["node"], argv, os.environ)
        except OSError as exc:
            print(f"cannot run {spec['node']}: {exc}", file=sys.stderr)
            return 127
    queue = socket.socket(fileno=queue_fd) if queue_fd >= 0 else None
    channel = protocol.BlockingChannel(socket.socket(fileno=channel_fd), queue)
    if spec["engine"] == "cloudfront-js":
        if cff is None:
            print("the zygote did not preload the CloudFront Functions runtime", file=sys.stderr)
            return 1
        return int(cff.serve(channel, spec["options"]))
    return runtime.serve(channel, spec["handler"], spec["arn"], tmp)
