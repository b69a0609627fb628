"""The load-test report: one JSON-ready document, and the text summary printed from it.

``build`` turns a run's data into the document that ``--json`` writes and
the HTML page draws; ``summary`` renders it for the terminal. Counts are of
the measured stage only; warm-up has a section of its own.
"""

from __future__ import annotations

import datetime
from typing import Any

from edgesim import __version__
from edgesim.loadtest.cost import estimate
from edgesim.loadtest.driver import INTERVAL, UNSENT
from edgesim.loadtest.edge_stats import delta
from edgesim.loadtest.harness import RunData, StageData
from edgesim.loadtest.histogram import Histogram
from edgesim.loadtest.metrics import Tally

__all__ = ["CEILING_WARNING", "build", "function_line", "percent", "summary"]

CEILING_WARNING = 0.8  # warn when a run reaches this share of the generator's ceiling
CPU_WARNING = 0.9  # ... or a generator process used this share of a core
LAG_WARNING_MS = 5.0  # ... or open-loop requests went out this late (p99)


def _counts(tally: Tally) -> dict[str, Any]:
    return {
        "requests": tally.requests,
        "answered": tally.answered_count,
        "statuses": {str(k): v for k, v in sorted(tally.statuses.items())},
        "x_cache": dict(sorted(tally.x_cache.items(), key=lambda kv: -kv[1])),
        "errors": dict(sorted(tally.errors.items(), key=lambda kv: -kv[1])),
        "hit_ratio": tally.hit_ratio,
        "origin_fetches": tally.origin_fetches,
        "origin_offload": tally.origin_offload,
        "origin_counted_by": "x-cache",
        "bytes_received": tally.bytes,
    }


def _origin_from_edge(counts: dict[str, Any], edge: dict[str, Any]) -> None:
    """Origin fetches and offload from the edge's own count, when it gives one: X-Cache
    cannot tell whether an ``Error`` went to the origin (a 5xx it sent, a refused
    connection) or not (an error served from the cache)."""
    origin = edge.get("origin") or {}
    if "requests" not in origin:
        return  # an edge without the count
    total = edge["requests_total"]
    counts["origin_fetches"] = origin["requests"]
    counts["origin_offload"] = 1 - origin["requests"] / total if total else None
    counts["origin_counted_by"] = "edge"


def _phase_at(run: RunData, t: float) -> str:
    start = 0.0
    for phase in run.phases:
        if t < start + phase.duration:
            return phase.name
        start += phase.duration
    return run.phases[-1].name


def _timeline(run: RunData, stage: StageData) -> list[dict[str, Any]]:
    rows = []
    elapsed = stage.elapsed
    for index in sorted(stage.intervals):
        tally = stage.intervals[index]
        start = index * INTERVAL
        length = min(INTERVAL, max(elapsed - start, 1e-3))
        hist = tally.latency
        rows.append(
            {
                "t": start,
                "seconds": length,
                "phase": _phase_at(run, start),
                "requests": tally.requests,
                "answered": tally.answered_count,
                "requests_per_s": tally.answered_count / length,
                "errors": tally.error_count + tally.server_errors,
                "p50_ms": hist.percentile(0.5) / 1000,
                "p90_ms": hist.percentile(0.9) / 1000,
                "p99_ms": hist.percentile(0.99) / 1000,
                "max_ms": hist.max / 1000,
                "hits": tally.hits,
                "origin_fetches": tally.origin_fetches,
                "hit_ratio": tally.hit_ratio,
            }
        )
    return rows


