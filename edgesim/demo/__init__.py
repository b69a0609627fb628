"""The embedded demo: a small app origin and the config that fronts it.

``edgesim serve`` with no arguments starts the app on an ephemeral loopback
port and the edge in front of it, so a first ``curl`` shows a Miss and the
second a Hit.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from aiohttp import web

from edgesim.config.loader import load_config
from edgesim.config.schema import Config, CustomOrigin

__all__ = ["DEMO_CONFIG", "demo_app", "demo_config", "with_demo_origin"]

DEMO_CONFIG = Path(__file__).with_name("demo.yaml")

_PAGE = """<!doctype html>
<html><head><title>edgesim demo</title><link rel="stylesheet" href="/static/site.css"></head>
<body><img src="/static/logo.svg" alt="" width="64">
<h1>Served through edgesim</h1>
<p>Rendered by the demo origin at {stamp}. Reload: the edge answers from its cache
(<code>X-Cache: Hit from cloudfront</code>) for 60 seconds.</p>
<p>Try <code>/api/time</code> (cached 5 s), <code>/api/echo?x=1</code> (not cached)
and <code>/static/logo.svg</code> (a folder served like S3).</p>
</body></html>
"""


def demo_app() -> web.Application:
    """The demo origin: an HTML page, a short-lived JSON clock and an echo."""

    async def index(_: web.Request) -> web.Response:
        stamp = time.strftime("%H:%M:%S")
        return web.Response(
            text=_PAGE.format(stamp=stamp),
            content_type="text/html",
            headers={"Cache-Control": "public, max-age=60"},
        )

    async def clock(_: web.Request) -> web.Response:
        return web.json_response({"time": time.time()}, headers={"Cache-Control": "max-age=5"})

    async def echo(request: web.Request) -> web.Response:
        body = await request.read()
        return web.json_response(
            {
                "method": request.method,
                "path": request.path,
                "query": request.query_string,
                "headers": dict(request.headers),
                "body_bytes": len(body),
            },
            headers={"Cache-Control": "no-store"},
        )

    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_get("/api/time", clock)
    app.router.add_route("*", "/api/echo", echo)
    return app


def demo_config(app_port: int = 3000) -> Config:
    """The demo config with its app origin on ``app_port`` on loopback."""
    return with_demo_origin(load_config(DEMO_CONFIG), app_port)


def with_demo_origin(config: Config, app_port: int) -> Config:
    """``config`` with its ``app`` origin pointed at the demo app on ``app_port``."""
    app = config.origins["app"]
    assert isinstance(app, CustomOrigin)
    origins = {**config.origins, "app": dataclasses.replace(app, port=app_port)}
    return dataclasses.replace(config, origins=origins)
