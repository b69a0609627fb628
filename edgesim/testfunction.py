"""Run one CloudFront Function on one event, as CloudFront's TestFunction API does.

``run_test_function`` takes a configured function and a test event object
(test-function.md; the test objects AWS ships with its examples), completes
and checks it (``edgesim.codecs.cloudfront_test_event``), runs it once in a
real sandboxed worker, and returns what TestFunction returns
(API_TestResult): the function's output, its error message, its log lines
and its compute utilization. ``edgesim invoke`` prints that for a
CloudFront Function.

As on AWS:

- The output is ``{"request": ...}`` or ``{"response": ...}``, what the
  function returned, not checked against the edge's validation rules (the
  test shows what the function did; a request through the edge still gets
  502 FunctionValidationError for a result CloudFront refuses).
- The log lines are only what the function logged (``FunctionExecutionLogs``
  holds ``console.log`` output; the edge's log files add the request id and
  the START and END lines CloudWatch shows).
- Origin changes are not applied (the test API "doesn't test whether an
  origin modification has occurred").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgesim.codecs.cloudfront_test_event import complete_test_event
from edgesim.config.schema import Distribution, FunctionConfig

__all__ = ["TestFunctionResult", "run_test_function"]

TEST_REQUEST_ID = "edgesim-test-function-request-id-0000000000000000000=="


@dataclass(frozen=True, slots=True)
class TestFunctionResult:
    """TestFunction's ``TestResult`` (API_TestResult)."""

    __test__ = False  # not a pytest test class

    output: dict[str, Any] | None  # FunctionOutput: {"request": ...} or {"response": ...}
    error_message: str  # FunctionErrorMessage, "" when the function ran
    logs: tuple[str, ...]  # FunctionExecutionLogs: the function's own lines
    compute_utilization: int  # ComputeUtilization, 0-100
    event_type: str  # the test event's context.eventType


async def run_test_function(
    function: FunctionConfig,
    event: object,
    *,
    distribution: Distribution | None = None,
    request_id: str = TEST_REQUEST_ID,
    log_dir: Path | None = None,
) -> TestFunctionResult:
    """Run ``function`` (a CloudFront Function) once on ``event``; ValueError for a bad event."""
    from edgesim.workers.pool import FunctionPool

    if not function.is_cloudfront_function:
        raise ValueError(f"{function.name} is not a CloudFront Function")
    full = complete_test_event(
        event, distribution=distribution or Distribution(), request_id=request_id
    )
    event_type = full["context"]["eventType"]
    pool = FunctionPool(function, log_dir=log_dir)
    try:
        result = await pool.invoke(full)
    finally:
        await pool.close()
    logs = _function_lines(result.logs, str(full["context"]["requestId"]))
    compute = result.compute_utilization or 0
    if result.kind != "ok":
        error = result.error or {}
        message = f"{error.get('errorType', result.kind)}: {error.get('errorMessage', '')}"
        return TestFunctionResult(None, message, logs, compute, event_type)
    value = result.payload.get("output")
    is_response = event_type == "viewer-response" or (
        isinstance(value, dict) and "statusCode" in value
    )
    output = {"response" if is_response else "request": value}
    return TestFunctionResult(output, "", logs, compute, event_type)


def _function_lines(lines: tuple[str, ...], request_id: str) -> tuple[str, ...]:
    """The worker's CloudWatch-style lines (``<id> START ...``, ``<id> line``,
    ``<id> END``) as TestFunction lists them: the function's lines alone."""
    prefix = f"{request_id} "
    out = [line.removeprefix(prefix) for line in lines]
    if out and out[0].startswith("START DistributionID:"):
        out = out[1:]
    if out and out[-1] == "END":
        out = out[:-1]
    return tuple(out)
