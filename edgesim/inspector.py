"""The live request inspector, and the JSON and Prometheus views behind it (admin listener).

    GET /inspector             the page (HTML, JS and CSS shipped in edgesim/static;
                               it loads nothing from anywhere else)
    GET /inspector/events      server-sent events: one ``request`` event per answered
                               request (its summary), as they happen
    GET /requests              recent requests, newest first: ?limit=&status=&x_cache=&path=
    GET /requests/{id}         one request's trace (edgesim.trace); id is its X-Amz-Cf-Id
    GET /cache                 cached objects: key, size, TTL, age, TTL left
    GET /functions             per function: invocations, errors, cold starts,
                               duration percentiles, environments
    GET /metrics               Prometheus text format (edgesim.metrics)

The page invalidates through the admin API's ``POST /invalidations``. The
event stream polls the trace ring four times a second while a page is open,
so an open page costs the request path nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from importlib import resources
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from edgesim.cache import key_target
from edgesim.metrics import EdgeCollector
from edgesim.models import Exchange
from edgesim.server import EdgeServer
from edgesim.trace import summary, trace

__all__ = ["add_inspector_routes", "json_error"]

_ASSETS = {
    "inspector.js": "text/javascript",
    "inspector.css": "text/css",
}
_POLL = 0.25  # seconds between looks at the trace ring while a page listens
_HEARTBEAT = 15.0  # seconds of silence before a comment line keeps proxies from timing out
_MAX_BATCH = 200  # events sent per look, at most (the newest)
_MAX_LIST = 1000
_STATUS_FILTER = re.compile(r"[1-5](xx|\d\d)")
_PERCENTILES = (50, 90, 99)


def json_error(status: int, code: str, message: str) -> web.Response:
    """An admin API error, in the shape CloudFront's API gives its own."""
    return web.json_response({"Error": {"Code": code, "Message": message}}, status=status)


def _asset(name: str) -> bytes:
    return resources.files("edgesim").joinpath("static", name).read_bytes()


def _matches(ex: Exchange, status: str | None, x_cache: str | None, path: str | None) -> bool:
    response = ex.response
    if status is not None:
        code = str(response.status if response is not None else 0)
        wanted = code[:1] == status[0] if status.endswith("xx") else code == status
        if not wanted:
            return False
    if x_cache is not None and x_cache.lower() not in ex.x_cache.lower():
        return False
    return path is None or path in ex.viewer_request.target


