"""Worker costs: cold start, warm invocation round trip, and the bare IPC floor.

    python bench/workers.py [--warm 20000] [--cold 200] [--loop asyncio|uvloop]
    python bench/workers.py --js [--warm 2000] [--cold 50]   # Node.js and CloudFront Functions

* cold start: an invocation on a new execution environment (zygote fork,
  sandbox setup, handler import, invoke), end to end as the caller sees it,
  next to the Init Duration the function reports;
* warm: ``FunctionPool.invoke`` on a warm environment, for an empty event
  and for a ~1 KB CloudFront viewer-request event the handler returns;
* floor: the same length-prefixed JSON frames bounced off a bare Python
  child process over a socketpair, i.e. what any Python worker IPC costs;
  measured in rounds alternating with the warm pool, so that both see the
  same machine.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from edgesim.config.schema import FunctionConfig
from edgesim.workers import FunctionPool
from edgesim.workers.protocol import FrameDecoder, encode

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "tests" / "fixtures" / "functions" / "workers_app"
NODE_APP = ROOT / "tests" / "fixtures" / "functions" / "node_app"
CFF_CODE = ROOT / "functions" / "cloudfront" / "country_redirect.js"
CFF_EVENT = {
    "version": "1.0",
    "context": {"eventType": "viewer-request", "distributionId": "E1", "requestId": "r" * 56},
    "viewer": {"ip": "203.0.113.178"},
    "request": {
        "method": "GET",
        "uri": "/images/picture.jpg",
        "querystring": {"size": {"value": "large"}, "color": {"value": "blue"}},
        "headers": {
            "host": {"value": "d111111abcdef8.cloudfront.net"},
            "user-agent": {"value": "curl/8.4.0"},
            "accept": {"value": "*/*"},
            "cloudfront-viewer-country": {"value": "FR"},
        },
        "cookies": {"session": {"value": "abc123"}, "theme": {"value": "dark"}},
    },
}

EVENT = {
    "Records": [
        {
            "cf": {
                "config": {
                    "distributionDomainName": "d111111abcdef8.cloudfront.net",
                    "distributionId": "EDFDVBD6EXAMPLE",
                    "eventType": "viewer-request",
                    "requestId": "4TyzHTaYWb1GX1qTfsHhEqV6HUDd_BzoBZnwfnvQc_1oF26ClkoUSEQ==",
                },
                "request": {
                    "clientIp": "203.0.113.178",
                    "headers": {
                        "host": [{"key": "Host", "value": "d111111abcdef8.cloudfront.net"}],
                        "user-agent": [{"key": "User-Agent", "value": "curl/8.4.0"}],
                        "accept": [{"key": "Accept", "value": "*/*"}],
                        "accept-encoding": [{"key": "Accept-Encoding", "value": "gzip, br"}],
                        "cookie": [{"key": "Cookie", "value": "session=abc123; theme=dark"}],
                    },
                    "method": "GET",
                    "querystring": "size=large&color=blue",
                    "uri": "/images/picture.jpg",
                },
            }
        }
    ]
}

ECHO_CHILD = """
import socket, sys
from edgesim.workers.protocol import BlockingChannel, encode
channel = BlockingChannel(socket.socket(fileno=int(sys.argv[1])))
while (msg := channel.recv()) is not None:
    channel.send(encode({"t": "result", "id": msg["id"], "payload": msg["event"]}))
