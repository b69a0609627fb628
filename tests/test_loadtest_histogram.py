"""The load test's latency histogram: log-linear buckets, nearest-rank percentiles."""

from __future__ import annotations

import random

from edgesim.loadtest.histogram import Histogram, bucket_bounds, bucket_of


def test_buckets_are_contiguous_and_never_wider_than_1_in_128():
    previous_high = -1
    for index in range(bucket_of(3_600_000_000) + 1):  # up to an hour in microseconds
        low, high = bucket_bounds(index)
        assert low == previous_high + 1
        assert bucket_of(low) == index and bucket_of(high) == index
        assert (high - low + 1) <= max(1, low / 128)
        previous_high = high


def test_percentiles_of_a_known_sequence():
    hist = Histogram()
    for value in range(1, 10_001):  # 1 us .. 10 ms, once each
        hist.record(value)
    assert hist.count == 10_000
    assert hist.min == 1 and hist.max == 10_000
    for fraction, exact in ((0.5, 5_000), (0.9, 9_000), (0.99, 9_900), (0.999, 9_990)):
        value = hist.percentile(fraction)
        assert exact <= value <= exact * 1.008, (fraction, value)  # at or above, within a bucket
    assert hist.percentile(1.0) == 10_000
    assert abs(hist.mean - 5000.5) < 1e-9


def test_small_values_are_exact_and_the_max_is_never_overstated():
    hist = Histogram()
    for value in (3, 3, 7, 200, 255):
        hist.record(value)
    assert hist.percentile(0.4) == 3
    assert hist.percentile(0.6) == 7
    assert hist.percentile(1.0) == 255
    hist.record(1_000_003)
    assert hist.max == 1_000_003 and hist.percentile(1.0) == 1_000_003


def test_merge_equals_recording_everything_in_one():
    rng = random.Random(5)
    values = [int(rng.lognormvariate(7, 1.5)) for _ in range(5000)]
    whole, left, right = Histogram(), Histogram(), Histogram()
    for i, value in enumerate(values):
        whole.record(value)
        (left if i % 3 else right).record(value)
    merged = Histogram.merged([left, Histogram(), right])
    assert merged.buckets == whole.buckets
    assert (merged.count, merged.min, merged.max, merged.total) == (
        whole.count, whole.min, whole.max, whole.total,
    )  # fmt: skip
    assert Histogram.from_dict(merged.to_dict()).summary_ms() == whole.summary_ms()


def test_an_empty_histogram_reports_zeros():
    hist = Histogram()
    assert hist.percentile(0.99) == 0
    assert hist.summary_ms()["max"] == 0
    assert list(hist.ranges()) == []
