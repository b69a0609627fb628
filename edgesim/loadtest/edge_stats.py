"""The edge's own account of a run, from its admin API (``GET /stats``) before and after.

``/stats`` (edgesim.admin) gives cumulative counters: the cache's hits and
misses, the requests answered by X-Cache result, the requests that went to
an origin (with its answers and failures), and per function the
invocations, errors, throttles, cold starts, timeouts and crashes, plus
the durations of its most recent invocations (the last 10,000). The
difference of two snapshots is what happened between them; the durations
of the last ``invocations`` entries are those of the run.
"""

from __future__ import annotations

import json
import statistics
import urllib.request
from typing import Any

from edgesim.loadtest.cost import FunctionUsage, billed_ms

__all__ = ["delta", "fetch_stats"]

_COUNTERS = ("invocations", "errors", "throttles", "cold_starts", "timeouts", "crashes", "oom")


def fetch_stats(admin_url: str, timeout: float = 5.0) -> dict[str, Any]:
    """GET {admin_url}/stats as JSON (the admin API is on loopback)."""
    with urllib.request.urlopen(f"{admin_url}/stats", timeout=timeout) as response:
        data: dict[str, Any] = json.load(response)
    return data


def _spread(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]

    return {
        "p50": at(0.5),
        "p99": at(0.99),
        "max": ordered[-1],
        "mean": statistics.fmean(ordered),
    }


def _last(values: list[float], n: int) -> list[float]:
    return values[-n:] if n > 0 else []


def delta(
    before: dict[str, Any], after: dict[str, Any], functions: dict[str, tuple[str, int]]
) -> tuple[dict[str, Any], list[FunctionUsage]]:
    """What the edge did between two snapshots, and each function's billable usage.

    ``functions`` maps a function name to its (runtime, memory MB) from the config.
    """
    cache_before, cache_after = before.get("cache", {}), after.get("cache", {})
    cache = {
        key: cache_after.get(key, 0) - cache_before.get(key, 0)
        for key in ("hits", "misses", "evictions", "invalidated")
    }
    cache.update(entries=cache_after.get("entries", 0), bytes=cache_after.get("bytes", 0))
    requests_before, requests_after = before.get("requests", {}), after.get("requests", {})
    requests = {
        key: n - requests_before.get(key, 0)
        for key, n in requests_after.items()
        if n - requests_before.get(key, 0)
    }
    report: dict[str, Any] = {}
    usage = []
    for name, now in after.get("functions", {}).items():
        then = before.get("functions", {}).get(name, {})
        row: dict[str, Any] = {k: now.get(k, 0) - then.get(k, 0) for k in _COUNTERS}
        runtime, memory = functions.get(name, ("unknown", 128))
        recent = list(now.get("durations_ms", []))
        runs = _last(recent, row["invocations"])
        inits = _last(list(now.get("init_durations_ms", [])), row["cold_starts"])
        billed = billed_ms(runs)
        if runs and len(runs) < row["invocations"]:  # older ones dropped out of the window
            billed *= row["invocations"] / len(runs)
            row["billed_duration_estimated_from"] = len(runs)
        row.update(
            runtime=runtime,
            memory_mb=memory,
            duration_ms=_spread(runs),
            init_duration_ms=_spread(inits),
            billed_ms=billed,
        )
        report[name] = row
        usage.append(FunctionUsage(name, runtime, memory, row["invocations"], billed))
    origin_before, origin_after = before.get("origin", {}), after.get("origin", {})
    origin = {key: n - origin_before.get(key, 0) for key, n in origin_after.items()}
    edge = {
        "cache": cache,
        "origin": origin,
        "requests": requests,
        "requests_total": sum(requests.values()),
        "functions": report,
    }
    return edge, usage
