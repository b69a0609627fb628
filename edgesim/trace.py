"""What one request did: the trace the inspector shows and ``GET /requests`` serves.

``TraceRing`` keeps the latest Exchanges the server answered, in a bounded
deque; adding one is a single C call on the request path, and nothing is
copied or formatted then (the Exchange holds references to frozen values the
stages made anyway). ``summary`` and ``trace`` turn an Exchange into
JSON-ready dicts only when someone asks: the trip in CloudFront's order
(behavior, viewer-request, cache lookup, origin-request, origin fetch,
origin-response, viewer-response, response), each hook that fired with what
it changed, its log lines and REPORT line, or why it did not fire; the cache
decision with its key, TTL and the rule behind it; timings and sizes. The
whys (a hook that did not run, the cache's decision) are edgesim.explain's.

A trace of a request that is no longer in the ring is gone: the ring is the
only memory of it (the access log is the durable record).
"""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from edgesim.cache import CacheStore
from edgesim.codecs import ContinueRequest, GeneratedResponse, ModifiedResponse
from edgesim.config.schema import Behavior, CustomOrigin, Origin
from edgesim.diff import headers_json, request_changes, response_changes
from edgesim.errors import EdgeError
from edgesim.explain import cache_decision, why_not_run
from edgesim.hooks import ORIGIN_EVENTS, EventType
from edgesim.models import Exchange, Request, Response, body_length
from edgesim.triggers import HookRun
from edgesim.viewer import Viewer

__all__ = ["TraceRing", "iso_time", "summary", "trace", "wall_time"]

Json = dict[str, Any]

# perf_counter() stamps become wall-clock times through one anchor taken at
# import: no clock call per request beyond the perf_counter() stamps.
_ANCHOR = time.time() - time.perf_counter()


def wall_time(stamp: float) -> float:
    """Epoch seconds for a ``time.perf_counter()`` stamp."""
    return _ANCHOR + stamp


def iso_time(stamp: float) -> str:
    """``2026-03-03T10:00:01.123Z`` for a ``time.perf_counter()`` stamp."""
    wall = wall_time(stamp)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(wall)) + f".{int(wall % 1 * 1000):03d}Z"


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


