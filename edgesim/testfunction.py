"""Run one CloudFront Function on one event, as CloudFront's TestFunction API does.

``run_test_function`` takes a configured function and an event object (the
format of test-function.md and of the test objects AWS ships with its
examples: ``distributionDomainName``, ``distributionId``, ``requestId``,
query strings, headers and cookies may be left out; ``multivalue`` is read
as ``multiValue``), runs it once in a real sandboxed worker, and returns
what TestFunction returns: the function's output, its error message, its
log lines and its compute utilization. As on AWS, origin changes are not
applied (the test API "doesn't test whether an origin modification has
occurred").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edgesim.codecs.cloudfront_function import complete_test_event
from edgesim.config.schema import Distribution, FunctionConfig

__all__ = ["TestResult", "run_test_function"]


@dataclass(frozen=True, slots=True)
class TestResult:
    """TestFunction's ``TestResult``."""

    __test__ = False  # not a pytest test class

    output: dict[str, Any] | None  # FunctionOutput: {"request": ...} or {"response": ...}
    error_message: str  # FunctionErrorMessage, "" when the function ran
    logs: tuple[str, ...]  # FunctionExecutionLogs
    compute_utilization: int  # ComputeUtilization, 0-100


async def run_test_function(
    function: FunctionConfig,
    event: object,
    *,
    distribution: Distribution | None = None,
    request_id: str = "edgesim-test-function-request-id-0000000000000000000==",
) -> TestResult:
    """Run ``function`` (a CloudFront Function) once on ``event``; ValueError for a bad event."""
    from edgesim.workers.pool import FunctionPool

    if not function.is_cloudfront_function:
        raise ValueError(f"{function.name} is not a CloudFront Function")
    full = complete_test_event(
        event, distribution=distribution or Distribution(), request_id=request_id
    )
    pool = FunctionPool(function)
    try:
        result = await pool.invoke(full)
    finally:
        await pool.close()
    logs = tuple(result.logs)
    compute = result.compute_utilization or 0
    if result.kind != "ok":
        error = result.error or {}
        message = f"{error.get('errorType', result.kind)}: {error.get('errorMessage', '')}"
        return TestResult(None, message, logs, compute)
    value = result.payload.get("output")
    is_response = full["context"]["eventType"] == "viewer-response" or (
        isinstance(value, dict) and "statusCode" in value
    )
    return TestResult({"response" if is_response else "request": value}, "", logs, compute)
