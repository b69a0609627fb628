"""What a run's function traffic costs, from the dated price table (semantics doc 9.4)."""

from __future__ import annotations

import pytest

from edgesim.loadtest.cost import PRICES, FunctionUsage, billed_ms, estimate


def test_lambda_edge_bills_whole_milliseconds_rounded_up():
    # 1 ms steps since 2021-04-01; a 0.2 ms invocation is billed 1 ms.
    assert billed_ms([0.2, 1.0, 1.01, 15.74]) == 1 + 1 + 2 + 16


def test_lambda_edge_requests_plus_gb_seconds():
    usage = [FunctionUsage("auth", "python3.12", 128, invocations=1_000_000, billed_ms=2_000_000)]
    cost = estimate(usage, requests=1_000_000, elapsed_s=100.0)
    row = cost["functions"][0]
    assert row["pricing"] == "lambda@edge"
    # 2,000,000 ms at 128 MB = 2,000 s * 0.125 GB = 250 GB-s.
    assert row["gb_seconds"] == pytest.approx(250.0)
    assert row["request_cost_usd"] == pytest.approx(0.60)
    assert row["duration_cost_usd"] == pytest.approx(250 * 0.00005001)
    assert cost["per_million_requests_usd"] == pytest.approx(0.60 + 250 * 0.00005001)
    # 10,000 req/s for a 30-day month.
    month = (0.60 + 250 * 0.00005001) * 10_000 * 30 * 86_400 / 1e6
    assert cost["per_month_usd"] == pytest.approx(month)
    assert cost["prices"]["as_of"] == PRICES.as_of


def test_cloudfront_functions_are_billed_per_invocation_only():
    usage = [
        FunctionUsage("rewrite", "cloudfront-js-2.0", 2, invocations=500_000, billed_ms=9e9),
        FunctionUsage("headers", "python3.12", 128, invocations=0, billed_ms=0),
    ]
    cost = estimate(usage, requests=1_000_000, elapsed_s=10.0)
    cff = cost["functions"][0]
    assert cff["pricing"] == "cloudfront-functions"
    assert cff["duration_cost_usd"] == 0 and cff["gb_seconds"] == 0
    assert cff["cost_usd"] == pytest.approx(0.05)
    assert cost["per_million_requests_usd"] == pytest.approx(0.05)


def test_no_requests_costs_nothing_and_divides_by_nothing():
    cost = estimate([], requests=0, elapsed_s=0.0)
    assert cost["run_usd"] == 0 and cost["per_million_requests_usd"] == 0
    assert cost["per_month_usd"] == 0
