"""The JSON and Prometheus views of what the edge did (admin listener).

    GET /requests              recent requests, newest first: ?limit=&status=&x_cache=&path=
    GET /requests/{id}         one request's trace (edgesim.trace); id is its X-Amz-Cf-Id
    GET /cache                 cached objects: key, size, TTL, age, TTL left
    GET /functions             per function: invocations, errors, cold starts,
                               duration percentiles, environments
    GET /metrics               Prometheus text format (edgesim.metrics)

Reading any of them costs the request path nothing.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from edgesim.cache import key_target
from edgesim.metrics import EdgeCollector
from edgesim.models import Exchange
from edgesim.server import EdgeServer
from edgesim.trace import summary, trace

__all__ = ["add_inspector_routes"]

_MAX_LIST = 1000
_STATUS_FILTER = re.compile(r"[1-5](xx|\d\d)")
_PERCENTILES = (50, 90, 99)


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"Error": {"Code": code, "Message": message}}, status=status)


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
    """Add the trace, cache, function and metrics endpoints to ``app``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(EdgeCollector(edge))

    async def list_requests(request: web.Request) -> web.Response:
        query = request.query
        try:
            limit = int(query.get("limit", "100"))
        except ValueError:
            return _error(400, "InvalidArgument", "limit must be a whole number")
        if not 1 <= limit <= _MAX_LIST:
            return _error(400, "InvalidArgument", f"limit must be 1 to {_MAX_LIST}")
        status = query.get("status") or None
        if status is not None and not _STATUS_FILTER.fullmatch(status):
            return _error(400, "InvalidArgument", "status must be a code like 404 or a class, 4xx")
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
            return _error(
                404,
                "NoSuchRequest",
                f"no trace of that request: the last {edge.traces.size} requests are kept",
            )
        return web.json_response(trace(ex, edge.config, edge.store))

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
