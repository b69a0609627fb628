"""A latency histogram with log-linear buckets, in the manner of HdrHistogram.

Values are whole microseconds. Below ``2**SUB_BITS`` every value has a bucket
of its own; above, each power of two is cut into ``2**(SUB_BITS - 1)`` equal
buckets, so a bucket is never wider than 1/128 of the values it holds
(under 0.8% error at any latency, from 1 us to hours) and a run of any
length costs a few hundred counters. Buckets are kept sparse: a dict from
bucket index to count, cheap to merge across intervals and processes and to
send between them.

A percentile is the upper edge of the bucket that holds it (never an
under-statement), clamped to the largest value recorded, so ``max`` is exact.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

__all__ = ["PERCENTILES", "Histogram"]

SUB_BITS = 8
_HALF = 1 << (SUB_BITS - 1)
# The percentiles every report shows, as (label, fraction).
PERCENTILES = (("p50", 0.50), ("p90", 0.90), ("p99", 0.99), ("p99.9", 0.999))


def bucket_of(value: int) -> int:
    """The index of the bucket that holds ``value`` (microseconds, >= 0)."""
    shift = value.bit_length() - SUB_BITS
    if shift <= 0:
        return value
    return (shift + 1) * _HALF + (value >> shift) - _HALF


def bucket_bounds(index: int) -> tuple[int, int]:
    """The smallest and the largest value that bucket ``index`` holds."""
    if index < 2 * _HALF:
        return index, index
    shift = index // _HALF - 1
    low = (index - shift * _HALF) << shift
    return low, low + (1 << shift) - 1


class Histogram:
    """Counts of latencies (microseconds) in log-linear buckets, plus the exact min and max."""

    __slots__ = ("buckets", "count", "max", "min", "total")

    def __init__(self) -> None:
        self.buckets: dict[int, int] = {}
        self.count = 0
        self.total = 0  # sum of values, for the mean
        self.min = 0
        self.max = 0

    def record(self, value: int) -> None:
        value = max(value, 0)
        shift = value.bit_length() - SUB_BITS
        index = value if shift <= 0 else (shift + 1) * _HALF + (value >> shift) - _HALF
        buckets = self.buckets
        buckets[index] = buckets.get(index, 0) + 1
        if not self.count or value < self.min:
            self.min = value
        self.max = max(self.max, value)
        self.count += 1
        self.total += value

    def merge(self, other: Histogram) -> None:
        if not other.count:
            return
        buckets = self.buckets
        for index, n in other.buckets.items():
            buckets[index] = buckets.get(index, 0) + n
        self.min = other.min if not self.count else min(self.min, other.min)
        self.max = max(self.max, other.max)
        self.count += other.count
        self.total += other.total

    @classmethod
    def merged(cls, parts: Iterable[Histogram]) -> Histogram:
        out = cls()
        for part in parts:
            out.merge(part)
        return out

    def percentile(self, fraction: float) -> int:
        """The value at or below which ``fraction`` (0..1) of the recorded values lie."""
        if not self.count:
            return 0
        rank = max(1, math.ceil(fraction * self.count - 1e-9))  # the nearest-rank method
        seen = 0
        for index in sorted(self.buckets):
            seen += self.buckets[index]
            if seen >= rank:
                return min(bucket_bounds(index)[1], self.max)
        return self.max

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0

    def summary_ms(self) -> dict[str, float]:
        """p50, p90, p99, p99.9, max, min and mean, in milliseconds."""
        out = {label: self.percentile(q) / 1000 for label, q in PERCENTILES}
        out.update(max=self.max / 1000, min=self.min / 1000, mean=self.mean / 1000)
        return out

    def ranges(self) -> Iterator[tuple[int, int, int]]:
        """(lowest value, highest value, count) of every bucket in use, in order."""
        for index in sorted(self.buckets):
            low, high = bucket_bounds(index)
            yield low, high, self.buckets[index]

    # -- between processes and into JSON -----------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "buckets": self.buckets,
            "count": self.count,
            "total": self.total,
            "min": self.min,
            "max": self.max,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Histogram:
        out = cls()
        out.buckets = {int(k): int(v) for k, v in data["buckets"].items()}
        out.count, out.total = int(data["count"]), int(data["total"])
        out.min, out.max = int(data["min"]), int(data["max"])
        return out
