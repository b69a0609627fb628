"""GET /metrics through a real edge, read back with Prometheus's own text parser."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from edgesim.config.schema import FunctionAssociation, FunctionConfig
from edgesim.service import Edge
from tests.conftest import EdgeFactory, RecordingOrigin, behavior

HANDLERS = Path(__file__).parent / "fixtures" / "inspector"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def _scrape(client: httpx.AsyncClient, edge: Edge) -> Samples:
    response = await client.get(f"{edge.admin_url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


async def test_requests_origin_and_cache_metrics(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient
) -> None:
    origin.reply("/a", "x" * 100, Cache_Control="max-age=60")
    edge = await make_edge()
    for path in ("/a", "/a", "/a", "/missing"):
        await client.get(f"{edge.url}{path}")
    samples = await _scrape(client, edge)
    requests = "edgesim_requests_total"
    assert _value(samples, requests, status="200", x_cache="Miss from cloudfront") == 1
    assert _value(samples, requests, status="200", x_cache="Hit from cloudfront") == 2
    assert _value(samples, requests, status="404", x_cache="Error from cloudfront") == 1
    assert _value(samples, "edgesim_origin_responses_total", origin="app", status="200") == 1
    assert _value(samples, "edgesim_origin_responses_total", origin="app", status="404") == 1
    latency = "edgesim_origin_latency_seconds"
    assert _value(samples, f"{latency}_count", origin="app") == 2
    assert _value(samples, f"{latency}_bucket", origin="app", le="+Inf") == 2
    assert _value(samples, f"{latency}_sum", origin="app") > 0
    buckets = sorted(
        (float(dict(labels)["le"]), value)
        for (name, labels), value in samples.items()
        if name == f"{latency}_bucket"
    )
    assert [v for _, v in buckets] == sorted(v for _, v in buckets)  # cumulative
    stats = (await client.get(f"{edge.admin_url}/stats")).json()
    assert _value(samples, "edgesim_cache_entries") == stats["cache"]["entries"] == 2
    assert _value(samples, "edgesim_cache_bytes") == stats["cache"]["bytes"] > 100
    assert _value(samples, "edgesim_cache_hits_total") == 2
    assert _value(samples, "edgesim_cache_misses_total") == 2
    assert stats["requests"] == {"Miss": 1, "Hit": 2, "Error": 1}
    assert _value(samples, "edgesim_viewer_connections") >= 1


async def test_function_metrics_count_invocations_errors_throttles_and_cold_starts(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient
) -> None:
    origin.reply("/ok", "ok")
    edge = await make_edge(
        behaviors=(
            behavior("/fail", functions=(("viewer-request", FunctionAssociation("fail")),)),
            behavior("/slow", functions=(("viewer-request", FunctionAssociation("slow")),)),
        ),
        default=behavior(functions=(("viewer-response", FunctionAssociation("stamp_response")),)),
        functions={
            "fail": FunctionConfig("fail", "python3.11", HANDLERS, "handlers.fail"),
            "slow": FunctionConfig("slow", "python3.11", HANDLERS, "handlers.slow", concurrency=1),
            "stamp_response": FunctionConfig(
                "stamp_response", "python3.11", HANDLERS, "handlers.stamp_response"
            ),
        },
    )
    for _ in range(3):
        assert (await client.get(f"{edge.url}/ok")).headers["x-stamped"] == "1"
    assert (await client.get(f"{edge.url}/fail")).status_code == 503
    first = asyncio.create_task(client.get(f"{edge.url}/slow"))
    assert edge.functions is not None
    for _ in range(500):
        if edge.functions.stats()["slow"]["busy"]:
            break
        await asyncio.sleep(0.01)
    throttled = await client.get(f"{edge.url}/slow")
    assert throttled.headers["x-cache"] == "LambdaLimitExceeded from cloudfront"
    assert (await first).status_code == 404  # the origin has no /slow; the function ran

    samples = await _scrape(client, edge)
    invocations = "edgesim_function_invocations_total"
    assert _value(samples, invocations, function="stamp_response", event="viewer-response") == 3
    assert _value(samples, invocations, function="fail", event="viewer-request") == 1
    assert _value(samples, invocations, function="slow", event="viewer-request") == 1
    assert (
        _value(
            samples,
            "edgesim_function_errors_total",
            function="fail",
            event="viewer-request",
            error="LambdaExecutionError",
        )
        == 1
    )
    assert (
        _value(samples, "edgesim_function_throttles_total", function="slow", event="viewer-request")
        == 1
    )
    assert _value(samples, "edgesim_function_cold_starts_total", function="stamp_response") == 1
    assert _value(samples, "edgesim_function_cold_starts_total", function="slow") == 1
    duration = "edgesim_function_duration_seconds"
    assert _value(samples, f"{duration}_count", function="stamp_response") == 3
    assert _value(samples, f"{duration}_sum", function="slow") >= 0.5
    assert _value(samples, f"{duration}_bucket", function="slow", le="0.25") == 0
    assert _value(samples, f"{duration}_bucket", function="slow", le="+Inf") == 1
    assert _value(samples, "edgesim_function_init_duration_seconds_count", function="fail") == 1
    assert (
        _value(samples, "edgesim_function_environments", function="stamp_response", state="warm")
        == 1
    )
    assert _value(samples, "edgesim_function_environments", function="slow", state="busy") == 0
    requests = "edgesim_requests_total"
    assert (
        _value(samples, requests, status="503", x_cache="LambdaLimitExceeded from cloudfront") == 1
    )
    assert (
        _value(samples, requests, status="503", x_cache="LambdaExecutionError from cloudfront") == 1
    )


async def test_openmetrics_is_served_when_asked_for(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient
) -> None:
    edge = await make_edge()
    await client.get(f"{edge.url}/x")
    response = await client.get(
        f"{edge.admin_url}/metrics",
        headers={"Accept": "application/openmetrics-text; version=1.0.0"},
    )
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")
    assert (
        'edgesim_requests_total{status="404",x_cache="Error from cloudfront"} 1.0' in response.text
    )
