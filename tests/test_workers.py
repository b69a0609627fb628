"""edgesim.workers: real worker processes running real handler packages.

Handlers live in tests/fixtures/functions/workers_app/app.py, one per behavior.
Nothing is mocked; waits poll the pool's stats with a deadline instead of
asserting on timing.
"""

from __future__ import annotations

import ast
import asyncio
import math
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from edgesim.config.schema import FunctionConfig
from edgesim.workers import FunctionPool, InvokeResult
from edgesim.workers.limits import TMP_BYTES
from edgesim.workers.logs import Batched, LogGroup
from edgesim.workers.pool import CLOUDFRONT_ENVIRONMENTS
from edgesim.workers.process import WorkerProcess
from edgesim.workers.protocol import OUTPUT_MARK
from edgesim.workers.watchdog import Watchdog

APP = Path(__file__).parent / "fixtures" / "functions" / "workers_app"
WORKERS = Path(__file__).parents[1] / "edgesim" / "workers"

PoolFactory = Callable[..., FunctionPool]


@pytest.fixture
async def make_pool() -> AsyncIterator[PoolFactory]:
    pools: list[FunctionPool] = []

    def factory(
        handler: str,
        *,
        code: Path = APP,
        log_dir: Path | None = None,
        console: Batched | None = None,
        **limits: Any,
    ):
        config = FunctionConfig(
            name="demo", runtime="python3.12", code=code, handler=handler, **limits
        )
        pool = FunctionPool(config, log_dir=log_dir, console=console)
        pools.append(pool)
        return pool

    yield factory
    for pool in pools:
        await pool.close()


async def eventually(check: Callable[[], bool], within: float = 10.0) -> None:
    """Poll ``check`` until it holds; fail after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + within
    while not check():
        assert loop.time() < end, "condition never became true"
        await asyncio.sleep(0.01)


def pid_gone(pid: int) -> bool:
    return not Path(f"/proc/{pid}").exists()


def between(logs: tuple[str, ...], request_id: str) -> list[str]:
    """The function's own lines: after START, before END."""
    start = logs.index(f"START RequestId: {request_id} Version: 1")
    end = logs.index(f"END RequestId: {request_id}")
    return list(logs[start + 1 : end])


def report(result: InvokeResult) -> str:
    return next(line for line in result.logs if line.startswith("REPORT "))


# -- results and reuse -------------------------------------------------------


async def test_ok_result_and_lambda_log_lines(make_pool: PoolFactory) -> None:
    pool = make_pool("app.echo")
    result = await pool.invoke({"n": 1, "s": "é"})

    assert result.kind == "ok"
    assert result.payload["event"] == {"n": 1, "s": "é"}
    assert result.error is None
    assert uuid.UUID(result.request_id).version == 4
    assert result.billed_ms >= 1
    assert result.max_memory_mb > 0
    rid = result.request_id
    # Init output comes before START, as in CloudWatch.
    assert result.logs[0] == "init: module imported"
    assert between(result.logs, rid) == ["echo {'n': 1, 's': 'é'}"]
    fields = report(result).split("\t")
    assert fields[0] == f"REPORT RequestId: {rid}"
    assert re.fullmatch(r"Duration: \d+\.\d\d ms", fields[1])
    assert fields[2] == f"Billed Duration: {result.billed_ms} ms"
    assert fields[3] == "Memory Size: 128 MB"
    assert fields[4] == f"Max Memory Used: {result.max_memory_mb} MB"
    assert re.fullmatch(r"Init Duration: \d+\.\d\d ms", fields[5])


@pytest.mark.parametrize(
    "value",
    [2**70, -(2**63), 0.1, -0.0, 1e300, "é \u2603 \n\t\"\\", "\ud800", [[], {}, None, True]],
    ids=["past-64-bits", "64-bits", "float", "negative-zero", "large-float", "text",
         "lone-surrogate", "nested"],
)  # fmt: skip
async def test_the_function_gets_each_event_value_as_it_was_sent(
    make_pool: PoolFactory, value: object
) -> None:
    """Each value of an event reaches the function as the caller gave it, whichever
    way its frame was written and parsed (``protocol``: an integer past 64 bits
    is what the fast parser would read as a float)."""
    pool = make_pool("app.reprs")
    result = await pool.invoke({"value": value, "deadline": 1})
    assert result.kind == "ok"
    assert result.payload == {"value": repr(value), "deadline": "1"}


async def test_duration_is_how_long_the_handler_ran(make_pool: PoolFactory) -> None:
    pool = make_pool("app.sleep")
    result = await pool.invoke({"seconds": 0.05})
    assert result.kind == "ok"
    assert 50 <= result.duration_ms < 3000
    assert f"\tDuration: {result.duration_ms:.2f} ms\t" in report(result)
    assert result.billed_ms == math.ceil(result.duration_ms)


async def test_warm_environment_keeps_module_state(make_pool: PoolFactory) -> None:
    pool = make_pool("app.counter")
    results = [await pool.invoke({}) for _ in range(3)]
    assert [r.payload["calls"] for r in results] == [1, 2, 3]
    assert len({r.payload["pid"] for r in results}) == 1