"""


def percentiles(samples: list[float]) -> str:
    samples = sorted(samples)
    n = len(samples)
    p50 = statistics.median(samples)
    p99 = samples[min(n - 1, int(n * 0.99))]
    return f"p50 {p50:8.1f} µs   p99 {p99:8.1f} µs   (n={n})"


# Shown with the results: the numbers mean little on a busy machine.
def load() -> str:
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


async def warm(pool: FunctionPool, event: Any, count: int) -> list[float]:
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        result = await pool.invoke(event)
        samples.append((time.perf_counter() - start) * 1e6)
        assert result.kind == "ok", result
    return samples


async def cold(count: int) -> tuple[list[float], list[float]]:
    config = FunctionConfig(
        name="bench-cold",
        runtime="python3.12",
        code=APP,
        handler="app.sleep",
        idle_timeout=0.01,
    )
    pool = FunctionPool(config)
    await pool.start()
    totals, inits = [], []
    try:
        for _ in range(count):
            while pool.stats()["environments"]:
                await asyncio.sleep(0.005)
            await asyncio.sleep(0.05)  # let the last one's teardown finish: a quiet machine
            start = time.perf_counter()
            result = await pool.invoke({})
            totals.append((time.perf_counter() - start) * 1e6)
            assert result.init_duration_ms is not None, result
            inits.append(result.init_duration_ms * 1000)
    finally:
        await pool.close()
    return totals, inits


class _Echo(asyncio.BufferedProtocol):
    """Reads the way the worker channel does (into one preallocated buffer)."""

    def __init__(self) -> None:
        self.decoder = FrameDecoder()
        self.view = memoryview(bytearray(1 << 16))
        self.waiter: asyncio.Future[Any] | None = None

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.view

    def buffer_updated(self, nbytes: int) -> None:
        for msg in self.decoder.feed(bytes(self.view[:nbytes])):
            assert self.waiter is not None
            self.waiter.set_result(msg)


class Floor:
    """A bare Python child that bounces frames back: the IPC cost any worker pays."""

    async def __aenter__(self) -> Floor:
        ours, theirs = socket.socketpair()
        root = str(Path(__file__).resolve().parents[1])
        self.child = subprocess.Popen(
            [sys.executable, "-c", ECHO_CHILD, str(theirs.fileno())],
            pass_fds=(theirs.fileno(),),
            cwd=root,
        )
        theirs.close()
        self.loop = asyncio.get_running_loop()
        self.transport, self.proto = await self.loop.create_unix_connection(_Echo, sock=ours)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.transport.close()  # the child sees end of stream and exits
        await self.loop.run_in_executor(None, self.child.wait)

    async def bounce(self, event: Any, count: int) -> list[float]:
        samples = []
        for i in range(count):
            start = time.perf_counter()
            self.proto.waiter = self.loop.create_future()
            frame = encode({"t": "invoke", "id": str(i), "timeout_ms": 3000, "event": event})
            self.transport.write(frame)
            await self.proto.waiter
            samples.append((time.perf_counter() - start) * 1e6)
        return samples


async def js(args: argparse.Namespace) -> None:
    """Warm round trip, cold start and memory per environment of the JavaScript runtimes."""
    cases: tuple[tuple[str, FunctionConfig, dict[str, Any]], ...] = (
        (
            "nodejs20.x (Lambda@Edge)",
            FunctionConfig("n", "nodejs20.x", NODE_APP, "app.counter"),
            {},
        ),
        (
            "cloudfront-js-1.0",
            FunctionConfig("c", "cloudfront-js-1.0", CFF_CODE, "handler"),
            CFF_EVENT,
        ),
    )
    for name, config, event in cases:
        pool = FunctionPool(config)
        try:
            await warm(pool, event, 200)
            samples = await warm(pool, event, args.warm)
            rss = max(w.rss_kb() for w in pool._envs) / 1024
        finally:
            await pool.close()
        print(f"warm invoke, {name:<26} {percentiles(samples)}   RSS {rss:.1f} MB")
        totals, inits = [], []
        for _ in range(args.cold):
            pool = FunctionPool(config)
            await pool.start()
            start = time.perf_counter()
            result = await pool.invoke(event)
            totals.append((time.perf_counter() - start) * 1e6)
            if result.init_duration_ms is not None:
                inits.append(result.init_duration_ms * 1000)
            await pool.close()
        print(f"  cold start, end to end      {percentiles(totals)}")
        if inits:
            print(f"  of which Init Duration      {percentiles(inits)}")


async def main(args: argparse.Namespace) -> None:
    if args.js:
        print(f"event loop: {args.loop}, python {sys.version.split()[0]}, load {load()}")
        await js(args)
        return
    print(f"event loop: {args.loop}, python {sys.version.split()[0]}, load {load()}")
    totals, inits = await cold(args.cold)
    print(f"cold start, end to end        {percentiles(totals)}")
    print(f"  of which Init Duration      {percentiles(inits)}")
    for name, handler, event in (
        ("empty event", "app.counter", {}),
        ("1 KB viewer-request", "app.passthrough", EVENT),
    ):
        config = FunctionConfig(name="bench", runtime="python3.12", code=APP, handler=handler)
        pool = FunctionPool(config)
        ours: list[float] = []
        bare: list[float] = []
        try:
            async with Floor() as floor:
                await warm(pool, event, 500)
                await floor.bounce(event, 500)
                # Alternate short rounds so both see the same machine noise.
                for _ in range(args.rounds):
                    ours += await warm(pool, event, args.warm // args.rounds)
                    bare += await floor.bounce(event, args.warm // args.rounds)
        finally:
            await pool.close()
        print(f"warm invoke, {name:<20} {percentiles(ours)}")
        print(f"  bare IPC floor, same frames {percentiles(bare)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warm", type=int, default=20_000)
    parser.add_argument("--cold", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    parser.add_argument("--js", action="store_true", help="Node.js and CloudFront Functions")
    args = parser.parse_args()
    if args.loop == "uvloop":
        import uvloop

        uvloop.install()
    asyncio.run(main(args))
