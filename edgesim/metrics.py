"""The edge's counters and their Prometheus view (``GET /metrics`` on the admin listener).

``EdgeMetrics`` is updated by the server for every answered request: one
dict increment for the request (by status and X-Cache), and, only for
requests that reached an origin or ran a function, a few more for the origin
fetches and function invocations. Nothing else happens per request; the
cache and the worker pools are read when Prometheus scrapes.

``EdgeCollector`` turns those into Prometheus metric families; the text
format (escaping, HELP/TYPE lines, cumulative histogram buckets, OpenMetrics
negotiation) is prometheus_client's.

Metrics:

    edgesim_requests_total{status, x_cache}              viewer requests answered
    edgesim_requests_cut_off_total{status, x_cache}      ... cut off before the last byte
    edgesim_origin_responses_total{origin, status}       origin fetches that got an answer
    edgesim_origin_errors_total{origin, error}           ... that did not (OriginConnectError ...)
    edgesim_origin_latency_seconds{origin}               histogram: until the response head
    edgesim_cache_entries, edgesim_cache_bytes, edgesim_cache_max_bytes
    edgesim_cache_{hits,misses,evictions,invalidated}_total
    edgesim_function_invocations_total{function, event}  (throttled calls are not invocations)
    edgesim_function_errors_total{function, event, error}  LambdaExecutionError ...
    edgesim_function_throttles_total{function, event}
    edgesim_function_cold_starts_total{function}
    edgesim_function_duration_seconds{function}          histogram: the REPORT Duration
    edgesim_function_init_duration_seconds{function}     histogram: Init Duration
    edgesim_function_environments{function, state}       warm (idle) and busy environments
    edgesim_viewer_connections                           open viewer connections
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from typing import Any, Protocol

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from edgesim.cache import CacheStore
from edgesim.errors import EdgeError
from edgesim.invoker import Invoker
from edgesim.models import Exchange

__all__ = ["EdgeCollector", "EdgeMetrics", "Histogram"]

# Seconds. Origins on a laptop answer in well under a millisecond to seconds;
# warm functions take a millisecond or two, cold starts tens of milliseconds.
_LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)


class Histogram:
    """Observation counts per bucket (upper bounds inclusive, as Prometheus's ``le``)."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...] = _LATENCY_BUCKETS) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def cumulative(self) -> list[tuple[str, float]]:
        """``(le, count of observations <= le)`` pairs, ending with ``+Inf``."""
        out: list[tuple[str, float]] = []
        total = 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            total += count
            out.append(("+Inf" if bound == float("inf") else repr(bound), total))
        return out


class EdgeMetrics:
    """What the edge counts; owned by the EdgeServer, so it outlives config reloads."""

    def __init__(self) -> None:
        # (status, X-Cache) -> requests; the server increments it itself. Of those,
        # the ones cut off before the whole response was sent.
        self.requests: dict[tuple[int, str], int] = {}
        self.cut_off: dict[tuple[int, str], int] = {}
        # Viewer requests that went to an origin (one or more attempts each).
        self.origin_requests = 0
        self.origin_responses: dict[tuple[str, int], int] = {}
        self.origin_errors: dict[tuple[str, str], int] = {}
        self.origin_latency: dict[str, Histogram] = {}
        self.invocations: dict[tuple[str, str], int] = {}
        self.function_errors: dict[tuple[str, str, str], int] = {}
        self.throttles: dict[tuple[str, str], int] = {}
        self.cold_starts: dict[str, int] = {}
        self.durations: dict[str, Histogram] = {}
        self.init_durations: dict[str, Histogram] = {}

    def observe(self, ex: Exchange, key: tuple[int, str]) -> None:
        """Count the origin fetches and function runs of one answered exchange, and
        whether it was cut off; ``key`` is its (status, X-Cache) as counted."""
        if ex.aborted:
            self.cut_off[key] = self.cut_off.get(key, 0) + 1
        if ex.origin_fetches:
            self.origin_requests += 1
        for origin, _sent, started, ended, status, outcome in ex.origin_fetches:
            name = origin.name
            if isinstance(outcome, EdgeError):
                ekey = (name, outcome.detailed_result_type)
                self.origin_errors[ekey] = self.origin_errors.get(ekey, 0) + 1
            else:
                rkey = (name, status)
                self.origin_responses[rkey] = self.origin_responses.get(rkey, 0) + 1
            latency = self.origin_latency.get(name)
            if latency is None:
                latency = self.origin_latency[name] = Histogram()
            latency.observe(ended - started)
        for run in ex.hook_runs:
            function, result = run.function, run.result
            key2 = (function, str(run.event))  # the plain value, without Enum.value's calls
            if result.kind == "throttled":
                self.throttles[key2] = self.throttles.get(key2, 0) + 1
                continue
            self.invocations[key2] = self.invocations.get(key2, 0) + 1
            if isinstance(run.returned, EdgeError):
                fkey = (function, key2[1], run.outcome)
                self.function_errors[fkey] = self.function_errors.get(fkey, 0) + 1
            durations = self.durations.get(function)
            if durations is None:
                durations = self.durations[function] = Histogram()
            durations.observe(result.duration_ms / 1000)
            if result.init_duration_ms is not None:
                self.cold_starts[function] = self.cold_starts.get(function, 0) + 1
                inits = self.init_durations.get(function)
                if inits is None:
                    inits = self.init_durations[function] = Histogram()
                inits.observe(result.init_duration_ms / 1000)

    def origin_counts(self) -> dict[str, int]:
        """Viewer requests that went to an origin, and its answers and failures (attempts:
        an origin group's failover makes two for one request)."""
        return {
            "requests": self.origin_requests,
            "responses": sum(self.origin_responses.values()),
            "errors": sum(self.origin_errors.values()),
        }

    def by_result_type(self) -> dict[str, int]:
        """Requests per access-log result type (``Hit``, ``Miss``, ``Error``, ...)."""
        out: dict[str, int] = {}
        for key, count in self.requests.items():
            # X-Cache is "<result type> from cloudfront"; a cut-off response logs Error.
            result = key[1].partition(" ")[0]
            cut = self.cut_off.get(key, 0)
            if count > cut:
                out[result] = out.get(result, 0) + count - cut
            if cut:
                out["Error"] = out.get("Error", 0) + cut
        return out


class _Edge(Protocol):
    """What the collector reads of the running edge (an EdgeServer)."""

    metrics: EdgeMetrics
    functions: Invoker | None

    @property
    def store(self) -> CacheStore: ...

    @property
    def connection_count(self) -> int: ...


def _histogram(name: str, doc: str, label: str, series: dict[str, Histogram]) -> Metric:
    family = HistogramMetricFamily(name, doc, labels=[label])
    for value, histogram in sorted(series.items()):
        family.add_metric([value], histogram.cumulative(), sum_value=histogram.sum)
    return family


def _counter(name: str, doc: str, labels: list[str], series: dict[Any, int]) -> Metric:
    family = CounterMetricFamily(name, doc, labels=labels)
    for key, count in sorted(series.items()):
        values = key if isinstance(key, tuple) else (key,)
        family.add_metric([str(v) for v in values], count)
    return family


class EdgeCollector:
    """A prometheus_client collector over one running edge."""

    def __init__(self, edge: _Edge) -> None:
        self._edge = edge

    def collect(self) -> Iterator[Metric]:
        edge = self._edge
        m = edge.metrics
        yield _counter(
            "edgesim_requests",
            "Viewer requests answered, by status and X-Cache (status 0: the viewer left first).",
            ["status", "x_cache"],
            m.requests,
        )
        yield _counter(
            "edgesim_requests_cut_off",
            "Of those, responses cut off before their last byte (viewer or origin went away).",
            ["status", "x_cache"],
            m.cut_off,
        )
        yield _counter(
            "edgesim_origin_responses",
            "Origin fetches answered, by origin and status.",
            ["origin", "status"],
            m.origin_responses,
        )
        yield _counter(
            "edgesim_origin_errors",
            "Origin fetches without a usable answer, by origin and error.",
            ["origin", "error"],
            m.origin_errors,
        )
        yield _histogram(
            "edgesim_origin_latency_seconds",
            "Time from sending the request to the origin until its response head arrived.",
            "origin",
            m.origin_latency,
        )
        yield from self._cache()
        yield from self._functions()
        yield GaugeMetricFamily(
            "edgesim_viewer_connections", "Open viewer connections.", value=edge.connection_count
        )

    def _cache(self) -> Iterator[Metric]:
        stats = self._edge.store.stats()
        for name, key, doc in (
            ("entries", "entries", "Objects in the cache."),
            ("bytes", "bytes", "Bytes the cached objects take, heads and keys included."),
            ("max_bytes", "max_bytes", "The cache's size limit in bytes."),
        ):
            yield GaugeMetricFamily(f"edgesim_cache_{name}", doc, value=stats[key])
        for key, doc in (
            ("hits", "Requests answered from the cache (Hit and RefreshHit)."),
            ("misses", "Cacheable requests that went to the origin."),
            ("evictions", "Objects evicted to make room."),
            ("invalidated", "Objects removed by invalidations."),
        ):
            yield CounterMetricFamily(f"edgesim_cache_{key}", doc, value=stats[key])

    def _functions(self) -> Iterator[Metric]:
        m = self._edge.metrics
        yield _counter(
            "edgesim_function_invocations",
            "Function invocations (throttled calls are not invocations).",
            ["function", "event"],
            m.invocations,
        )
        yield _counter(
            "edgesim_function_errors",
            "Invocations that failed the request, by the error CloudFront answered with.",
            ["function", "event", "error"],
            m.function_errors,
        )
        yield _counter(
            "edgesim_function_throttles",
            "Calls throttled: every execution environment was busy.",
            ["function", "event"],
            m.throttles,
        )
        yield _counter(
            "edgesim_function_cold_starts",
            "Invocations that started a new execution environment.",
            ["function"],
            m.cold_starts,
        )
        yield _histogram(
            "edgesim_function_duration_seconds",
            "Function Duration, as in its REPORT line.",
            "function",
            m.durations,
        )
        yield _histogram(
            "edgesim_function_init_duration_seconds",
            "Init Duration of cold starts.",
            "function",
            m.init_durations,
        )
        environments = GaugeMetricFamily(
            "edgesim_function_environments",
            "Execution environments, by state (warm: idle and ready; busy: invoking).",
            labels=["function", "state"],
        )
        functions = self._edge.functions
        for name, stats in sorted((functions.stats() if functions is not None else {}).items()):
            environments.add_metric([name, "warm"], stats.get("warm", 0))
            environments.add_metric([name, "busy"], stats.get("busy", 0))
        yield environments