async def test_cold_start_reported_once(make_pool: PoolFactory) -> None:
    pool = make_pool("app.counter")
    first = await pool.invoke({})
    second = await pool.invoke({})
    assert first.init_duration_ms is not None and first.init_duration_ms > 0
    assert "Init Duration" in report(first)
    assert second.init_duration_ms is None
    assert "Init Duration" not in report(second)
    assert pool.stats()["cold_starts"] == 1
    assert pool.stats()["invocations"] == 2


async def test_idle_environment_is_reaped(make_pool: PoolFactory) -> None:
    pool = make_pool("app.counter", idle_timeout=0.2)
    pid = (await pool.invoke({})).payload["pid"]
    assert pool.stats()["warm"] == 1
    await eventually(lambda: pool.stats()["environments"] == 0)
    await eventually(lambda: pid_gone(pid))
    again = await pool.invoke({})
    assert again.payload == {"calls": 1, "pid": again.payload["pid"]}
    assert again.init_duration_ms is not None


async def test_prewarm_starts_environments_and_keeps_them(make_pool: PoolFactory) -> None:
    pool = make_pool("app.sleep", prewarm=1, concurrency=3, idle_timeout=0.1)
    await pool.start()
    assert pool.stats()["warm"] == 1
    first = await pool.invoke({})
    assert first.init_duration_ms is None
    assert pool.stats()["cold_starts"] == 0
    # Two at once: one prewarmed, one cold; the cold one ages out, the floor stays.
    both = await asyncio.gather(pool.invoke({"seconds": 0.2}), pool.invoke({"seconds": 0.2}))
    assert {r.kind for r in both} == {"ok"}
    assert pool.stats()["cold_starts"] == 1
    await eventually(lambda: pool.stats()["environments"] == 1)
    await asyncio.sleep(0.3)
    assert pool.stats()["environments"] == 1


async def test_throttles_when_every_environment_is_busy(make_pool: PoolFactory) -> None:
    pool = make_pool("app.sleep", concurrency=1)
    slow = asyncio.create_task(pool.invoke({"seconds": 1}))
    await eventually(lambda: pool.stats()["busy"] == 1)
    throttled = await pool.invoke({})
    assert throttled.kind == "throttled"
    assert throttled.payload is None and throttled.logs == ()
    assert (await slow).kind == "ok"
    assert pool.stats()["throttles"] == 1
    assert (await pool.invoke({})).kind == "ok"


# -- busy environments: waiting for the CPU is not concurrency ---------------


