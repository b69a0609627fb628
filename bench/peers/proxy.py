"""Minimal aiohttp reverse proxy: the "ClientSession proxy" peer for the cache-miss case.

Every GET is forwarded to the origin with one shared aiohttp.ClientSession
(default connector, keep-alive); the origin's status, body, Cache-Control and
Content-Type come back to the viewer. No caching, no header rewriting beyond
that: the plain way to write a proxy with aiohttp, which the edge's miss path
has to beat.

    python bench/peers/proxy.py --port 9001 --origin http://127.0.0.1:9000
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import AsyncIterator

import aiohttp
import uvloop
from aiohttp import web

__all__ = ["main"]

_PASSED = ("Cache-Control", "Content-Type")


def build_app(origin: str) -> web.Application:
    session_key = web.AppKey("session", aiohttp.ClientSession)

    async def session_context(app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession() as session:
            app[session_key] = session
            yield

    async def handler(request: web.Request) -> web.Response:
        session = request.app[session_key]
        async with session.get(origin + request.path_qs) as upstream:
            body = await upstream.read()
            headers = {name: upstream.headers[name] for name in _PASSED if name in upstream.headers}
            return web.Response(body=body, status=upstream.status, headers=headers)

    app = web.Application()
    app.cleanup_ctx.append(session_context)
    app.router.add_get("/{tail:.*}", handler)
    return app


async def serve(port: int, origin: str) -> None:
    runner = web.AppRunner(build_app(origin), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"proxy listening on 127.0.0.1:{port} -> {origin}", flush=True)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--origin", required=True, help="origin base URL, http://127.0.0.1:PORT")
    args = parser.parse_args()
    uvloop.run(serve(args.port, args.origin.rstrip("/")))


if __name__ == "__main__":
    main()