class TraceRing:
    """The latest ``size`` answered exchanges, oldest first; ``add`` is ``deque.append``."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._ring: deque[Exchange] = deque(maxlen=size)
        self.add: Callable[[Exchange], None] = self._ring.append

    def __len__(self) -> int:
        return len(self._ring)

    def newest_first(self) -> Iterator[Exchange]:
        return reversed(list(self._ring))

    def newest(self) -> Exchange | None:
        return self._ring[-1] if self._ring else None

    def find(self, request_id: str) -> Exchange | None:
        for ex in reversed(self._ring):
            if ex.request_id == request_id:
                return ex
        return None

    def after(self, last: Exchange | None) -> list[Exchange]:
        """The exchanges added since ``last``, oldest first (all of them if ``last``
        is None or has left the ring). Walks back from the newest only as far as
        ``last``: a watching page costs what is new, not the ring."""
        if last is None:
            return list(self._ring)
        new: list[Exchange] = []
        for ex in reversed(self._ring):
            if ex is last:
                break
            new.append(ex)
        new.reverse()
        return new


def summary(ex: Exchange) -> Json:
    """One line of the request list: method, URL, status, X-Cache, time."""
    viewer = ex.viewer_request
    finished = ex.finished or ex.started
    return {
        "id": ex.request_id,
        "time": iso_time(finished),
        "method": viewer.method,
        "url": viewer.target,
        "host": viewer.headers.get("host"),
        "status": ex.sent_status,
        "x_cache": ex.x_cache,
        "result_type": ex.result_type,
        "duration_ms": _ms(finished - ex.started),
        "behavior": ex.behavior.path_pattern if ex.behavior is not None else None,
        "functions": len(ex.hook_runs),
        "aborted": ex.aborted,
    }


def trace(ex: Exchange, store: CacheStore) -> Json:
    """Everything the edge knows about what ``ex`` did. ``store`` is the cache the
    request went through, to tell whether a streamed object was kept."""
    out = summary(ex)
    viewer = ex.viewer_request
    response = ex.response
    finished = ex.finished or ex.started
    origin_s = sum(fetch[3] - fetch[2] for fetch in ex.origin_fetches)
    hooks_s = sum(run.ended - run.started for run in ex.hook_runs)
    first = (ex.first_byte or finished) - ex.started
    out.update(
        detailed_result_type=ex.detailed_result_type,
        client={"ip": viewer.client_ip, "port": viewer.client_port},
        http_version=viewer.http_version,
        request=_request_json(ex),
        response=None if response is None else _response_json(ex, response),
        trip=list(_trip(ex, store)),
        timings={
            "total_ms": _ms(finished - ex.started),
            "first_byte_ms": _ms(first),
            "origin_ms": _ms(origin_s),
            "functions_ms": _ms(hooks_s),
            "edge_ms": _ms(max(0.0, finished - ex.started - origin_s - hooks_s)),
        },
        bytes={"received": viewer.size(), "sent": ex.bytes_out},
        simulated_viewer=_viewer_json(ex.viewer),
        notes=list(ex.notes),
    )
    return out


def _viewer_json(viewer: object) -> Json | None:
    """Where the viewer simulation (edgesim.viewer) put this viewer, if it did."""
    if not isinstance(viewer, Viewer):
        return None
    out: Json = {"ip": viewer.ip, "port": viewer.port, "rule": viewer.rule}
    for f in dataclasses.fields(viewer.location):
        value = getattr(viewer.location, f.name)
        if value is not None:
            out[f.name] = value
    return out


def _content_length(response: Response) -> int | None:
    if isinstance(response.body, bytes):
        return len(response.body)
    value = response.headers.get("content-length")
    return int(value) if value is not None and value.isdigit() else None


def _request_json(ex: Exchange) -> Json:
    viewer = ex.viewer_request
    return {
        "method": viewer.method,
        "path": viewer.path,
        "query": viewer.query,
        "headers": headers_json(viewer.headers),
        "body_bytes": body_length(viewer.body),
    }


def _response_json(ex: Exchange, response: Response) -> Json:
    return {
        "status": response.status,
        "reason": response.reason,
        "headers": headers_json(response.headers) + [list(f) for f in ex.edge_headers],
        # The server keeps an answered response without its body: its length is
        # in its Content-Length (none for a chunked one).
        "body_bytes": _content_length(response),
    }


# -- the trip, stage by stage -------------------------------------------------


def _trip(ex: Exchange, store: CacheStore) -> Iterator[Json]:
    behavior = ex.behavior
    if behavior is None:
        yield {"stage": "refused", "detail": "; ".join(ex.notes) or ex.detailed_result_type}
        return
    yield _behavior_step(behavior)
    attached = dict(behavior.functions)
    runs = ex.hook_runs
    yield from _hook_steps(ex, EventType.VIEWER_REQUEST, attached)
    yield cache_decision(ex, behavior, store)
    # Origin-facing hooks and fetches, in the order they happened (failover
    # makes each run once per origin tried).
    timed: list[tuple[float, Json]] = [
        (run.started, _fired(ex, run)) for run in runs if run.event in ORIGIN_EVENTS
    ]
    timed += [(fetch[2], _origin_step(fetch)) for fetch in ex.origin_fetches]
    timed.sort(key=lambda item: item[0])
    yield from (step for _, step in timed)
    for event in ORIGIN_EVENTS:
        if event in attached and not any(run.event is event for run in runs):
            yield _skipped(ex, event, attached[event].function)
    yield from _hook_steps(ex, EventType.VIEWER_RESPONSE, attached)


def _behavior_step(behavior: Behavior) -> Json:
    policy = behavior.cache
    return {
        "stage": "behavior",
        "path_pattern": behavior.path_pattern,
        "origin": behavior.origin,
        "allowed_methods": sorted(behavior.allowed_methods),
        "cached_methods": sorted(behavior.cached_methods),
        "cache_policy": {
            "name": policy.name,
            "min_ttl": policy.min_ttl,
            "default_ttl": policy.default_ttl,
            "max_ttl": policy.max_ttl,
        },
        "compress": behavior.compress,
        "functions": {event: a.function for event, a in behavior.functions},
    }


def _hook_steps(ex: Exchange, event: EventType, attached: dict[str, Any]) -> Iterator[Json]:
    fired = [run for run in ex.hook_runs if run.event is event]
    for run in fired:
        yield _fired(ex, run)
    if not fired and event in attached:
        yield _skipped(ex, event, attached[event].function)


def _fired(ex: Exchange, run: HookRun) -> Json:
    result = run.result
    logs = list(result.logs)
    step: Json = {
        "stage": run.event.value,
        "function": run.function,
        "fired": True,
        "outcome": run.outcome,
        "result": result.kind,
        "duration_ms": round(result.duration_ms, 3),
        "billed_ms": result.billed_ms,
        "init_duration_ms": (
            None if result.init_duration_ms is None else round(result.init_duration_ms, 3)
        ),
        "max_memory_mb": result.max_memory_mb,
        # CloudFront Functions report compute utilization (0-100) instead.
        "compute_utilization": getattr(result, "compute_utilization", None),
        "round_trip_ms": _ms(run.ended - run.started),
        "lambda_request_id": result.request_id,
        "logs": logs,
        "report": next((line for line in logs if line.startswith("REPORT ")), None),
        "error": result.error,
        "changes": [],
    }
    returned = run.returned
    if isinstance(returned, EdgeError):
        step["failure"] = str(returned)
    elif isinstance(returned, ContinueRequest) and isinstance(run.given, Request):
        step["changes"] = request_changes(run.given, returned.request)
        if returned.origin is not None and returned.origin is not run.given_origin:
            step["changes"].append(
                {
                    "field": "origin",
                    "before": _origin_name(run.given_origin),
                    "after": _origin_name(returned.origin),
                }
            )
    elif isinstance(returned, GeneratedResponse):
        generated = returned.response
        step["generated"] = {
            "status": generated.status,
            "reason": generated.reason,
            "headers": headers_json(generated.headers),
            "body_bytes": body_length(generated.body),
        }
    elif isinstance(returned, ModifiedResponse) and isinstance(run.given, Response):
        step["changes"] = response_changes(run.given, returned.response)
    return step


def _skipped(ex: Exchange, event: EventType, function: str) -> Json:
    reason = why_not_run(ex, event)
    return {"stage": event.value, "function": function, "fired": False, "skipped": reason}


def _origin_name(origin: Origin | None) -> str | None:
    if origin is None:
        return None
    if isinstance(origin, CustomOrigin):
        return f"{origin.name} ({origin.scheme}://{origin.host}:{origin.port}{origin.path})"
    return f"{origin.name} (folder {origin.directory})"


def _origin_step(fetch: tuple[Any, Any, float, float, int, Any]) -> Json:
    origin, sent, started, ended, status, outcome = fetch
    step: Json = {
        "stage": "origin",
        "origin": _origin_name(origin),
        "method": sent.method,
        # What the origin sees: its origin path (a custom origin's prefix) first.
        "target": (origin.path if isinstance(origin, CustomOrigin) else "") + sent.target,
        "request_headers": headers_json(sent.headers),
        "ms": _ms(ended - started),
    }
    if isinstance(outcome, EdgeError):
        step["error"] = f"{outcome.detailed_result_type}: {outcome}"
    else:
        step["status"] = status
        step["response_headers"] = headers_json(outcome)
    return step