@pytest.fixture
def one_cpu() -> Iterator[None]:
    """This process (so the pools it makes, and their workers) on one CPU."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})
    yield
    os.sched_setaffinity(0, before)


async def test_a_burst_for_a_fast_function_waits_for_its_warm_environment(
    make_pool: PoolFactory, one_cpu: None
) -> None:
    """The function runs for a sliver of each round trip: its environment is busy
    waiting for the (one) CPU, not running it, so a burst queues for it instead
    of starting twenty more."""
    pool = make_pool("app.counter")
    first = await pool.invoke({})
    burst = await asyncio.gather(*(pool.invoke({}) for _ in range(20)))
    assert {r.kind for r in burst} == {"ok"}
    assert {r.payload["pid"] for r in burst} == {first.payload["pid"]}
    assert sorted(r.payload["calls"] for r in burst) == list(range(2, 22))
    stats = pool.stats()
    assert (stats["cold_starts"], stats["environments"], stats["throttles"]) == (1, 1, 0)


async def test_a_function_that_turns_slow_gets_an_environment_per_invocation(
    make_pool: PoolFactory,
) -> None:
    """Fast until now, then three slow invocations at once: the waiting ones see no
    environment free up and start their own, as on Lambda."""
    pool = make_pool("app.sleep", concurrency=3)
    await pool.invoke({})
    slow = await asyncio.gather(*(pool.invoke({"seconds": 0.5}) for _ in range(3)))
    assert {r.kind for r in slow} == {"ok"}
    assert len({r.payload["pid"] for r in slow}) == 3
    assert pool.stats()["cold_starts"] == 3


async def test_a_waiting_invocation_is_throttled_at_the_concurrency_limit(
    make_pool: PoolFactory,
) -> None:
    pool = make_pool("app.sleep", concurrency=1)
    await pool.invoke({})
    slow, waiting = await asyncio.gather(pool.invoke({"seconds": 0.5}), pool.invoke({}))
    assert (slow.kind, waiting.kind) == ("ok", "throttled")
    assert pool.stats()["throttles"] == 1


# -- function errors ---------------------------------------------------------


async def test_exception_gives_lambda_error_payload(make_pool: PoolFactory) -> None:
    pool = make_pool("app.fail")
    result = await pool.invoke({"action": "launch"})
    assert result.kind == "error"
    assert result.error is not None
    assert result.error["errorType"] == "KeyError"
    assert result.error["errorMessage"] == "'launch'"
    assert result.error["requestId"] == result.request_id
    trace = result.error["stackTrace"]
    assert len(trace) == 1
    assert trace[0].startswith('  File "') and "line" in trace[0] and ", in fail\n" in trace[0]
    lines = between(result.logs, result.request_id)
    assert lines[0] == "[ERROR] KeyError: 'launch'"
    assert lines[1] == "Traceback (most recent call last):"
    assert lines[2].startswith("\u00a0\u00a0File ")
    # The environment survives a function error.
    assert pool.stats()["warm"] == 1
    assert pool.stats()["errors"] == 1


@pytest.mark.parametrize(
    ("handler", "error_type", "message"),
    [
        (
            "imports_missing.handler",
            "Runtime.ImportModuleError",
            "Unable to import module 'imports_missing': No module named 'not_a_module_anywhere'",
        ),
        (
            "no_such_module.handler",
            "Runtime.ImportModuleError",
            "Unable to import module 'no_such_module': No module named 'no_such_module'",
        ),
        ("app.nope", "Runtime.HandlerNotFound", "Handler 'nope' missing on module 'app'"),
        ("nodots", "Runtime.MalformedHandlerName", "Bad handler 'nodots': "),
        ("raises_at_import.handler", "ValueError", "bad configuration"),
    ],
)
async def test_init_errors_discard_the_environment(
    make_pool: PoolFactory, handler: str, error_type: str, message: str
) -> None:
    pool = make_pool(handler)
    result = await pool.invoke({})
    assert result.kind == "error"
    assert result.error is not None
    assert result.error["errorType"] == error_type
    assert result.error["errorMessage"].startswith(message)
    assert result.init_duration_ms is not None
    start = result.logs.index(f"START RequestId: {result.request_id} Version: 1")
    assert any(line.startswith(f"[ERROR] {error_type}: ") for line in result.logs[:start])
    assert pool.stats()["environments"] == 0
    again = await pool.invoke({})
    assert again.kind == "error", again
    assert pool.stats()["cold_starts"] == 2


async def test_syntax_error_in_handler_module(make_pool: PoolFactory, tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("def handler(event, context)\n    return 1\n")
    result = await make_pool("broken.handler", code=tmp_path).invoke({})
    assert result.kind == "error"
    assert result.error is not None
    assert result.error["errorType"] == "Runtime.UserCodeSyntaxError"
    assert result.error["errorMessage"].startswith("Syntax error in module 'broken': ")
    assert "broken.py" in result.error["stackTrace"][0]


async def test_dotted_handler_module(make_pool: PoolFactory) -> None:
    result = await make_pool("pkg.mod.handler").invoke({})
    assert result.payload == {"where": "pkg.mod"}


async def test_unserializable_return_is_a_marshal_error(make_pool: PoolFactory) -> None:
    pool = make_pool("app.unmarshallable")
    result = await pool.invoke({})
    assert result.kind == "error"
    assert result.error == {
        "errorMessage": "Unable to marshal response: Object of type set is not JSON serializable",
        "errorType": "Runtime.MarshalError",
        "requestId": result.request_id,
        "stackTrace": [],
    }
    assert pool.stats()["warm"] == 1


async def test_a_circular_return_is_the_runtimes_marshal_error(make_pool: PoolFactory) -> None:
    pool = make_pool("app.circular")
    result = await pool.invoke({"loop": True})
    assert result.kind == "error"
    assert result.error is not None
    assert result.error["errorType"] == "Runtime.MarshalError"
    assert result.error["errorMessage"] == "Unable to marshal response: Circular reference detected"
    after = await pool.invoke({})  # the same environment, warm
    assert (after.kind, after.payload) == ("ok", {"headers": []})
    assert pool.stats()["environments"] == 1


# -- faults: the worker is killed and replaced ---------------------------------


async def test_timeout_kills_and_replaces(make_pool: PoolFactory) -> None:
    pool = make_pool("app.sleep")
    pid = (await pool.invoke({})).payload["pid"]
    result = await pool.invoke({"seconds": 30}, timeout=0.3)
    rid = result.request_id
    assert result.kind == "timeout"
    assert result.error == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": f"RequestId: {rid} Error: Task timed out after 0.30 seconds",
    }
    assert result.duration_ms == pytest.approx(300)
    assert re.fullmatch(
        rf"\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{3}}Z {rid} Task timed out after 0\.30 seconds",
        result.logs[-1],
    )
    await eventually(lambda: pid_gone(pid))
    after = await pool.invoke({})
    assert after.kind == "ok"
    assert after.payload["pid"] != pid
    assert after.init_duration_ms is not None
    assert pool.stats()["timeouts"] == 1


async def test_timeout_escalates_to_sigkill(make_pool: PoolFactory) -> None:
    pool = make_pool("app.stubborn")
    pid = (await pool.invoke({"seconds": 0})).payload["pid"]  # now ignores SIGTERM
    result = await pool.invoke({"seconds": 30}, timeout=0.3)
    assert result.kind == "timeout"
    await eventually(lambda: pid_gone(pid))
    assert (await pool.invoke({"seconds": 0})).kind == "ok"


@pytest.mark.parametrize(
    ("handler", "event", "reason"),
    [
        ("app.exit_process", {"code": 1}, "Runtime exited with error: exit status 1"),
        ("app.exit_process", {"code": 3}, "Runtime exited with error: exit status 3"),
        ("app.exit_cleanly", {}, "Runtime exited without providing a reason"),
        ("app.segfault", {}, "Runtime exited with error: signal: segmentation fault"),
    ],
)
async def test_worker_that_dies_is_replaced(
    make_pool: PoolFactory, handler: str, event: dict[str, Any], reason: str
) -> None:
    pool = make_pool(handler)
    result = await pool.invoke(event)
    rid = result.request_id
    assert result.kind == "crash"
    assert result.error == {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {rid} Error: {reason}",
    }
    assert result.logs[-2:] == (f"RequestId: {rid} Error: {reason}", "Runtime.ExitError")
    if handler == "app.exit_process":  # what it printed before dying is kept
        assert between(result.logs, rid) == ["last words"]
    assert pool.stats()["environments"] == 0
    assert pool.stats()["crashes"] == 1


async def test_sigkill_from_outside(make_pool: PoolFactory) -> None:
    pool = make_pool("app.sleep")
    pid = (await pool.invoke({})).payload["pid"]
    running = asyncio.create_task(pool.invoke({"seconds": 30}))
    await eventually(lambda: pool.stats()["busy"] == 1)
    os.kill(pid, signal.SIGKILL)
    result = await running
    assert result.kind == "crash"
    assert result.error is not None
    assert result.error["errorMessage"].endswith("Runtime exited with error: signal: killed")
    # Killed while idle: noticed, dropped, replaced on the next invocation.
    pid = (await pool.invoke({})).payload["pid"]
    os.kill(pid, signal.SIGKILL)
    await eventually(lambda: pool.stats()["environments"] == 0)
    after = await pool.invoke({})
    assert after.kind == "ok" and after.payload["pid"] != pid


async def test_zygote_death_takes_its_workers_and_is_replaced(make_pool: PoolFactory) -> None:
    pool = make_pool("app.sleep")
    first = (await pool.invoke({})).payload
    os.kill(first["zygote"], signal.SIGKILL)
    await eventually(lambda: pid_gone(first["pid"]))  # PR_SET_PDEATHSIG
    await eventually(lambda: pool.stats()["environments"] == 0)
    after = await pool.invoke({})
    assert after.kind == "ok"
    assert after.payload["zygote"] != first["zygote"]


async def test_memory_over_the_limit_is_killed(make_pool: PoolFactory) -> None:
    pool = make_pool("app.hog", memory=128)
    small = await pool.invoke({"mb": 16})
    assert small.kind == "ok"
    assert small.max_memory_mb >= 16
    result = await pool.invoke({"mb": 400})
    rid = result.request_id
    assert result.kind == "oom"
    assert result.error == {
        "errorType": "Runtime.OutOfMemory",
        "errorMessage": f"RequestId: {rid} Error: Runtime exited with error: signal: killed",
    }
    assert result.max_memory_mb == 128
    assert "\tMax Memory Used: 128 MB" in report(result)
    assert result.logs[-1] == "Runtime.OutOfMemory"
    after = await pool.invoke({"mb": 1})
    assert after.kind == "ok"
    assert pool.stats()["oom"] == 1


async def test_megabytes_of_output_are_truncated(make_pool: PoolFactory) -> None:
    pool = make_pool("app.chatter")
    result = await pool.invoke({"lines": 100_000})  # 10 MB
    assert result.kind == "ok" and result.payload == "spoke"
    lines = between(result.logs, result.request_id)
    assert len("\n".join(lines[:-1])) <= 256 * 1024
    assert lines[-1].startswith("[edgesim] ") and "dropped" in lines[-1]
    quiet = await pool.invoke({"lines": 1})
    assert between(quiet.logs, quiet.request_id) == ["y" * 99]


async def test_garbage_on_the_protocol_is_invalid(make_pool: PoolFactory) -> None:
    pool = make_pool("app.garbage")
    result = await pool.invoke({})
    assert result.kind == "invalid"
    assert result.error is not None
    assert result.error["errorType"] == "Runtime.InvalidResponse"
    await eventually(lambda: pool.stats()["environments"] == 0)
    assert pool.stats()["invalid"] == 1


# -- the sandbox ---------------------------------------------------------------

LAMBDA_VARIABLES = {
    "_HANDLER",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
    "LANG",
    "PATH",
    "PYTHONPATH",
    "TZ",
    "TMPDIR",  # only where a private /tmp mount is not possible
}


async def test_environment_has_only_lambda_variables(
    make_pool: PoolFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDGESIM_TEST_SECRET", "hunter2-secret")
    result = await make_pool("app.environment", memory=256).invoke({})
    env = result.payload["environ"]
    assert set(env) <= LAMBDA_VARIABLES
    assert "hunter2-secret" not in repr(result.payload)
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "us-east-1.demo"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "1"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/us-east-1.demo"
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.12"
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert env["LAMBDA_TASK_ROOT"] == env["PYTHONPATH"] == str(APP.resolve())
    assert env["TZ"] == ":UTC"
    assert result.payload["cwd"] == str(APP.resolve())
    assert result.payload["path"][0] == str(APP.resolve())


async def test_workers_do_not_preempt_the_proxy(make_pool: PoolFactory) -> None:
    """An environment runs under SCHED_BATCH: a frame written to it does not
    preempt the proxy on a core they share (limits module docstring)."""
    result = await make_pool("app.scheduling").invoke({})
    assert result.kind == "ok"
    assert result.payload == {"policy": os.SCHED_BATCH}


async def test_each_environment_has_a_private_tmp(make_pool: PoolFactory) -> None:
    pool = make_pool("app.tmp_files", concurrency=2)
    marker_a, marker_b = f"a-{uuid.uuid4().hex}", f"b-{uuid.uuid4().hex}"
    a, b = await asyncio.gather(
        pool.invoke({"marker": marker_a, "seconds": 0.3}),
        pool.invoke({"marker": marker_b, "seconds": 0.3}),
    )
    assert a.payload["pid"] != b.payload["pid"]
    assert a.payload["files"] == [marker_a]
    assert b.payload["files"] == [marker_b]
    # As root the environment gets /tmp bind-mounted in a private mount
    # namespace, unless the package itself lives under /tmp (then TMPDIR).
    if os.geteuid() == 0 and not APP.resolve().is_relative_to("/tmp"):
        assert a.payload["tmp"] == "/tmp"
    await pool.close()
    leftovers = list(Path(tempfile.gettempdir()).glob(f"edgesim-env-*/{marker_a}"))
    assert leftovers == []


async def test_tmp_falls_back_to_tmpdir_when_code_is_under_tmp(
    make_pool: PoolFactory, tmp_path: Path
) -> None:
    shutil.copy(APP / "app.py", tmp_path / "app.py")
    result = await make_pool("app.tmp_files", code=tmp_path).invoke({"marker": "m"})
    assert result.payload["files"] == ["m"]
    assert result.payload["tmp"] != "/tmp"


async def test_file_size_limit_is_the_tmp_size(make_pool: PoolFactory) -> None:
    result = await make_pool("app.file_size").invoke({"limit": TMP_BYTES})
    assert result.payload["errno"] == result.payload["efbig"]


async def test_context_object(make_pool: PoolFactory) -> None:
    result = await make_pool("app.context_info", timeout=5.0).invoke({})
    ctx = result.payload
    assert ctx["function_name"] == "us-east-1.demo"
    assert ctx["function_version"] == "1"
    assert ctx["invoked_function_arn"] == (
        "arn:aws:lambda:us-east-1:123456789012:function:us-east-1.demo:1"
    )
    assert ctx["memory_limit_in_mb"] == "128"
    assert ctx["aws_request_id"] == result.request_id
    assert ctx["log_group_name"] == "/aws/lambda/us-east-1.demo"
    assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[1\][0-9a-f]{32}", ctx["log_stream_name"])
    assert ctx["identity"] == ["CognitoIdentity", None, None]
    assert ctx["client_context"] is None
    assert 0 < ctx["remaining"] <= 5000


async def test_logging_format(make_pool: PoolFactory) -> None:
    result = await make_pool("app.log_lines").invoke({})
    rid = result.request_id
    lines = between(result.logs, rid)
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
    assert len(lines) == 3
    assert re.fullmatch(rf"\[WARNING\]\t{stamp}\t{rid}\tcareful 1", lines[0])
    assert re.fullmatch(rf"\[INFO\]\t{stamp}\t{rid}\thello info", lines[1])
    assert lines[2] == "to stderr"


async def test_log_file_is_the_log_group(make_pool: PoolFactory, tmp_path: Path) -> None:
    pool = make_pool("app.echo", log_dir=tmp_path)
    first = await pool.invoke({"n": 1})
    second = await pool.invoke({"n": 2})
    text = (tmp_path / "us-east-1.demo.log").read_text()
    assert text == "\n".join(first.logs + second.logs) + "\n"


async def test_log_lines_of_concurrent_invocations_are_written_whole(
    make_pool: PoolFactory, tmp_path: Path
) -> None:
    # While others run, an invocation's lines wait to be written with theirs;
    # the last one to finish writes them all, each invocation's lines together.
    pool = make_pool("app.echo", log_dir=tmp_path)
    results = await asyncio.gather(*(pool.invoke({"n": n}) for n in range(6)))
    text = (tmp_path / "us-east-1.demo.log").read_text()
    blocks = ["\n".join(r.logs) + "\n" for r in results]
    assert len(text) == sum(map(len, blocks))
    for block, result in zip(blocks, results, strict=True):
        assert text.count(block) == 1
        assert f"START RequestId: {result.request_id}" in block


async def test_log_lines_of_invocations_queued_for_one_environment_are_written_together(
    make_pool: PoolFactory, one_cpu: None
) -> None:
    # A burst waits for the one warm environment: each invocation that ends
    # hands it to the next, so more lines are coming and they are written in
    # batches, not one write per invocation (a busy edge's log and console).
    writes: list[str] = []
    pool = make_pool("app.counter", console=Batched(writes.append))
    await pool.invoke({})
    writes.clear()
    results = await asyncio.gather(*(pool.invoke({}) for _ in range(20)))
    assert pool.stats()["environments"] == 1
    assert len(writes) < len(results)
    text = "\n".join(writes)
    for result in results:
        assert text.count(f"[demo] START RequestId: {result.request_id}") == 1
        assert text.count(f"[demo] REPORT RequestId: {result.request_id}") == 1


def test_log_line_that_is_not_unicode_is_escaped_not_lost(tmp_path: Path) -> None:
    # A lone surrogate (a CloudFront Function can log one) cannot be UTF-8: it
    # is written escaped, and the lines batched with it are written too.
    group = LogGroup(tmp_path / "group.log")
    group.write(("START", "bad \ud800 line", "END"))
    group.close()
    assert (tmp_path / "group.log").read_text() == "START\nbad \\ud800 line\nEND\n"


async def test_a_cancelled_invocation_runs_to_its_end_and_its_environment_stays_warm(
    make_pool: PoolFactory, tmp_path: Path
) -> None:
    """The caller (a viewer that disconnected) goes away mid-invocation: the
    invocation still ends and is logged, and the next one reuses the environment."""
    pool = make_pool("app.sleep", log_dir=tmp_path)
    first = await pool.invoke({})
    assert first.kind == "ok"
    cancelled = asyncio.ensure_future(pool.invoke({"seconds": 0.3}))
    await eventually(lambda: pool.busy == 1)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert pool.busy == 1  # still running in its environment
    await eventually(lambda: pool.busy == 0)
    again = await pool.invoke({})
    assert again.kind == "ok"
    assert again.payload["pid"] == first.payload["pid"]
    stats = pool.stats()
    assert stats["cold_starts"] == 1
    assert stats["invocations"] == 3
    assert stats["errors"] == 0
    log = (tmp_path / "us-east-1.demo.log").read_text()
    assert log.count("REPORT RequestId:") == 3


async def test_an_answer_that_meets_its_callers_cancellation_is_not_a_protocol_fault(
    make_pool: PoolFactory,
) -> None:
    """The viewer's hang-up and the worker's answer are read in one pass of the
    loop, the hang-up first: the answer is its invocation's, not an unsolicited
    message that would cost the environment."""
    pool = make_pool("app.sleep")
    first = await pool.invoke({})
    loop = asyncio.get_running_loop()
    hang_up, hung_up = socket.socketpair()
    try:
        invocation = asyncio.ensure_future(pool.invoke({"seconds": 0.05}))
        await eventually(lambda: pool.busy == 1)
        loop.add_reader(hung_up.fileno(), invocation.cancel)
        hang_up.send(b"x")  # ready before the worker's answer is
        time.sleep(0.3)  # the loop is blocked: both are ready when it next polls
        with pytest.raises(asyncio.CancelledError):
            await invocation
        loop.remove_reader(hung_up.fileno())
    finally:
        hang_up.close()
        hung_up.close()
    await eventually(lambda: pool.busy == 0)
    again = await pool.invoke({})
    assert again.payload["pid"] == first.payload["pid"]
    assert pool.stats()["cold_starts"] == 1
    assert pool.stats()["errors"] == 0


async def test_a_cancelled_invocation_still_times_out(make_pool: PoolFactory) -> None:
    """Running on after its caller left, an invocation keeps its deadline."""
    pool = make_pool("app.sleep", timeout=0.3)
    first = await pool.invoke({})
    cancelled = asyncio.ensure_future(pool.invoke({"seconds": 30}))
    await eventually(lambda: pool.busy == 1)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    await eventually(lambda: pool.stats()["timeouts"] == 1)
    await eventually(lambda: pid_gone(first.payload["pid"]))
    after = await pool.invoke({})
    assert after.kind == "ok"
    assert after.payload["pid"] != first.payload["pid"]


async def test_close_kills_every_worker(make_pool: PoolFactory) -> None:
    pool = make_pool("app.sleep", concurrency=3)
    results = await asyncio.gather(*(pool.invoke({"seconds": 0.1}) for _ in range(3)))
    pids = {r.payload["pid"] for r in results}
    assert len(pids) == 3
    await pool.close()
    assert all(pid_gone(pid) for pid in pids)
    with pytest.raises(RuntimeError):
        await pool.invoke({})


# -- CloudFront Functions: a few environments, invocations wait their turn ------


async def test_cloudfront_function_invocations_wait_for_a_free_environment(
    tmp_path: Path,
) -> None:
    """A CloudFront Function has no concurrency to throttle on: a burst beyond the
    pool's environments waits; an invocation cancelled while waiting (its viewer
    went away) takes nothing with it."""
    code = tmp_path / "fn.js"
    code.write_text(
        "function handler(e) { var x = 0; for (var i = 0; i < 20000; i++) x += i;"
        " return e.request; }"
    )
    # A budget no busy machine overruns: the test is about waiting, not throttling.
    config = FunctionConfig(
        "fn", "cloudfront-js-2.0", code, "handler", timeout=2.0, compute_budget_ms=100.0
    )
    pool = FunctionPool(config)
    event = {
        "version": "1.0",
        "context": {"eventType": "viewer-request"},
        "viewer": {"ip": "127.0.0.1"},
        "request": {"method": "GET", "uri": "/x", "querystring": {}, "headers": {}, "cookies": {}},
    }
    try:
        burst = [
            asyncio.ensure_future(pool.invoke(event)) for _ in range(3 * CLOUDFRONT_ENVIRONMENTS)
        ]
        await eventually(
            lambda: pool.busy == CLOUDFRONT_ENVIRONMENTS or all(t.done() for t in burst)
        )
        for task in burst[-3:]:
            task.cancel()
        results = await asyncio.gather(*burst, return_exceptions=True)
        finished = [r for r in results if isinstance(r, InvokeResult)]
        assert all(r.kind == "ok" for r in finished), [r.kind for r in finished]
        assert len(finished) >= 3 * CLOUDFRONT_ENVIRONMENTS - 3
        stats = pool.stats()
        assert stats["throttles"] == 0
        assert stats["environments"] <= CLOUDFRONT_ENVIRONMENTS
        assert stats["busy"] == 0
        after = await pool.invoke(event)
        assert after.kind == "ok"
        assert pool.stats()["environments"] <= CLOUDFRONT_ENVIRONMENTS
    finally:
        await pool.close()


_SPIN = "function handler(e) { if (e.request.uri === '/spin') { while (true) {} } "


def _cloudfront_pool(folder: Path, body: str, **limits: Any) -> FunctionPool:
    """A CloudFront Function whose ``handler`` spins forever on /spin, else runs ``body``."""
    code = folder / "fn.js"
    code.write_text(_SPIN + body + " }")
    return FunctionPool(FunctionConfig("fn", "cloudfront-js-2.0", code, "handler", **limits))


def _cloudfront_event(uri: str) -> dict[str, Any]:
    """A viewer-request event for ``uri`` (its request id names it in the logs)."""
    return {
        "version": "1.0",
        "context": {"eventType": "viewer-request", "requestId": f"id{uri}"},
        "viewer": {"ip": "127.0.0.1"},
        "request": {"method": "GET", "uri": uri, "querystring": {}, "headers": {}, "cookies": {}},
    }


async def test_cloudfront_function_invocations_queue_in_busy_environments(
    tmp_path: Path,
) -> None:
    """Waiting invocations are written to busy environments and run there one after
    another: each still gets its own answer and log lines. One queued behind a
    runaway (timed out, its environment gone) never ran, and runs in another."""
    body = (
        "console.log('ran ' + e.request.uri);"
        " e.request.headers['x-uri'] = {value: e.request.uri}; return e.request;"
    )
    pool = _cloudfront_pool(tmp_path, body, timeout=2.0, compute_budget_ms=100.0)
    try:
        uris = [f"/o{n}" for n in range(6 * CLOUDFRONT_ENVIRONMENTS)]
        uris[1] = "/spin"
        results = await asyncio.gather(*(pool.invoke(_cloudfront_event(u)) for u in uris))
        for uri, result in zip(uris, results, strict=True):
            if uri == "/spin":  # stopped at its deadline, before its CPU stop
                assert result.kind == "timeout"
                continue
            assert result.kind == "ok", (uri, result.kind)
            assert result.payload["output"]["headers"]["x-uri"] == {"value": uri}
            ran = [line for line in result.logs if line.endswith(f"ran {uri}")]
            assert len(ran) == 1, (uri, result.logs)
            assert not [line for line in result.logs if "ran " in line and line not in ran]
        stats = pool.stats()
        assert stats["queued"] > 0
        assert stats["invocations"] == len(uris)
        assert stats["busy"] == 0
        assert stats["environments"] <= CLOUDFRONT_ENVIRONMENTS
    finally:
        await pool.close()


async def test_a_queued_cloudfront_function_run_stopped_for_its_cpu_runs_once(
    tmp_path: Path,
) -> None:
    """Runaways queued among a burst are stopped at their CPU limit, each once: a
    run that started is never run again, while those queued behind it are."""
    # Stopped after 100 budgets of CPU (100 ms), long before the timeout.
    pool = _cloudfront_pool(tmp_path, "return e.request;", timeout=5.0, compute_budget_ms=1.0)
    try:
        uris = [f"/o{n}" for n in range(10 * CLOUDFRONT_ENVIRONMENTS)]
        spins = range(5, len(uris), 6)
        for n in spins:
            uris[n] = "/spin"
        results = await asyncio.gather(*(pool.invoke(_cloudfront_event(u)) for u in uris))
        kinds = [r.kind for r in results]
        assert kinds == ["crash" if uri == "/spin" else "ok" for uri in uris], kinds
        stats = pool.stats()
        assert stats["queued"] > 0
        assert stats["crashes"] == len(spins)
        assert stats["invocations"] == len(uris)
        # Each runaway ended one environment: run again, it would have ended another.
        assert stats["cold_starts"] <= CLOUDFRONT_ENVIRONMENTS + len(spins), stats["cold_starts"]
    finally:
        await pool.close()


def test_sandbox_side_imports_only_the_standard_library() -> None:
    """What runs next to user code loads nothing of edgesim but these modules,
    and of the rest only the standard library (and orjson, for the runtime's frames)."""
    inside = {"bootstrap", "runtime", "protocol", "limits"}
    for name in inside:
        allowed = sys.stdlib_module_names | ({"orjson"} if name == "runtime" else set())
        tree = ast.parse((WORKERS / f"{name}.py").read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level:
                assert node.module is None, f"{name}: from .{node.module}"
                assert {a.name for a in node.names} <= inside, name
            elif isinstance(node, ast.ImportFrom):
                assert node.module is not None
                top = node.module.split(".")[0]
                assert top == "__future__" or top in allowed, (name, top)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    assert alias.name.split(".")[0] in allowed, (name, alias)


async def test_invocations_queued_on_a_busy_environment_keep_their_own_output_and_time(
    make_pool: PoolFactory, one_cpu: None
) -> None:
    """A burst waits for the one environment (nothing is known of the function yet),
    and the next ones queue on it behind a run that sleeps: each still prints into
    its own log lines, and its time left runs from when it starts, not from when it
    was queued."""
    pool = make_pool("app.say", timeout=3.0, prewarm=1)
    await pool.start()
    events = [
        {"say": "first"},
        {"say": "sleeper", "seconds": 0.06},  # those after it queue behind it
        *({"say": f"line {n}"} for n in range(10)),
    ]
    burst = await asyncio.gather(*(pool.invoke(event) for event in events))
    for event, result in zip(events, burst, strict=True):
        assert result.kind == "ok", result.error
        assert between(result.logs, result.request_id) == [event["say"]]
        # Measured as each starts: those behind the sleeper were queued ~60 ms before.
        assert result.payload["remaining"] > 3000 - 30, event
    stats = pool.stats()
    assert stats["queued"] > 0
    assert stats["cold_starts"] == 0


async def test_queued_invocations_with_large_output_or_events_keep_theirs(
    make_pool: PoolFactory, one_cpu: None
) -> None:
    """Output of many reads' worth, and an event too large for the queue (it waits
    in the proxy, and those after it behind it): each still gets its own lines
    and its own answer, in order."""
    pool = make_pool("app.say", prewarm=1)
    await pool.start()
    big = "z" * (200 * 1024)  # over protocol.QUEUED_MAX
    events: list[dict[str, Any]] = [
        {"say": "first"},
        {"say": "sleeper", "seconds": 0.05},
        {"say": "loud 1", "filler": 1500},
        {"say": "quiet 1"},
        {"say": "large", "pad": big},
        {"say": "quiet 2"},
        {"say": "loud 2", "filler": 1200},
        *({"say": f"line {n}"} for n in range(6)),
    ]
    burst = await asyncio.gather(*(pool.invoke(event) for event in events))
    for event, result in zip(events, burst, strict=True):
        assert result.kind == "ok", result.error
        lines = between(result.logs, result.request_id)
        assert lines == [event["say"], *["y" * 99] * event.get("filler", 0)], event["say"]
    assert pool.stats()["queued"] > 0


async def test_a_mark_cut_between_two_reads_still_ends_an_output() -> None:
    """The proxy's reads of a worker's output pipe fall anywhere: a mark cut in
    two, or a lone piece of one that is not a mark, still reads right."""
    ours, theirs = socket.socketpair()
    read_end, write_end = os.pipe()
    loop = asyncio.get_running_loop()
    worker = WorkerProcess(
        pid=os.getpid(), sock=ours, output_fd=read_end, tmp_dir="", exited=loop.create_future(),
        memory_mb=128, watchdog=Watchdog(), marks_output=True,
    )  # fmt: skip
    try:
        await worker.open()
        pieces = [
            b"out A" + OUTPUT_MARK[:7],
            OUTPUT_MARK[7:] + b"out B\x00",
            b"\x1e!" + OUTPUT_MARK,
        ]
        for piece in pieces:
            os.write(write_end, piece)
            worker._read_output()
        assert list(worker._finished_output) == [(b"out A", 0), (b"out B\x00\x1e!", 0)]
    finally:
        os.close(write_end)
        worker.close()
        theirs.close()


async def test_invocations_queued_behind_a_crash_run_in_another_environment(
    make_pool: PoolFactory, one_cpu: None
) -> None:
    """Those queued behind a run that ends its environment never started: they run
    in a new one, each once."""
    pool = make_pool("app.say", prewarm=1)
    await pool.start()
    events = [
        {"say": "first"},
        {"say": "bye", "seconds": 0.03, "exit": 3},  # those after it queue behind it
        *({"say": f"line {n}"} for n in range(8)),
    ]
    burst = await asyncio.gather(*(pool.invoke(event) for event in events))
    assert [r.kind for r in burst[:2]] == ["ok", "crash"]
    for event, result in zip(events[2:], burst[2:], strict=True):
        assert result.kind == "ok", result.error
        assert between(result.logs, result.request_id) == [event["say"]]
    stats = pool.stats()
    assert stats["queued"] > 0
    assert stats["crashes"] == 1
    assert stats["invocations"] == len(events)


async def test_a_first_burst_waits_for_the_first_environment_of_a_fast_function(
    make_pool: PoolFactory, one_cpu: None
) -> None:
    """Nothing is known of the function yet: the burst waits for the environment
    being started, whose first answers show the function is fast."""
    pool = make_pool("app.counter")
    burst = await asyncio.gather(*(pool.invoke({}) for _ in range(20)))
    assert {r.kind for r in burst} == {"ok"}
    stats = pool.stats()
    assert (stats["environments"], stats["cold_starts"]) == (1, 1), stats


async def test_a_burst_for_a_fast_function_gets_an_environment_per_cpu(
    make_pool: PoolFactory,
) -> None:
    """With more CPUs, more environments run at once, but no more than CPUs."""
    cpus = len(os.sched_getaffinity(0))
    pool = make_pool("app.counter")
    await pool.invoke({})
    burst = await asyncio.gather(*(pool.invoke({}) for _ in range(4 * cpus + 4)))
    assert {r.kind for r in burst} == {"ok"}
    assert 1 <= pool.stats()["environments"] <= cpus
