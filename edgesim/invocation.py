"""One invocation by hand: what ``edgesim invoke`` runs, like the Lambda console's Test button.

``tester_for`` finds the function in the config and gives a ``FunctionTester``;
``FunctionTester.test`` runs the event once in a real, sandboxed worker and
returns a ``TestResult`` (the output or error payload, the log lines with
``START``/``END``/``REPORT``); ``render`` prints it the way the console
shows a test, and ``invoke`` does all of that for the command line.

A kind of function plugs in with a ``FunctionTester`` of its own and one case
in ``tester_for``: ``LambdaEdgeTester`` takes Lambda@Edge events
(``{"Records": [{"cf": ...}]}``) and reports what the Lambda console does;
``CloudFrontFunctionTester`` takes the event objects CloudFront's TestFunction
API takes (``{"version": "1.0", "context": ..., "viewer": ..., "request":
...}``, ``edgesim.testfunction``) and reports what TestFunction does, compute
utilization included. An event of the other kind is refused with a message
that says which one the function takes and how to make one.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from edgesim.config.node import did_you_mean
from edgesim.config.schema import Config, Distribution, FunctionConfig

__all__ = [
    "CloudFrontFunctionTester",
    "FunctionTester",
    "LambdaEdgeTester",
    "TestResult",
    "invoke",
    "read_event",
    "render",
    "tester_for",
]


@dataclass(frozen=True, slots=True)
class TestResult:
    """One test invocation: what the Lambda console (or TestFunction) reports."""

    __test__ = False  # not a pytest test class

    function: str
    succeeded: bool
    # The function's result, or when it failed its error: Lambda's error payload,
    # or TestFunction's FunctionErrorMessage (a string).
    output: Any
    logs: tuple[str, ...]
    request_id: str
    compute_utilization: int | None = None  # CloudFront Functions only: 0-100
    warnings: tuple[str, ...] = ()


class FunctionTester(Protocol):
    """Runs one function on one test event, in the sandbox the edge would use."""

    name: str

    async def test(self, event: Any) -> TestResult: ...


class LambdaEdgeTester:
    """A Lambda@Edge function, invoked once in a fresh worker pool (a cold start)."""

    def __init__(self, function: FunctionConfig, *, log_dir: Path | None = None) -> None:
        self.name = function.name
        self.function = function
        self.log_dir = log_dir

    async def test(self, event: Any) -> TestResult:
        from edgesim.workers.pool import FunctionPool

        warnings = []
        if _is_cloudfront_functions_event(event):
            raise ValueError(
                "this is a CloudFront Functions test event object; "
                f"{self.name} is a Lambda@Edge function ({self.function.runtime}), which "
                'takes a Lambda@Edge event ({"Records": [{"cf": ...}]}): start from '
                "`edgesim event viewer-request` (or another event type) instead"
            )
        if not _is_lambda_edge_event(event):
            warnings.append(
                "the event has no Records[0].cf, so it is not a Lambda@Edge event; "
                "invoking anyway, as the Lambda console does"
            )
        pool = FunctionPool(self.function, log_dir=self.log_dir)
        try:
            result = await pool.invoke(event)
        finally:
            await pool.close()
        succeeded = result.kind == "ok"
        return TestResult(
            function=self.name,
            succeeded=succeeded,
            output=result.payload if succeeded else result.error,
            logs=result.logs,
            request_id=result.request_id,
            warnings=tuple(warnings),
        )


class CloudFrontFunctionTester:
    """A CloudFront Function, run once on a TestFunction event object (test-function.md)."""

    def __init__(
        self,
        function: FunctionConfig,
        *,
        distribution: Distribution | None = None,
        log_dir: Path | None = None,
    ) -> None:
        self.name = function.name
        self.function = function
        self.distribution = distribution
        self.log_dir = log_dir

    async def test(self, event: Any) -> TestResult:
        from edgesim.testfunction import TEST_REQUEST_ID, run_test_function

        if _is_lambda_edge_event(event):
            raise ValueError(
                "this is a Lambda@Edge event (Records[0].cf); "
                f"{self.name} is a CloudFront Function ({self.function.runtime}), which takes "
                'a CloudFront Functions test event object ({"version": "1.0", "context": '
                '{"eventType": ...}, "viewer": ..., "request": ...}, as TestFunction does): '
                "start from `edgesim event viewer-request --cloudfront-function` instead"
            )
        result = await run_test_function(
            self.function, event, distribution=self.distribution, log_dir=self.log_dir
        )
        succeeded = not result.error_message
        return TestResult(
            function=self.name,
            succeeded=succeeded,
            output=result.output if succeeded else result.error_message,
            logs=result.logs,
            request_id=_request_id(event) or TEST_REQUEST_ID,
            compute_utilization=result.compute_utilization,
        )


def tester_for(config: Config, name: str, *, log_dir: Path | None = None) -> FunctionTester:
    """The tester of the function ``name``; LookupError (with a did-you-mean) if none."""
    function = config.functions.get(name)
    if function is not None and function.is_cloudfront_function:
        return CloudFrontFunctionTester(function, distribution=config.distribution, log_dir=log_dir)
    if function is not None:
        return LambdaEdgeTester(function, log_dir=log_dir)
    if not config.functions:
        raise LookupError(f"no function named {name!r}: the config defines no functions")
    raise LookupError(f"no function named {name!r}{did_you_mean(name, sorted(config.functions))}")


def read_event(path: str | Path) -> Any:
    """A test event from a JSON file; ValueError naming the line and column if it is not JSON."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the event: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: the event is not UTF-8 text") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from None


def render(result: TestResult) -> str:
    """The result as the console shows a test.

    Lambda@Edge, as the Lambda console's Test: status, response (or error
    payload), logs with START/END/REPORT, request id. A CloudFront Function,
    with the fields of TestFunction's TestResult: status, compute
    utilization, the function output (or error message), the execution logs.
    """
    status = f"Test of {result.function}: {'Succeeded' if result.succeeded else 'Failed'}"
    if result.compute_utilization is not None:
        lines = [status, "", "Compute utilization", str(result.compute_utilization), ""]
        if result.succeeded:
            lines += ["Function output", json.dumps(result.output, indent=2, ensure_ascii=False)]
        else:
            lines += ["Function error message", str(result.output)]
        return "\n".join([*lines, "", "Function execution logs", *result.logs])
    lines = [
        status,
        "",
        "Response" if result.succeeded else "Error",
        json.dumps(result.output, indent=2, ensure_ascii=False),
        "",
        "Function Logs",
        *result.logs,
        "",
        "Request ID",
        result.request_id,
    ]
    return "\n".join(lines)


def invoke(config: Config, name: str, event: Any, *, log_dir: Path | None = None) -> TestResult:
    """Run ``name`` once on ``event`` (blocking); LookupError or ValueError for bad input."""
    tester = tester_for(config, name, log_dir=log_dir)
    return asyncio.run(tester.test(event))


def _is_lambda_edge_event(event: Any) -> bool:
    records = event.get("Records") if isinstance(event, dict) else None
    return (
        isinstance(records, list)
        and len(records) == 1
        and isinstance(records[0], dict)
        and isinstance(records[0].get("cf"), dict)
    )


def _is_cloudfront_functions_event(event: Any) -> bool:
    return isinstance(event, dict) and {"context", "request"} <= event.keys()


def _request_id(event: Any) -> str | None:
    context = event.get("context") if isinstance(event, dict) else None
    value = context.get("requestId") if isinstance(context, dict) else None
    return value if isinstance(value, str) else None
