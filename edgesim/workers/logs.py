"""Lambda's own log lines and error payloads for one invocation.

Formats from the Lambda Developer Guide (monitoring-cloudwatchlogs.md, the
``START``/``END``/``REPORT`` platform lines) and from captured CloudWatch logs
(cloudfront-semantics.md section 9.2): ``REPORT`` fields are tab-separated,
``Init Duration`` appears only on a cold start, a timeout adds
``<time> <requestId> Task timed out after N.NN seconds``, and a runtime that
dies adds ``RequestId: <id> Error: Runtime exited with error: <reason>`` and
the error type. The reason wording is Lambda's (its runtime agent prints Go's
names for signals).

Lambda@Edge writes to the log group ``/aws/lambda/us-east-1.<name>``
(edge-functions-logs.md); ``LogGroup`` appends to one file per group, and
``Batched`` gathers the lines of concurrent invocations into one write.
"""

from __future__ import annotations

import asyncio
import math
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = [
    "FLUSH_DELAY",
    "Batched",
    "LogGroup",
    "billed_ms",
    "end_line",
    "exit_error",
    "exit_reason",
    "report_line",
    "start_line",
    "timeout_error",
    "timeout_line",
]

# Go's signal names, as the Lambda runtime agent prints them.
_SIGNAL_NAMES: dict[int, str] = {
    signal.SIGABRT: "aborted",
    signal.SIGBUS: "bus error",
    signal.SIGFPE: "floating point exception",
    signal.SIGHUP: "hangup",
    signal.SIGILL: "illegal instruction",
    signal.SIGINT: "interrupt",
    signal.SIGKILL: "killed",
    signal.SIGPIPE: "broken pipe",
    signal.SIGQUIT: "quit",
    signal.SIGSEGV: "segmentation fault",
    signal.SIGSYS: "bad system call",
    signal.SIGTERM: "terminated",
    signal.SIGTRAP: "trace/breakpoint trap",
    signal.SIGVTALRM: "virtual timer expired",
    signal.SIGXCPU: "CPU time limit exceeded",
    signal.SIGXFSZ: "file size limit exceeded",
}


def billed_ms(duration_ms: float) -> int:
    """Lambda@Edge bills in 1 ms steps, rounded up (what's-new 2021-03, 1 ms billing)."""
    return max(1, math.ceil(duration_ms))


def start_line(request_id: str, version: str) -> str:
    return f"START RequestId: {request_id} Version: {version}"


def end_line(request_id: str) -> str:
    return f"END RequestId: {request_id}"


def report_line(
    request_id: str,
    *,
    duration_ms: float,
    billed_ms: int,
    memory_mb: int,
    max_memory_mb: int,
    init_ms: float | None,
) -> str:
    """``billed_ms`` is ``billed_ms(duration_ms)``, which the caller has already."""
    line = (
        f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms"
        f"\tBilled Duration: {billed_ms} ms\tMemory Size: {memory_mb} MB"
        f"\tMax Memory Used: {max_memory_mb} MB"
    )
    if init_ms is not None:
        line += f"\tInit Duration: {init_ms:.2f} ms"
    return line


def timeout_line(request_id: str, timeout: float) -> str:
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
    millis = int(now * 1000) % 1000
    return f"{stamp}.{millis:03d}Z {request_id} Task timed out after {timeout:.2f} seconds"


def timeout_error(request_id: str, timeout: float) -> dict[str, Any]:
    return {
        "errorType": "Sandbox.Timedout",
        "errorMessage": (
            f"RequestId: {request_id} Error: Task timed out after {timeout:.2f} seconds"
        ),
    }


def exit_reason(status: int | None) -> str:
    """``exit status 1``, ``signal: killed``...: a ``waitpid`` status in Lambda's words."""
    if status is None:
        return "signal: killed"  # the zygote went away before it could say
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        return "signal: " + _SIGNAL_NAMES.get(sig, f"signal {sig}")
    return f"exit status {os.waitstatus_to_exitcode(status)}"


def exit_error(request_id: str, status: int | None, error_type: str) -> dict[str, Any]:
    if status is not None and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
        message = f"RequestId: {request_id} Error: Runtime exited without providing a reason"
    else:
        message = f"RequestId: {request_id} Error: Runtime exited with error: {exit_reason(status)}"
    return {"errorType": error_type, "errorMessage": message}


# How long the lines of an invocation may wait to be written with others'. A
# write to a log file costs more than everything else an invocation's lines
# need, so under concurrent load they are written in batches.
FLUSH_DELAY = 0.02


class Batched:
    """Text for a sink (a file, the console), written at once or gathered briefly.

    ``write(text)`` hands ``text`` over at once, after anything still pending;
    ``write(text, busy=True)`` (other invocations are running or waiting to) keeps it
    for at most ``FLUSH_DELAY`` seconds and hands it over with whatever came
    meanwhile, in order, joined by ``sep``, in one call. So a lone invocation's
    lines are out when it returns, and a busy edge writes once per batch, not
    per request.
    """

    def __init__(self, sink: Callable[[str], None], sep: str = "") -> None:
        self._sink = sink
        self._sep = sep
        self._pending: list[str] = []
        self._timer: asyncio.TimerHandle | None = None

    def write(self, text: str, *, busy: bool = False) -> None:
        self._pending.append(text)
        if not busy:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(FLUSH_DELAY, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._pending:
            text = self._sep.join(self._pending) if len(self._pending) > 1 else self._pending[0]
            self._pending.clear()
            self._sink(text)


class LogGroup:
    """A function's log group as one file, ``<dir>/us-east-1.<name>.log``, appended to.

    An invocation's lines are one ``write`` to a file opened for appending, on
    the event loop (microseconds); while other invocations run they may be
    batched with theirs (``Batched``). ``close`` writes whatever is pending.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._batch = Batched(self._append)

    def write(self, lines: tuple[str, ...], *, busy: bool = False) -> None:
        """Append one invocation's ``lines``; ``busy``: others are running or waiting to."""
        self._batch.write("\n".join(lines) + "\n", busy=busy)

    def _append(self, text: str) -> None:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
            self._fd = os.open(self.path, flags, 0o666)  # as open("a"): umask applies
        # A line that is not valid Unicode (a lone surrogate from a function's
        # console) is escaped: it must not cost the lines written with it.
        data = text.encode("utf-8", "backslashreplace")
        while data:
            data = data[os.write(self._fd, data) :]

    def close(self) -> None:
        self._batch.flush()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
