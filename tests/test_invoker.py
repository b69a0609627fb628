"""FunctionInvoker: pools by function name, and log lines echoed to the console."""

from __future__ import annotations

import asyncio
from pathlib import Path

from edgesim.config.schema import FunctionConfig
from edgesim.invoker import FunctionInvoker

APP = Path(__file__).parent / "fixtures" / "functions" / "workers_app"


def functions() -> dict[str, FunctionConfig]:
    return {"demo": FunctionConfig(name="demo", runtime="python3.12", code=APP, handler="app.echo")}


async def test_console_gets_one_call_per_invocation() -> None:
    console: list[str] = []
    invoker = FunctionInvoker(functions(), echo=console.append)
    try:
        first = await invoker.invoke("demo", {"n": 1})
        second = await invoker.invoke("demo", {"n": 2})
    finally:
        await invoker.close()
    assert console == [
        "\n".join(f"[demo] {line}" for line in result.logs) for result in (first, second)
    ]
    assert "[demo] echo {'n': 1}" in console[0].splitlines()


async def test_console_gets_every_line_of_concurrent_invocations_once() -> None:
    # Lines of invocations that ran together may reach the console in one call,
    # each invocation's lines together and whole.
    console: list[str] = []
    invoker = FunctionInvoker(functions(), echo=console.append)
    try:
        results = await asyncio.gather(*(invoker.invoke("demo", {"n": n}) for n in range(6)))
    finally:
        await invoker.close()
    text = "\n".join(console)
    blocks = ["\n".join(f"[demo] {line}" for line in r.logs) for r in results]
    assert len(text) == sum(map(len, blocks)) + len(blocks) - 1
    for block in blocks:
        assert text.count(block) == 1


async def test_console_gets_the_lines_of_an_invocation_whose_caller_left() -> None:
    """The viewer hung up mid-invocation: the invocation runs on, and its lines
    still reach the console when it ends."""
    console: list[str] = []
    nap = FunctionConfig(name="nap", runtime="python3.12", code=APP, handler="app.sleep")
    invoker = FunctionInvoker({"nap": nap}, echo=console.append)
    pool = invoker.pools["nap"]
    loop = asyncio.get_running_loop()
    try:
        call = asyncio.ensure_future(invoker.invoke("nap", {"seconds": 0.3}))
        deadline = loop.time() + 10
        while pool.busy == 0 and loop.time() < deadline:
            await asyncio.sleep(0.005)
        call.cancel()
        while pool.stats()["invocations"] == 0 and loop.time() < deadline:
            await asyncio.sleep(0.01)
        assert pool.stats()["invocations"] == 1
    finally:
        await invoker.close()
    assert call.cancelled()
    lines = "\n".join(console).splitlines()
    assert any(line.startswith("[nap] START RequestId: ") for line in lines), lines
    assert any(line.startswith("[nap] REPORT RequestId: ") for line in lines), lines