def _load(run: RunData) -> dict[str, Any]:
    phases, at = [], 0.0
    for p in run.phases:
        row: dict[str, Any] = {"name": p.name, "starts_at_s": at, "duration_s": p.duration}
        if p.rate is not None:
            row["rate"] = [p.rate.start, p.rate.end]
        if p.concurrency is not None:
            row["concurrency"] = [p.concurrency.start, p.concurrency.end]
        phases.append(row)
        at += p.duration
    o = run.options
    return {
        "mode": "open loop" if run.phases[0].rate is not None else "closed loop",
        "phases": phases,
        "warmup_s": o.warmup,
        "requests_limit": o.requests,
        "processes": o.processes,
        "timeout_s": o.timeout,
        "connections_limit": o.connections,
        "seed": o.seed if o.seed is not None else run.scenario.seed,
        "request_kinds": [
            {
                "method": s.method,
                "url": f"{s.scheme}://{s.host}:{s.port}{s.path}",
                "objects": s.objects,
                "popularity": s.popularity if s.objects > 1 else None,
                "zipf_exponent": s.zipf_exponent if s.objects > 1 else None,
                "weight": s.weight,
            }
            for s in run.scenario.requests
        ],
    }


def _generator(run: RunData, throughput: float, warnings: list[str]) -> dict[str, Any]:
    results = run.measure.results
    cpu = [r.cpu / r.elapsed if r.elapsed else 0.0 for r in results]
    lag = Histogram.merged(r.lag for r in results)
    out: dict[str, Any] = {
        "processes": len(results),
        "cpu": cpu,
        "connections_opened": sum(r.connections for r in results),
        "peak_connections": sum(r.peak_connections for r in results),
        "send_lag_ms": lag.summary_ms() if lag.count else None,
        "ceiling": run.ceiling,
        "share_of_ceiling": None,
    }
    ceiling = (run.ceiling or {}).get("requests_per_s")
    if ceiling:
        out["share_of_ceiling"] = throughput / ceiling
        if throughput >= CEILING_WARNING * ceiling:
            warnings.append(
                f"the generator ran at {throughput / ceiling:.0%} of its own ceiling "
                f"({ceiling:,.0f} req/s against a trivial server with the same processes and "
                "connections): the target may be faster than this run shows; add --processes"
            )
    for i, share in enumerate(cpu):
        if share >= CPU_WARNING:
            warnings.append(
                f"generator process {i} used {share:.0%} of a core: it may have been the "
                "bottleneck; add --processes"
            )
    if lag.count and lag.percentile(0.99) / 1000 > LAG_WARNING_MS:
        warnings.append(
            f"open loop: p99 of requests went out {lag.percentile(0.99) / 1000:.1f} ms after "
            "their intended time (all connections busy, or the generator overloaded); "
            "latency counts from the intended time"
        )
    return out


def build(run: RunData) -> dict[str, Any]:
    """The report document of a finished run."""
    total = run.measure.total
    elapsed = run.measure.elapsed
    throughput = total.answered_count / elapsed if elapsed > 0 else 0.0
    warnings: list[str] = []
    doc: dict[str, Any] = {
        "edgesim": __version__,
        "started_at": datetime.datetime.fromtimestamp(run.started_at, datetime.UTC).isoformat(
            timespec="seconds"
        ),
        "target": run.target,
        "config": str(run.options.config) if run.options.config else None,
        "scenario": run.scenario.source,
        "load": _load(run),
        "duration_s": elapsed,
        "throughput_rps": throughput,
        "latency_ms": total.latency.summary_ms(),
        **_counts(total),
        "server_errors": total.server_errors,
        "warmup": None,
        "edge": None,
        "cost": None,
        "generator": _generator(run, throughput, warnings),
        "warnings": warnings,
        "timeline": _timeline(run, run.measure),
        "histogram": {"unit": "us", "buckets": [list(b) for b in total.latency.ranges()]},
    }
    if run.warmup is not None:
        warm = run.warmup.total
        doc["warmup"] = {"duration_s": run.warmup.elapsed, **_counts(warm)}
    if "end" in run.stats:
        edge, usage = delta(run.stats["measure"], run.stats["end"], run.functions)
        _origin_from_edge(doc, edge)
        if "start" in run.stats and run.warmup is not None:
            edge["warmup"], _ = delta(run.stats["start"], run.stats["measure"], run.functions)
            _origin_from_edge(doc["warmup"], edge["warmup"])
        doc["edge"] = edge
        doc["cost"] = estimate(usage, total.requests, elapsed)
        for name, f in edge["functions"].items():
            if f["throttles"]:
                warnings.append(f"function {name} was throttled {f['throttles']:,} times")
    errors = total.error_count
    if errors:
        kinds = ", ".join(f"{k} {n:,}" for k, n in doc["errors"].items())
        warnings.append(f"{errors:,} of {total.requests:,} requests got no response ({kinds})")
    if total.errors.get(UNSENT):
        warnings.append(
            "the target did not keep up with the offered rate: requests were still waiting "
            "for a connection when the run ended"
        )
    if run.interrupted:
        warnings.append("the run was interrupted: the numbers cover only part of it")
    return doc


