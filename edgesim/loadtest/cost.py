"""What a load test's function traffic would cost on AWS, from one dated price table.

Billing rules (cloudfront-semantics.md section 9.4):

* Lambda@Edge: a charge per request (invocation) plus one per GB-second of
  duration, billed in 1 ms steps rounded up (since 2021-04-01, AWS what's-new
  "Lambda@Edge 1 ms billing granularity"); GB is the configured memory.
  There is no free tier. Throttled invocations never ran and are not billed.
* CloudFront Functions: a charge per invocation only, whatever the duration.

The estimate applies list prices only: no free tier (CloudFront Functions
has 2M invocations a month free), no savings plans. A month is 30 days.
CloudFront's own request and data-transfer charges are not included.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["PRICES", "FunctionUsage", "PriceTable", "estimate", "pricing_of"]

SECONDS_PER_MONTH = 30 * 86_400


@dataclass(frozen=True, slots=True)
class PriceTable:
    as_of: str  # when these prices were last checked
    source: str
    lambda_edge_per_million_requests: float  # USD
    lambda_edge_per_gb_second: float  # USD
    cloudfront_functions_per_million: float  # USD


PRICES = PriceTable(
    as_of="2026-12-01",
    source=(
        "AWS list prices, us-east-1, as collected in cloudfront-semantics.md section 9.4 "
        "(Lambda@Edge and CloudFront Functions pricing)"
    ),
    lambda_edge_per_million_requests=0.60,
    lambda_edge_per_gb_second=0.00005001,
    cloudfront_functions_per_million=0.10,
)


@dataclass(frozen=True, slots=True)
class FunctionUsage:
    """What one function did during the measured part of a run."""

    name: str
    runtime: str
    memory_mb: int
    invocations: int  # ran (errors included), throttles excluded
    billed_ms: float  # the sum of billed durations

    @property
    def kind(self) -> str:
        return pricing_of(self.runtime)


def pricing_of(runtime: str) -> str:
    """``cloudfront-functions`` for a cloudfront-js runtime, else ``lambda@edge``."""
    return "cloudfront-functions" if runtime.startswith("cloudfront-js") else "lambda@edge"


def billed_ms(durations_ms: list[float]) -> float:
    """Lambda@Edge's billed duration of each invocation, summed: whole ms, rounded up."""
    return float(sum(max(1, math.ceil(d)) for d in durations_ms))


def estimate(
    usage: list[FunctionUsage], requests: int, elapsed_s: float, prices: PriceTable = PRICES
) -> dict[str, Any]:
    """The cost of the run, per million viewer requests, and per month at the run's rate."""
    rows = []
    total = 0.0
    for u in usage:
        if u.kind == "cloudfront-functions":
            request_cost = u.invocations / 1e6 * prices.cloudfront_functions_per_million
            gb_seconds, duration_cost = 0.0, 0.0
        else:
            request_cost = u.invocations / 1e6 * prices.lambda_edge_per_million_requests
            gb_seconds = u.billed_ms / 1000 * u.memory_mb / 1024
            duration_cost = gb_seconds * prices.lambda_edge_per_gb_second
        cost = request_cost + duration_cost
        total += cost
        rows.append(
            {
                "function": u.name,
                "pricing": u.kind,
                "runtime": u.runtime,
                "memory_mb": u.memory_mb,
                "invocations": u.invocations,
                "billed_ms": u.billed_ms,
                "gb_seconds": gb_seconds,
                "request_cost_usd": request_cost,
                "duration_cost_usd": duration_cost,
                "cost_usd": cost,
            }
        )
    per_request = total / requests if requests else 0.0
    rate = requests / elapsed_s if elapsed_s > 0 else 0.0
    return {
        "prices": {
            "as_of": prices.as_of,
            "source": prices.source,
            "lambda_edge_per_million_requests_usd": prices.lambda_edge_per_million_requests,
            "lambda_edge_per_gb_second_usd": prices.lambda_edge_per_gb_second,
            "cloudfront_functions_per_million_usd": prices.cloudfront_functions_per_million,
            "notes": "list prices; no free tier; 30-day month; CloudFront request and "
            "data-transfer charges not included",
        },
        "functions": rows,
        "run_usd": total,
        "per_million_requests_usd": per_request * 1e6,
        "per_month_usd": per_request * rate * SECONDS_PER_MONTH,
        "requests_per_month": rate * SECONDS_PER_MONTH,
    }
