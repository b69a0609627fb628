"""Node.js Lambda@Edge: real node workers running the handlers in fixtures/functions/node_app.

The same pool, sandbox and limits as Python (tests/test_workers.py); only the
inner runtime differs. Formats follow aws-lambda-nodejs-runtime-interface-client.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from edgesim.config.schema import FunctionConfig
from edgesim.workers import FunctionPool, InvokeResult

APP = Path(__file__).parent / "fixtures" / "functions" / "node_app"
LINE = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)\t(\S+)\t([A-Z]+)\t(.*)")

PoolFactory = Callable[..., FunctionPool]


@pytest.fixture
async def make_pool() -> AsyncIterator[PoolFactory]:
    pools: list[FunctionPool] = []

    def factory(handler: str, *, runtime: str = "nodejs20.x", **limits: Any) -> FunctionPool:
        pool = FunctionPool(FunctionConfig("demo", runtime, APP, handler, **limits))
        pools.append(pool)
        return pool

    yield factory
    for pool in pools:
        await pool.close()


def between(result: InvokeResult) -> list[str]:
    rid = result.request_id
    start = result.logs.index(f"START RequestId: {rid} Version: 1")
    return list(result.logs[start + 1 : result.logs.index(f"END RequestId: {rid}")])


async def test_async_handler_result_logs_and_init_duration(make_pool: PoolFactory) -> None:
    pool = make_pool("app.echo")
    first = await pool.invoke({"n": 1, "s": "é"})
    second = await pool.invoke({"n": 2})

    assert first.kind == "ok"
    assert first.payload["event"] == {"n": 1, "s": "é"}
    assert first.payload["pid"] == second.payload["pid"]  # warm: the same environment
    # Init output before START, tagged "undefined" as Lambda's Node runtime does.
    init = LINE.fullmatch(first.logs[0])
    assert init is not None and init.group(2, 3, 4) == ("undefined", "INFO", "init: module loaded")
    (echo,) = between(first)
    match = LINE.fullmatch(echo)
    assert match is not None
    assert match.group(2, 3, 4) == (first.request_id, "INFO", "echo { n: 1, s: 'é' }")
    assert first.init_duration_ms is not None and first.init_duration_ms > 0
    assert "Init Duration" in first.logs[-1]
    assert second.init_duration_ms is None


async def test_duration_is_how_long_the_handler_ran(make_pool: PoolFactory) -> None:
    pool = make_pool("app.wait")
    result = await pool.invoke({"ms": 50})
    assert (result.kind, result.payload) == ("ok", "waited")
    # Node.js times a setTimeout from its loop's cached clock, which may be a
    # little older than the runtime's own start of the Duration.
    assert 45 <= result.duration_ms < 3000


async def test_module_state_survives_while_warm(make_pool: PoolFactory) -> None:
    pool = make_pool("app.counter")
    results = [await pool.invoke({}) for _ in range(3)]
    assert [r.payload["calls"] for r in results] == [1, 2, 3]


@pytest.mark.parametrize(
    ("handler", "payload"),
    [
        ("app.callback", {"style": "callback"}),
        ("app.callbackNoWait", {"style": "no-wait"}),
        ("app.succeed", {"style": "succeed"}),
        # Neither a promise nor a callback: Lambda answers null once the loop is empty.
        ("app.plainReturn", None),
        # Nor does a pending promise from a handler not declared async.
        ("app.pendingPromise", None),
        ("esm.handler", None),
        ("typed/index.handler", {"esm": True}),
        ("app.nested.deeper.handler", "nested"),
    ],
)
async def test_handler_styles(make_pool: PoolFactory, handler: str, payload: Any) -> None:
    result = await make_pool(handler).invoke({"x": 1})
    assert result.kind == "ok", result.error
    if handler == "esm.handler":
        assert result.payload["kind"] == "module"
        assert result.payload["event"] == {"x": 1}
        assert len(result.payload["digest"]) == 64
    else:
        assert result.payload == payload


async def test_callback_waits_for_the_event_loop(make_pool: PoolFactory) -> None:
    result = await make_pool("app.callback").invoke({})
    # The timer set before callback() ran before the invocation ended.
    assert any(line.endswith("\ttimer ran before the result") for line in between(result))


@pytest.mark.parametrize(
    ("handler", "error_type", "message"),
    [
        ("app.raises", "RangeError", "out of range"),
        ("app.callbackError", "TypeError", "bad input"),
        ("app.rejectString", "string", "just a string"),
        # An async handler still pending when the event loop has nothing left to run.
        (
            "app.neverSettles",
            "Runtime.NodeJsExit",
            "The Lambda runtime client detected an unexpected Node.js exit code. This is most"
            " commonly caused by a Promise that was never settled. For more information, see"
            " https://nodejs.org/docs/latest/api/process.html#exit-codes",
        ),
    ],
)
async def test_function_errors_give_node_payloads(
    make_pool: PoolFactory, handler: str, error_type: str, message: str
) -> None:
    pool = make_pool(handler)
    result = await pool.invoke({})
    assert result.kind == "error"
    assert result.error is not None
    assert (result.error["errorType"], result.error["errorMessage"]) == (error_type, message)
    assert isinstance(result.error["trace"], list)
    (logged,) = between(result)
    match = LINE.fullmatch(logged)
    assert match is not None and match.group(3) == "ERROR"
    assert match.group(4).startswith("Invoke Error \t{")
    # A handled error keeps the environment.
    again = await pool.invoke({})
    assert again.init_duration_ms is None


@pytest.mark.parametrize(
    ("handler", "error_type", "message"),
    [
        ("app.nope", "Runtime.HandlerNotFound", "app.nope is undefined or not exported"),
        ("app.notAFunction", "Runtime.HandlerNotFound", "app.notAFunction is not a function"),
        ("nofile.handler", "Runtime.ImportModuleError", "Error: Cannot find module 'nofile'"),
        (
            "missing_dep.handler",
            "Runtime.ImportModuleError",
            "Error: Cannot find module 'not-installed-anywhere'",
        ),
        ("broken.handler", "Runtime.UserCodeSyntaxError", "SyntaxError: Unexpected end of input"),
        ("handler", "Runtime.MalformedHandlerName", "Bad handler"),
        ("throws_at_load.handler", "Error", "cannot start"),
    ],
)
async def test_init_faults(
    make_pool: PoolFactory, handler: str, error_type: str, message: str
) -> None:
    pool = make_pool(handler)
    result = await pool.invoke({})
    assert result.kind == "error"
    assert result.error is not None
    assert result.error["errorType"] == error_type
    assert result.error["errorMessage"].startswith(message)
    assert any("\tERROR\tUncaught Exception \t{" in line for line in result.logs)
    assert pool.stats()["environments"] == 0  # a failed Init is discarded


@pytest.mark.parametrize(
    ("handler", "error_type", "message"),
    [
        ("app.uncaught", "Error", "thrown from a timer"),
        ("app.unhandled", "Runtime.UnhandledPromiseRejection", "Error: nobody caught me"),
    ],
)
async def test_uncaught_errors_fail_the_invocation_and_end_the_environment(
    make_pool: PoolFactory, handler: str, error_type: str, message: str
) -> None:
    pool = make_pool(handler, timeout=5)
    result = await pool.invoke({})
    assert result.kind == "error"
    assert result.error is not None
    assert (result.error["errorType"], result.error["errorMessage"]) == (error_type, message)
    loop = asyncio.get_running_loop()
    end = loop.time() + 10
    while pool.stats()["environments"]:
        assert loop.time() < end
        await asyncio.sleep(0.01)
    again = await pool.invoke({})
    assert again.init_duration_ms is not None  # a new environment


async def test_context_object(make_pool: PoolFactory) -> None:
    result = await make_pool("app.context", timeout=2).invoke({})
    info = result.payload
    assert info["functionName"] == "us-east-1.demo"
    assert info["functionVersion"] == "1"
    assert info["invokedFunctionArn"] == (
        "arn:aws:lambda:us-east-1:123456789012:function:us-east-1.demo:1"
    )
    assert info["memoryLimitInMB"] == "128"  # a string, as in the real runtime
    assert info["awsRequestId"] == result.request_id
    assert info["logGroupName"] == "/aws/lambda/us-east-1.demo"
    assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[1\][0-9a-f]{32}", info["logStreamName"])
    assert info["identity"] == info["clientContext"] == "undefined"
    assert 0 < info["remaining"] <= 2000
    assert info["waits"] is True


async def test_console_levels(make_pool: PoolFactory) -> None:
    result = await make_pool("app.logs").invoke({})
    levels = [LINE.fullmatch(line).group(3, 4) for line in between(result)]  # type: ignore[union-attr]
    assert levels == [
        ("INFO", "info formatted"),
        ("WARN", "careful"),
        ("ERROR", "bad { a: 1 }"),
        ("DEBUG", "debugging"),
    ]


async def test_environment_is_lambdas(make_pool: PoolFactory) -> None:
    result = await make_pool("app.environment").invoke({})
    env = result.payload["env"]
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_nodejs20.x"
    assert env["_HANDLER"] == "app.environment"
    assert env["NODE_PATH"] == str(APP.resolve())
    assert "PYTHONPATH" not in env
    assert not any(key in env for key in os.environ if key.startswith(("HOME", "VIRTUAL_ENV")))
    assert result.payload["cwd"] == str(APP.resolve())


async def test_unserializable_result_is_a_marshal_error(make_pool: PoolFactory) -> None:
    result = await make_pool("app.bigint").invoke({})
    assert result.kind == "error"
    assert result.error is not None and result.error["errorType"] == "Runtime.MarshalError"


async def test_timeout_kills_and_replaces(make_pool: PoolFactory) -> None:
    pool = make_pool("app.spin", timeout=0.3)
    result = await pool.invoke({})
    assert result.kind == "timeout"
    assert result.error is not None and result.error["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 0.30 seconds" in result.logs[-1]


async def test_memory_over_the_limit_is_killed(make_pool: PoolFactory) -> None:
    pool = make_pool("app.hog", memory=128, timeout=10)
    result = await pool.invoke({"megabytes": 400})
    assert result.kind == "oom"
    assert result.error is not None and result.error["errorType"] == "Runtime.OutOfMemory"
    ok = await make_pool("app.hog", memory=128).invoke({"megabytes": 1})
    assert ok.payload == 1
