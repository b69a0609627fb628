"""``InvokeResult``: what one invocation did, as Lambda and its logs tell it.

``build_result`` turns the way an exchange with a worker ended (an
``Outcome``) into Lambda's view of it: the error payload (the function's own,
or the platform's for a timeout, a crash, memory or a protocol fault), the
billed duration, Max Memory Used, and the log lines in CloudWatch's order:
output of the Init phase, ``START``, the function's output, ``END``,
``REPORT``, then the platform's error lines (see ``logs``).
"""

from __future__ import annotations

import math
import os
import random
import signal
from dataclasses import dataclass
from typing import Any, Literal

from edgesim.models import slot_init

from . import logs
from .process import OUTPUT_CAP, Outcome

__all__ = [
    "InvokeResult",
    "build_cloudfront_result",
    "build_result",
    "new_request_id",
    "output_lines",
    "throttled",
]


@slot_init
@dataclass(frozen=True, slots=True)
class InvokeResult:
    """What one invocation did, as Lambda and its logs would tell it."""

    kind: Literal["ok", "error", "timeout", "crash", "oom", "throttled", "invalid"]
    payload: Any  # the handler's return value (JSON-decoded) when kind == "ok"
    error: dict[str, Any] | None  # Lambda's error payload, None for ok and throttled
    request_id: str
    duration_ms: float
    billed_ms: int
    max_memory_mb: int
    init_duration_ms: float | None  # on a cold start: the module import
    logs: tuple[str, ...]  # START, the function's output, END, REPORT (+ platform errors)
    # CloudFront Functions: the run's CPU as a percentage of its budget, 0-100.
    compute_utilization: int | None = None


# Request ids must be unique and look random, not be secret: a PRNG seeded from
# the OS costs no system call per invocation, unlike os.urandom (or uuid.uuid4).
_ids = random.Random(os.urandom(32))
_VERSION_4 = ~(0xF << 76 | 0x3 << 62) & ((1 << 128) - 1)


def new_request_id() -> str:
    """A random (version 4) UUID, as Lambda's request ids are."""
    h = f"{_ids.getrandbits(128) & _VERSION_4 | 0x4 << 76 | 0x2 << 62:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def throttled(request_id: str) -> InvokeResult:
    """Lambda throttles at once (no queue, no logs, nothing billed)."""
    return InvokeResult("throttled", None, None, request_id, 0.0, 0, 0, None, ())


def build_result(
    request_id: str,
    outcome: Outcome,
    *,
    init: Outcome | None,
    limit: float,
    memory_mb: int,
    version: str,
    failed_init: bool = False,
) -> InvokeResult:
    """One invocation's result; ``failed_init`` when ``outcome`` is a failed Init phase.

    ``init`` is the Init outcome of a cold start that succeeded (its output
    goes before ``START``, as in CloudWatch); ``limit`` the timeout in seconds.
    """
    kind = outcome.kind
    assert kind != "unstarted", "the pool runs it elsewhere"
    error = None if kind == "ok" else _error(request_id, outcome, limit)
    duration = outcome.duration_ms
    billed = logs.billed_ms(duration)
    # Lambda reports the memory size as Max Memory Used when it ran out.
    max_mb = memory_mb if kind == "oom" else math.ceil(outcome.rss_kb / 1024)
    init_ms = duration if failed_init else (init.duration_ms if init is not None else None)
    lines: list[str] = []
    if init is not None:
        lines += output_lines(init)
    if failed_init:
        lines += output_lines(outcome)
    lines.append(logs.start_line(request_id, version))
    if not failed_init:
        lines += output_lines(outcome)
    lines.append(logs.end_line(request_id))
    lines.append(
        logs.report_line(
            request_id,
            duration_ms=duration,
            billed_ms=billed,
            memory_mb=memory_mb,
            max_memory_mb=max_mb,
            init_ms=init_ms,
        )
    )
    if kind == "timeout":
        lines.append(logs.timeout_line(request_id, limit))
    elif kind in ("crash", "oom", "invalid") and error is not None:
        lines += [error["errorMessage"], error["errorType"]]
    # Positional: a class called with keywords first packs them into a dict.
    payload = outcome.payload if kind == "ok" else None
    return InvokeResult(
        kind, payload, error, request_id, duration, billed, max_mb, init_ms, tuple(lines)
    )


def _error(request_id: str, outcome: Outcome, limit: float) -> dict[str, Any] | None:
    if outcome.kind == "error":
        return outcome.error
    if outcome.kind == "timeout":
        return logs.timeout_error(request_id, limit)
    if outcome.kind == "crash":
        return logs.exit_error(request_id, outcome.status, "Runtime.ExitError")
    if outcome.kind == "oom":
        return logs.exit_error(request_id, 9, "Runtime.OutOfMemory")  # waitpid status: SIGKILL
    if outcome.kind == "invalid":
        # Lambda has no name for this (its runtime API rejects bad posts); an edgesim choice.
        return {
            "errorType": "Runtime.InvalidResponse",
            "errorMessage": (
                f"RequestId: {request_id} Error: Runtime sent an invalid response: {outcome.reason}"
            ),
        }
    return None


def build_cloudfront_result(request_id: str, outcome: Outcome) -> InvokeResult:
    """A CloudFront Function's run: its own log lines (``<id> START DistributionID: ...``,
    each ``console.log``, ``<id> END``; functions-logs, edge-functions-logs.md) and its
    compute utilization. A run the worker could not report (stopped, crashed) gets
    one platform line saying why."""
    kind = outcome.kind
    assert kind != "unstarted", "the pool runs it elsewhere"
    error = _error(request_id, outcome, 0.0) if kind != "error" else outcome.error
    lines = list(outcome.lines or []) + output_lines(outcome)
    status = outcome.status
    signalled = os.WTERMSIG(status) if status is not None and os.WIFSIGNALED(status) else 0
    if kind == "crash" and signalled == signal.SIGVTALRM:  # cff_runtime's CPU stop
        error = {
            "errorType": "FunctionExecutionError",
            "errorMessage": "The function ran far past its compute budget and was stopped",
        }
    if kind not in ("ok", "error") and error is not None:
        lines.append(f"[edgesim] {error['errorType']}: {error['errorMessage']}")
    compute = outcome.compute
    if compute is None:
        compute = 100 if kind in ("timeout", "crash", "oom") else 0
    payload = outcome.payload if kind == "ok" else None
    duration, max_mb = outcome.duration_ms, math.ceil(outcome.rss_kb / 1024)
    # Positional, as in build_result. Billed 0: CloudFront Functions bill per
    # invocation, not per duration; no Init Duration.
    return InvokeResult(
        kind, payload, error, request_id, duration, 0, max_mb, None, tuple(lines), compute
    )


def output_lines(outcome: Outcome) -> list[str]:
    """What the worker wrote during ``outcome``, as log lines (plus a note if cut)."""
    if not outcome.output and not outcome.dropped:
        return []
    lines = outcome.output.decode("utf-8", "replace").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if outcome.dropped:
        lines.append(
            f"[edgesim] {outcome.dropped} more bytes of output dropped: "
            f"over the {OUTPUT_CAP // 1024} KB log limit for one invocation"
        )
    return lines