def _percentiles(values: list[float]) -> dict[str, float | None]:
    """Nearest-rank percentiles of ``values`` (None when there are none)."""
    ordered = sorted(values)
    out: dict[str, float | None] = {}
    for p in _PERCENTILES:
        if not ordered:
            out[f"p{p}"] = None
            continue
        rank = max(1, -(-p * len(ordered) // 100))  # ceil(p/100 * n)
        out[f"p{p}"] = round(ordered[rank - 1], 3)
    out["max"] = round(ordered[-1], 3) if ordered else None
    return out


def add_inspector_routes(app: web.Application, edge: EdgeServer) -> None:
    """Add the inspector page and its JSON, event and metrics endpoints to ``app``."""
    closing = asyncio.Event()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(EdgeCollector(edge))

    async def on_shutdown(_: web.Application) -> None:
        closing.set()  # open event streams end, so the admin listener stops at once

    app.on_shutdown.append(on_shutdown)

    async def page(_: web.Request) -> web.Response:
        return web.Response(
            body=_asset("inspector.html"),
            content_type="text/html",
            charset="utf-8",
            headers={"Cache-Control": "no-store"},
        )

    async def asset(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in _ASSETS:
            return json_error(404, "NotFound", f"no asset {name!r}")
        return web.Response(
            body=_asset(name), content_type=_ASSETS[name], headers={"Cache-Control": "no-store"}
        )

    async def list_requests(request: web.Request) -> web.Response:
        query = request.query
        try:
            limit = int(query.get("limit", "100"))
        except ValueError:
            return json_error(400, "InvalidArgument", "limit must be a whole number")
        if not 1 <= limit <= _MAX_LIST:
            return json_error(400, "InvalidArgument", f"limit must be 1 to {_MAX_LIST}")
        status = query.get("status") or None
        if status is not None and not _STATUS_FILTER.fullmatch(status):
            return json_error(
                400, "InvalidArgument", "status must be a code like 404 or a class, 4xx"
            )
        x_cache, path = query.get("x_cache") or None, query.get("path") or None
        picked: list[dict[str, Any]] = []
        for ex in edge.traces.newest_first():
            if _matches(ex, status, x_cache, path):
                picked.append(summary(ex))
                if len(picked) >= limit:
                    break
        return web.json_response({"requests": picked, "kept": edge.traces.size})

    async def one_request(request: web.Request) -> web.Response:
        ex = edge.traces.find(request.match_info["id"])
        if ex is None:
            return json_error(
                404,
                "NoSuchRequest",
                f"no trace of that request: the last {edge.traces.size} requests are kept",
            )
        return web.json_response(trace(ex, edge.store))

    async def events(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"}
        )
        await response.prepare(request)
        after = request.headers.get("Last-Event-ID") or request.query.get("after")
        ring = edge.traces
        last = ring.find(after) if after else ring.newest()
        quiet = 0.0
        with contextlib.suppress(ConnectionError):
            await response.write(b"retry: 1000\n\n")
            while not closing.is_set():
                new = ring.after(last)[-_MAX_BATCH:]
                if new:
                    last = new[-1]
                    quiet = 0.0
                    chunks = [
                        f"id: {ex.request_id}\nevent: request\ndata: {json.dumps(summary(ex))}\n\n"
                        for ex in new
                    ]
                    await response.write("".join(chunks).encode())
                elif quiet >= _HEARTBEAT:
                    quiet = 0.0
                    await response.write(b": still here\n\n")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(closing.wait(), _POLL)
                quiet += _POLL
        return response

    async def cache(request: web.Request) -> web.Response:
        store = edge.store
        now = store.clock()
        entries = list(store.entries())[::-1]  # most recently used first
        limit = min(len(entries), _MAX_LIST)
        shown = []
        for entry in entries[:limit]:
            age = max(0.0, now - entry.stored_at)
            shown.append(
                {
                    "key": entry.key,
                    "path": key_target(entry.key),
                    "status": entry.status,
                    "bytes": entry.size,
                    "body_bytes": len(entry.body),
                    "content_type": entry.headers.get("content-type"),
                    "ttl": entry.ttl,
                    "age": round(age, 3),
                    "ttl_left": round(max(0.0, entry.ttl - age), 3),
                    "fresh": entry.is_fresh(now),
                }
            )
        return web.json_response({"stats": store.stats(), "entries": shown})

    async def functions(_: web.Request) -> web.Response:
        invoker = edge.functions
        stats = invoker.stats() if invoker is not None else {}
        out = []
        for name, configured in sorted(edge.config.functions.items()):
            s = stats.get(name, {})
            out.append(
                {
                    "name": name,
                    "runtime": configured.runtime,
                    "memory": configured.memory,
                    "timeout": configured.timeout,
                    "concurrency": configured.concurrency,
                    **{k: s.get(k, 0) for k in _COUNTS},
                    "duration_ms": _percentiles(s.get("durations_ms", [])),
                    "init_duration_ms": _percentiles(s.get("init_durations_ms", [])),
                }
            )
        return web.json_response({"functions": out})

    async def metrics(request: web.Request) -> web.Response:
        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        return web.Response(body=encoder(registry), headers={"Content-Type": content_type})

    async def home(_: web.Request) -> web.Response:
        raise web.HTTPFound("/inspector")

    app.router.add_get("/", home)
    app.router.add_get("/inspector", page)
    app.router.add_get("/inspector/events", events)
    app.router.add_get("/inspector/{name}", asset)
    app.router.add_get("/requests", list_requests)
    app.router.add_get("/requests/{id}", one_request)
    app.router.add_get("/cache", cache)
    app.router.add_get("/functions", functions)
    app.router.add_get("/metrics", metrics)


_COUNTS = (
    "invocations",
    "errors",
    "throttles",
    "cold_starts",
    "timeouts",
    "crashes",
    "oom",
    "invalid",
    "environments",
    "warm",
    "busy",
)
