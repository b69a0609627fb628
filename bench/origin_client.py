"""Requests per second: edgesim's HttpOriginClient vs aiohttp.ClientSession.

The origin runs in its own process (an aiohttp app, or with --origin raw a
canned-response asyncio protocol that costs next to nothing, so the client is
the bottleneck). Both clients fetch a 1 KB body over keep-alive from
--concurrency tasks, on uvloop. Besides wall-clock requests/second it reports
the client process's CPU time per request, which is what the edge pays.

    python bench/origin_client.py [--requests 50000] [--concurrency 50] [--origin aiohttp|raw]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import socket
import time
from collections.abc import Awaitable, Callable

import aiohttp
import uvloop
from aiohttp import web

from edgesim.config.schema import CustomOrigin
from edgesim.models import Headers, Request, read_body
from edgesim.origins.http import HttpOriginClient

BODY = b"x" * 1024
CANNED = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
    b"Content-Length: %d\r\n\r\n" % len(BODY)
) + BODY


class _Canned(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.transport.write(CANNED * data.count(b"\r\n\r\n"))  # type: ignore[attr-defined]


def _serve(sock: socket.socket, kind: str) -> None:
    uvloop.install()
    if kind == "raw":

        async def main() -> None:
            loop = asyncio.get_running_loop()
            server = await loop.create_server(_Canned, sock=sock)
            await server.serve_forever()

        asyncio.run(main())
        return

    async def handler(_: web.Request) -> web.Response:
        return web.Response(body=BODY)

    app = web.Application()
    app.router.add_get("/", handler)
    web.run_app(app, sock=sock, print=None, access_log=None)


async def _drive(n: int, concurrency: int, one: Callable[[], Awaitable[None]]) -> float:
    remaining = n

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await one()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - start


async def bench_edgesim(port: int, n: int, concurrency: int) -> tuple[float, float]:
    client = HttpOriginClient()
    origin = CustomOrigin("bench", "http", "127.0.0.1", port)
    request = Request("GET", "/", "", Headers([("Host", f"127.0.0.1:{port}")]))

    async def one() -> None:
        response = await client.fetch(origin, request)
        assert len(await read_body(response.body)) == len(BODY)

    await _drive(concurrency * 10, concurrency, one)  # warm the pool
    cpu = time.process_time()
    wall = await _drive(n, concurrency, one)
    cpu = time.process_time() - cpu
    await client.close()
    return n / wall, cpu / n * 1e6


async def bench_aiohttp(port: int, n: int, concurrency: int) -> tuple[float, float]:
    url = f"http://127.0.0.1:{port}/"
    connector = aiohttp.TCPConnector(limit=concurrency * 2)
    async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as session:

        async def one() -> None:
            async with session.get(url) as response:
                assert len(await response.read()) == len(BODY)

        await _drive(concurrency * 10, concurrency, one)
        cpu = time.process_time()
        wall = await _drive(n, concurrency, one)
        cpu = time.process_time() - cpu
    return n / wall, cpu / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--origin", choices=["aiohttp", "raw"], default="aiohttp")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    port = sock.getsockname()[1]
    server = multiprocessing.get_context("fork").Process(
        target=_serve, args=(sock, args.origin), daemon=True
    )
    server.start()
    uvloop.install()
    try:
        time.sleep(0.5)
        results: dict[str, list[tuple[float, float]]] = {"edgesim": [], "aiohttp": []}
        for _ in range(args.rounds):  # interleaved, so drift hits both alike
            results["edgesim"].append(
                asyncio.run(bench_edgesim(port, args.requests, args.concurrency))
            )
            results["aiohttp"].append(
                asyncio.run(bench_aiohttp(port, args.requests, args.concurrency))
            )
        print(
            f"origin={args.origin} requests={args.requests} concurrency={args.concurrency} "
            f"body={len(BODY)} B, best of {args.rounds}"
        )
        best = {name: max(runs) for name, runs in results.items()}
        for name, (rps, cpu_us) in best.items():
            print(f"  {name:8} {rps:9.0f} req/s   {cpu_us:6.1f} us client CPU/request")
        ratio = best["edgesim"][0] / best["aiohttp"][0]
        cpu_ratio = best["aiohttp"][1] / best["edgesim"][1]
        print(f"  edgesim/aiohttp: {ratio:.2f}x req/s, {cpu_ratio:.2f}x less CPU per request")
    finally:
        server.terminate()
        server.join()


if __name__ == "__main__":
    main()