# -- text -------------------------------------------------------------------------------


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def function_line(f: dict[str, Any]) -> str:
    """One function's row of the report (``edge.functions``), in words."""
    spread = f["duration_ms"]
    duration = (
        f"duration p50 {_duration(spread['p50'])}, p99 {_duration(spread['p99'])}"
        if spread
        else "no duration"
    )
    return (
        f"{f['invocations']:,} invocations, {f['cold_starts']} cold starts, "
        f"{f['throttles']} throttles, {f['errors']} errors; {duration}"
    )


def _duration(ms: float) -> str:
    """A function's Duration: a no-op runs in microseconds, which 0.00 ms would hide."""
    return f"{ms:.2f} ms" if ms >= 0.1 else f"{ms * 1000:.1f} us"


def _usd(value: float) -> str:
    return f"${value:,.6f}" if value < 1 else f"${value:,.2f}"


def summary(doc: dict[str, Any]) -> str:
    """The report as text for the terminal."""
    load = doc["load"]
    lat = doc["latency_ms"]
    lines = [
        f"edgesim loadtest: {doc['target']} ({load['mode']}, {load['processes']} process(es))",
        f"  measured    {doc['duration_s']:.1f} s, {doc['requests']:,} requests, "
        f"{doc['throughput_rps']:,.0f} req/s answered",
        "  latency     "
        + "  ".join(f"{k} {lat[k]:.2f} ms" for k in ("p50", "p90", "p99", "p99.9", "max")),
        "  statuses    " + ", ".join(f"{k}: {v:,}" for k, v in doc["statuses"].items()),
        "  X-Cache     " + (", ".join(f"{k} {v:,}" for k, v in doc["x_cache"].items()) or "-"),
        f"  hit ratio   {percent(doc['hit_ratio'])}   origin fetches {doc['origin_fetches']:,}   "
        f"origin offload {percent(doc['origin_offload'])}",
    ]
    if doc["errors"]:
        lines.append("  errors      " + ", ".join(f"{k} {v:,}" for k, v in doc["errors"].items()))
    if doc["warmup"]:
        w = doc["warmup"]
        lines.append(
            f"  warm-up     {w['duration_s']:.1f} s, {w['requests']:,} requests (not counted above)"
        )
    edge = doc["edge"]
    if edge:
        cache = edge["cache"]
        lines.append(
            f"  edge        {edge['requests_total']:,} requests; cache hits {cache['hits']:,}, "
            f"misses {cache['misses']:,}, evictions {cache['evictions']:,}"
        )
        for name, f in edge["functions"].items():
            lines.append(
                f"  function    {name} ({f['runtime']}, {f['memory_mb']} MB): {function_line(f)}"
            )
    cost = doc["cost"]
    if cost and cost["functions"]:
        lines.append(
            f"  AWS cost    {_usd(cost['per_million_requests_usd'])} per million requests, "
            f"{_usd(cost['per_month_usd'])} per month at this rate "
            f"(functions only, list prices of {cost['prices']['as_of']})"
        )
    gen = doc["generator"]
    ceiling = gen["ceiling"]
    if ceiling:
        lines.append(
            f"  generator   ceiling {ceiling['requests_per_s']:,.0f} req/s; this run used "
            f"{percent(gen['share_of_ceiling'])} of it; CPU "
            + ", ".join(f"{c:.0%}" for c in gen["cpu"])
        )
    lines += [f"  WARNING     {w}" for w in doc["warnings"]]
    return "\n".join(lines)
