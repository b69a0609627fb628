"""The control API on the admin listener: invalidations and statistics.

The inspector page and the trace, cache, function and metrics views are
added by ``edgesim.inspector``.

``POST /invalidations`` takes ``{"paths": [...]}`` with CloudFront's path
rules (Invalidation.md: a leading ``/``, ``*`` only as the last character)
and answers like CreateInvalidation: 201 with an ``Invalidation`` object.
Invalidations here complete at once.
"""

from __future__ import annotations

import json
import secrets
import string
import time
from typing import Any

from aiohttp import web

from edgesim.cache import validate_invalidation_path
from edgesim.inspector import add_inspector_routes, json_error
from edgesim.server import EdgeServer

__all__ = ["admin_app"]

# CloudFront's quota of paths in progress per invalidation batch (Invalidation.md).
_MAX_PATHS = 3000
_ID_ALPHABET = string.ascii_uppercase + string.digits


def _invalidation_id() -> str:
    return "I" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(13))


def admin_app(edge: EdgeServer) -> web.Application:
    """The admin application for one running edge."""
    invalidations: dict[str, dict[str, Any]] = {}

    async def stats(_: web.Request) -> web.Response:
        return web.json_response(
            {
                "cache": edge.pipeline.store.stats(),
                "functions": edge.functions.stats() if edge.functions is not None else {},
                "requests": dict(edge.counters),
                "origin": edge.metrics.origin_counts(),
                "connections": len(edge.connections),
            }
        )

    async def create_invalidation(request: web.Request) -> web.Response:
        try:
            payload = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return json_error(400, "MalformedInput", "the body must be JSON")
        paths = payload.get("paths") if isinstance(payload, dict) else None
        if not isinstance(paths, list) or not paths or not all(isinstance(p, str) for p in paths):
            return json_error(400, "InvalidArgument", '"paths" must be a non-empty list of strings')
        if len(paths) > _MAX_PATHS:
            return json_error(400, "TooManyInvalidationsInProgress", f"at most {_MAX_PATHS} paths")
        for path in paths:
            problem = validate_invalidation_path(path)
            if problem is not None:
                return json_error(400, "InvalidArgument", f"{path!r}: {problem}")
        removed = edge.pipeline.store.invalidate(paths)
        ident = _invalidation_id()
        record = {
            "Id": ident,
            "Status": "Completed",
            "CreateTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "InvalidationBatch": {
                "Paths": {"Quantity": len(paths), "Items": paths},
                "CallerReference": payload.get("caller_reference") or ident,
            },
            "ObjectsRemoved": removed,
        }
        invalidations[ident] = record
        location = f"/invalidations/{ident}"
        return web.json_response(
            {"Location": location, "Invalidation": record},
            status=201,
            headers={"Location": location},
        )

    async def get_invalidation(request: web.Request) -> web.Response:
        record = invalidations.get(request.match_info["id"])
        if record is None:
            return json_error(404, "NoSuchInvalidation", "no invalidation with that id")
        return web.json_response({"Invalidation": record})

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/stats", stats)
    app.router.add_post("/invalidations", create_invalidation)
    app.router.add_get("/invalidations/{id}", get_invalidation)
    app.router.add_get("/healthz", healthz)
    add_inspector_routes(app, edge)
    return app
