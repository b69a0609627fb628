"""Bare aiohttp server: the "bare aiohttp" peer and the origin behind every proxy case.

Serves fixed bodies with a Cache-Control header:

    GET /obj, /obj-1k   1,024 bytes
    GET /obj-100k       102,400 bytes
    GET /_count         how many body requests it has answered (plain text)

One process, uvloop, no access log: the smallest aiohttp.web server that does
the job, so it is the fair baseline for the edge's cache-hit path.

    python bench/peers/origin.py --port 9000
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Callable, Coroutine
from typing import Any

import uvloop
from aiohttp import web
from aiohttp.typedefs import Handler

__all__ = ["BODIES", "HEADERS", "main", "until_stopped"]

BODIES = {
    "/obj": b"x" * 1024,
    "/obj-1k": b"x" * 1024,
    "/obj-100k": b"x" * (100 * 1024),
}
HEADERS = {"Cache-Control": "public, max-age=3600", "Content-Type": "application/octet-stream"}


def build_app() -> web.Application:
    count = 0

    def body_handler(body: bytes) -> Handler:
        async def handler(_request: web.Request) -> web.Response:
            nonlocal count
            count += 1
            return web.Response(body=body, headers=HEADERS)

        return handler

    async def count_handler(_request: web.Request) -> web.Response:
        return web.Response(text=str(count))

    app = web.Application()
    for path, body in BODIES.items():
        app.router.add_get(path, body_handler(body))
    app.router.add_get("/_count", count_handler)
    return app


async def serve(port: int) -> None:
    runner = web.AppRunner(build_app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
    try:
        await until_stopped(port)
    finally:
        await runner.cleanup()


async def until_stopped(port: int) -> None:
    """Say where it listens, then wait for SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"origin listening on 127.0.0.1:{port}", flush=True)
    await stop.wait()


def main(run: Callable[[int], Coroutine[Any, Any, None]] = serve, doc: str = __doc__) -> None:
    """``--port N``, then ``run(N)`` on uvloop."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    uvloop.run(run(parser.parse_args().port))


if __name__ == "__main__":
    main()
