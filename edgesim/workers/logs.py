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
(edge-functions-logs.md); ``LogGroup`` appends to one file per group.
"""

from __future__ import annotations

import math
import os
import signal
import time
from pathlib import Path
from typing import Any, TextIO

__all__ = [
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
    memory_mb: int,
    max_memory_mb: int,
    init_ms: float | None,
) -> str:
    line = (
        f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms"
        f"\tBilled Duration: {billed_ms(duration_ms)} ms\tMemory Size: {memory_mb} MB"
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


class LogGroup:
    """A function's log group as one file, ``<dir>/us-east-1.<name>.log``, appended to.

    Writes go to the page cache and are flushed per invocation: microseconds,
    so they happen on the event loop.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: TextIO | None = None

    def write(self, lines: tuple[str, ...]) -> None:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", encoding="utf-8")
        self._file.write("\n".join(lines) + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
