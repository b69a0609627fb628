"""What the edge does per request, counted rather than timed: cProfile call counts.

    python bench/record_cost.py [--requests 20000] [--access-log FILE]

Starts an edge in this process in front of a tiny aiohttp origin (both on
127.0.0.1, ephemeral ports), then sends ``--requests`` keep-alive GETs over
one raw connection for two cases: cache hits (``/hit``, cached after the
first request) and misses (``/miss``, never cached). For each case it
prints the Python function calls per request under cProfile (deterministic
on any machine, unlike req/s on a shared one), the wall time per request
without the profiler (noisy; for orientation only), and the calls per
request made inside ``EdgeServer.record``, where every answered request is
counted, traced and logged; and ``EdgeServer.record`` alone, timed with
timeit on a hit's and a miss's exchange (best of 5 runs of 100,000 calls).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import functools
import pstats
import time
import timeit
from pathlib import Path

from aiohttp import web

from edgesim.config.schema import (
    AccessLogSettings,
    Behavior,
    CachePolicy,
    Config,
    CustomOrigin,
    Listen,
)
from edgesim.models import Headers, Request
from edgesim.service import Edge

CASES = ("hit", "miss")


async def _origin() -> tuple[web.AppRunner, int]:
    async def hit(_: web.Request) -> web.Response:
        return web.Response(body=b"x" * 1024, headers={"Cache-Control": "max-age=3600"})

    async def miss(_: web.Request) -> web.Response:
        return web.Response(body=b"x" * 1024, headers={"Cache-Control": "no-store"})

    app = web.Application()
    app.router.add_get("/hit", hit)
    app.router.add_get("/miss", miss)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, int(runner.addresses[0][1])


async def _drive(port: int, path: str, count: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = f"GET {path} HTTP/1.1\r\nHost: bench\r\nUser-Agent: record-cost\r\n\r\n".encode()
    try:
        for _ in range(count):
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
    finally:
        writer.close()


async def _measure(count: int, access_log: Path | None) -> None:
    runner, origin_port = await _origin()
    config = Config(
        origins={"app": CustomOrigin("app", "http", "127.0.0.1", origin_port)},
        default_behavior=Behavior("*", "app", cache=CachePolicy(0, 0, 86_400)),
        listen=Listen("127.0.0.1", 0),
        admin_listen=None,
        access_log=AccessLogSettings(access_log) if access_log is not None else None,
    )
    edge = Edge(config)
    await edge.start()
    assert edge.address is not None
    port = edge.address.port
    try:
        for case in CASES:
            path = f"/{case}"
            await _drive(port, path, 200)  # warm: connections, the cached object
            started = time.perf_counter()
            await _drive(port, path, count)
            wall = (time.perf_counter() - started) / count * 1e6
            profile = cProfile.Profile()
            profile.enable()
            await _drive(port, path, count)
            profile.disable()
            stats = pstats.Stats(profile)
            calls = stats.total_calls  # type: ignore[attr-defined]
            inside = 0
            for *_, callers in stats.stats.values():  # type: ignore[attr-defined]
                for caller in callers:
                    if caller[2] == "record" and caller[0].endswith("server.py"):
                        inside += callers[caller][1]
            print(
                f"{case:5} {calls / count:7.1f} calls/request (incl. the client's), "
                f"{inside / count:5.1f} made in EdgeServer.record; "
                f"{wall:6.1f} us/request wall without the profiler"
            )
        for case in CASES:
            request = Request("GET", f"/{case}", "", Headers([("Host", "bench")]))
            ex = await edge.server.pipeline.handle(request)
            timer = timeit.Timer(functools.partial(edge.server.record, ex))
            best = min(timer.repeat(repeat=5, number=100_000)) / 100_000 * 1e9
            print(f"{case:5} EdgeServer.record: {best:6.0f} ns/call")
    finally:
        await edge.stop(grace=1.0)
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--access-log", type=Path, help="also write an access log to FILE")
    args = parser.parse_args()
    asyncio.run(_measure(args.requests, args.access_log))


if __name__ == "__main__":
    main()
