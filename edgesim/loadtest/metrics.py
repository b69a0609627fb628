"""What a stretch of requests got: counts by status, by X-Cache result, errors, latency.

A ``Tally`` is kept per second of the run in each generator process, sent
to the coordinating process as it closes, and merged there into the
timeline and the totals. Definitions used throughout the report:

* **requests**: every attempt, answered or failed.
* **X-Cache result**: the first word of ``X-Cache`` (``Hit``, ``RefreshHit``,
  ``Miss``, ``Error``, ``LambdaGeneratedResponse``, ...); ``none`` when the
  response had no X-Cache (not a CloudFront-like server).
* **hit ratio**: (Hit + RefreshHit) / (Hit + RefreshHit + Miss). CloudFront's
  CacheHitRate metric counts only cacheable requests ("POST and PUT
  requests, and errors, are not considered cacheable": viewing-cloudfront-
  metrics.html, additional metrics), so errors and generated responses are
  left out of it.
* **origin fetches**: Miss + RefreshHit (a RefreshHit asked the origin to
  revalidate); **origin offload** is the share of answered requests that
  did not contact the origin this way.
"""

from __future__ import annotations

from typing import Any

from edgesim.loadtest.histogram import Histogram

__all__ = ["HIT_RESULTS", "ORIGIN_RESULTS", "Tally", "cache_result"]

HIT_RESULTS = ("Hit", "RefreshHit")
ORIGIN_RESULTS = ("Miss", "RefreshHit")
NO_X_CACHE = "none"
_RESULTS: dict[str | None, str] = {None: NO_X_CACHE}


def cache_result(x_cache: str | None) -> str:
    """``Hit from cloudfront`` -> ``Hit`` (remembered: a run sees few distinct values)."""
    result = _RESULTS.get(x_cache)
    if result is None:
        assert x_cache is not None
        result = x_cache.split(None, 1)[0] if x_cache.strip() else NO_X_CACHE
        if len(_RESULTS) < 1000:
            _RESULTS[x_cache] = result
    return result


class Tally:
    """Counters and a latency histogram for a stretch of requests."""

    __slots__ = ("bytes", "errors", "latency", "requests", "statuses", "x_cache")

    def __init__(self) -> None:
        self.requests = 0
        self.bytes = 0  # response bytes received, heads and bodies
        self.statuses: dict[int, int] = {}
        self.x_cache: dict[str, int] = {}
        self.errors: dict[str, int] = {}  # attempts that got no response, by kind
        self.latency = Histogram()  # answered requests only, microseconds

    def answered(self, status: int, x_cache: str | None, size: int, latency_us: int) -> None:
        self.requests += 1
        self.bytes += size
        statuses = self.statuses
        statuses[status] = statuses.get(status, 0) + 1
        result = cache_result(x_cache)
        self.x_cache[result] = self.x_cache.get(result, 0) + 1
        self.latency.record(latency_us)

    def failed(self, kind: str) -> None:
        self.requests += 1
        self.errors[kind] = self.errors.get(kind, 0) + 1

    def merge(self, other: Tally) -> None:
        self.requests += other.requests
        self.bytes += other.bytes
        for status, n in other.statuses.items():
            self.statuses[status] = self.statuses.get(status, 0) + n
        for mine, theirs in ((self.x_cache, other.x_cache), (self.errors, other.errors)):
            for key, n in theirs.items():
                mine[key] = mine.get(key, 0) + n
        self.latency.merge(other.latency)

    @classmethod
    def merged(cls, parts: list[Tally]) -> Tally:
        out = cls()
        for part in parts:
            out.merge(part)
        return out

    # -- derived -----------------------------------------------------------

    @property
    def answered_count(self) -> int:
        return self.latency.count

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def server_errors(self) -> int:
        """Responses with a 5xx status."""
        return sum(n for status, n in self.statuses.items() if status >= 500)

    @property
    def hits(self) -> int:
        return sum(self.x_cache.get(r, 0) for r in HIT_RESULTS)

    @property
    def origin_fetches(self) -> int:
        return sum(self.x_cache.get(r, 0) for r in ORIGIN_RESULTS)

    @property
    def hit_ratio(self) -> float | None:
        cacheable = self.hits + self.x_cache.get("Miss", 0)
        return self.hits / cacheable if cacheable else None

    @property
    def origin_offload(self) -> float | None:
        answered = self.answered_count
        if not answered or self.x_cache.get(NO_X_CACHE, 0) == answered:
            return None  # nothing answered, or no X-Cache to tell
        return 1 - self.origin_fetches / answered

    # -- between processes -------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "bytes": self.bytes,
            "statuses": self.statuses,
            "x_cache": self.x_cache,
            "errors": self.errors,
            "latency": self.latency.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Tally:
        out = cls()
        out.requests, out.bytes = int(data["requests"]), int(data["bytes"])
        out.statuses = {int(k): int(v) for k, v in data["statuses"].items()}
        out.x_cache = {str(k): int(v) for k, v in data["x_cache"].items()}
        out.errors = {str(k): int(v) for k, v in data["errors"].items()}
        out.latency = Histogram.from_dict(data["latency"])
        return out
