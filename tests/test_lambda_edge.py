"""Lambda@Edge through the edge: events, results, trigger rules and failures.

Real handlers (tests/fixtures/edge/hooks.py) run in real worker processes
behind a real edge and origin; every failure is followed by a request that
proves the edge still serves.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from edgesim.config.schema import (
    ALL_METHODS,
    CachePolicy,
    FunctionAssociation,
    FunctionConfig,
    Selection,
)
from tests.conftest import EdgeFactory, RecordingOrigin, behavior

HANDLERS = Path(__file__).parent / "fixtures" / "edge"


def fn(name: str, **limits: float) -> FunctionConfig:
    return FunctionConfig(name, "python3.11", HANDLERS, f"hooks.{name}", **limits)  # type: ignore[arg-type]


def hooked(path: str = "*", **events: str | FunctionAssociation) -> tuple:
    """A behavior with ``event_name=function`` associations (underscores for hyphens)."""
    associations = tuple(
        (event.replace("_", "-"), FunctionAssociation(a) if isinstance(a, str) else a)
        for event, a in events.items()
    )
    return behavior(path, functions=associations)


@pytest.fixture
async def ok_route(origin: RecordingOrigin) -> RecordingOrigin:
    origin.reply("/ok", "fine", Cache_Control="max-age=60")
    return origin


async def still_serves(client: httpx.AsyncClient, base: str) -> None:
    response = await client.get(f"{base}/plain/ok")
    assert response.status_code == 200


async def test_viewer_request_changes_request_and_cache_key(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient
) -> None:
    origin.reply("/new", "new page", Cache_Control="max-age=60")
    edge = await make_edge(
        default=hooked(viewer_request="add_header_and_rewrite"),
        functions={"add_header_and_rewrite": fn("add_header_and_rewrite")},
    )
    first = await client.get(f"{edge.url}/old")
    second = await client.get(f"{edge.url}/old")
    assert first.text == second.text == "new page"
    assert first.headers["x-cache"] == "Miss from cloudfront"
    assert second.headers["x-cache"] == "Hit from cloudfront"
    assert origin.seen[0].path_qs == "/new"
    assert origin.hits("/new") == 1


async def test_viewer_request_generated_response_is_not_cached_and_skips_the_rest(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient
) -> None:
    edge = await make_edge(
        default=hooked(viewer_request="redirect", viewer_response="security_headers"),
        functions={"redirect": fn("redirect"), "security_headers": fn("security_headers")},
    )
    for _ in range(2):
        response = await client.get(f"{edge.url}/anything")
        assert response.status_code == 302
        assert response.headers["location"] == "https://example.test/moved"
        assert response.headers["x-cache"] == "LambdaGeneratedResponse from cloudfront"
        assert response.headers["server"] == "CloudFront"
        assert "strict-transport-security" not in response.headers
    assert origin.seen == []


async def test_event_shape_and_context_as_documented(
    make_edge: EdgeFactory, client: httpx.AsyncClient
) -> None:
    edge = await make_edge(
        default=hooked(viewer_request="echo_event"),
        functions={"echo_event": fn("echo_event", memory=128)},
    )
    response = await client.get(
        f"{edge.url}/app/index.html?lang=en&v=2",
        headers={"Cookie": "sid=abc123", "X-Amz-Cf-Id": "forged", "User-Agent": "curl/8"},
    )
    seen = response.json()
    cf = seen["event"]["Records"][0]["cf"]
    assert cf["config"] == {
        "distributionDomainName": edge.config.distribution.domain,
        "distributionId": edge.config.distribution.id,
        "eventType": "viewer-request",
        "requestId": response.headers["x-amz-cf-id"],
    }
    request = cf["request"]
    assert request["clientIp"] == "127.0.0.1"
    assert request["method"] == "GET"
    assert request["uri"] == "/app/index.html"
    assert request["querystring"] == "lang=en&v=2"
    assert request["headers"]["cookie"] == [{"key": "Cookie", "value": "sid=abc123"}]
    assert request["headers"]["user-agent"] == [{"key": "User-Agent", "value": "curl/8"}]
    assert "x-amz-cf-id" not in request["headers"]  # disallowed: never shown to functions
    assert "origin" not in request and "body" not in request
    assert seen["function_name"] == "us-east-1.echo_event"
    assert seen["memory_limit_in_mb"] == "128"
    assert 0 < seen["remaining_ms"] <= 3000


async def test_origin_request_generated_response_is_cached(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient
) -> None:
    edge = await make_edge(
        default=hooked(origin_request="generate_cacheable"),
        functions={"generate_cacheable": fn("generate_cacheable")},
    )
    first = await client.get(f"{edge.url}/gen")
    second = await client.get(f"{edge.url}/gen")
    assert first.text == second.text == "generated at origin-request"
    assert first.headers["x-cache"] == "LambdaGeneratedResponse from cloudfront"
    assert second.headers["x-cache"] == "Hit from cloudfront"
    assert second.headers["x-invocation"] == "1"  # the hit did not run the function
    assert origin.seen == []


async def test_origin_facing_functions_run_only_when_the_origin_is_contacted(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient
) -> None:
    origin.reply("/page", "page", Cache_Control="max-age=60")
    origin.reply("/missing", "gone", status=404)
    edge = await make_edge(
        default=hooked(origin_request="tag_origin_request", origin_response="fix_origin_response"),
        functions={
            "tag_origin_request": fn("tag_origin_request"),
            "fix_origin_response": fn("fix_origin_response"),
        },
    )
    first = await client.get(f"{edge.url}/page")
    hit = await client.get(f"{edge.url}/page")
    assert origin.seen[0].headers["x-origin-request"] == "seen"
    assert first.headers["x-origin-response"] == "seen"
    assert hit.headers["x-origin-response"] == "seen"  # stored after origin-response
    assert hit.headers["x-cache"] == "Hit from cloudfront"
    assert origin.hits("/page") == 1
    stats = (await client.get(f"{edge.admin_url}/stats")).json()["functions"]
    assert stats["tag_origin_request"]["invocations"] == 1
    assert stats["fix_origin_response"]["invocations"] == 1
    # Origin-response runs for 4xx too, and may replace status and body.
    fixed = await client.get(f"{edge.url}/missing")
    assert fixed.status_code == 200
    assert fixed.text == "replaced missing page"


async def test_viewer_response_runs_for_hits_and_misses_but_not_errors(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient
) -> None:
    origin.reply("/page", "page", Cache_Control="max-age=60")
    origin.reply("/error", "broken", status=500)
    edge = await make_edge(
        default=hooked(viewer_response="security_headers"),
        functions={"security_headers": fn("security_headers")},
    )
    miss = await client.get(f"{edge.url}/page")
    hit = await client.get(f"{edge.url}/page")
    error = await client.get(f"{edge.url}/error")
    assert miss.headers["strict-transport-security"] == "max-age=63072000"
    assert hit.headers["strict-transport-security"] == "max-age=63072000"
    assert miss.headers["x-seen-age"] == "none"
    assert hit.headers["x-seen-age"] == hit.headers["age"]
    assert hit.headers["x-cache"] == "Hit from cloudfront"
    assert error.status_code == 500
    assert "strict-transport-security" not in error.headers


async def test_include_body_exposes_the_request_body(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient
) -> None:
    origin.reply("/form", "stored")
    edge = await make_edge(
        default=behavior(
            allowed_methods=ALL_METHODS,
            functions=(("origin-request", FunctionAssociation("read_body", include_body=True)),),
        ),
        functions={"read_body": fn("read_body")},
    )
    big = b"y" * (1536 * 1024)
    small = await client.post(f"{edge.url}/form", content=b"x" * 1000)
    large = await client.post(f"{edge.url}/form", content=big)
    assert small.status_code == large.status_code == 200
    assert origin.seen[0].headers["x-body-bytes"] == "1000"
    assert origin.seen[0].headers["x-body-truncated"] == "false"
    # Origin-request sees at most 1 MB, flagged as truncated...
    assert origin.seen[1].headers["x-body-bytes"] == str(1024 * 1024)
    assert origin.seen[1].headers["x-body-truncated"] == "true"
    # ...while the origin still gets every byte.
    assert origin.seen[1].body == big


async def test_headers_added_at_viewer_request_reach_the_origin_only_if_forwarded(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient
) -> None:
    origin.reply("/new", "new page")
    policy = CachePolicy(headers=Selection("allow", frozenset({"x-from-viewer-request"})))
    edge = await make_edge(
        behaviors=(
            behavior(
                "/keyed/*",
                cache=policy,
                functions=(("viewer-request", FunctionAssociation("add_header_and_rewrite")),),
            ),
        ),
        default=hooked(viewer_request="add_header_and_rewrite"),
        functions={"add_header_and_rewrite": fn("add_header_and_rewrite")},
    )
    origin.reply("/keyed/x", "keyed")
    await client.get(f"{edge.url}/old")
    await client.get(f"{edge.url}/keyed/x")
    assert "x-from-viewer-request" not in origin.seen[0].headers
    assert origin.seen[1].headers["x-from-viewer-request"] == "1"


@pytest.mark.parametrize(
    ("handler", "limits", "status", "x_cache"),
    [
        ("raise_error", {}, 503, "LambdaExecutionError from cloudfront"),
        ("sleep_past_timeout", {"timeout": 1}, 503, "LambdaExecutionError from cloudfront"),
        ("exit_process", {}, 503, "LambdaExecutionError from cloudfront"),
        ("hog_memory", {"memory": 128}, 503, "LambdaExecutionError from cloudfront"),
        ("return_garbage", {}, 502, "LambdaValidationError from cloudfront"),
        ("change_host", {}, 502, "LambdaValidationError from cloudfront"),
    ],
)
async def test_function_failures_get_cloudfront_errors_and_the_edge_keeps_serving(
    ok_route: RecordingOrigin,
    make_edge: EdgeFactory,
    client: httpx.AsyncClient,
    handler: str,
    limits: dict[str, float],
    status: int,
    x_cache: str,
) -> None:
    edge = await make_edge(
        behaviors=(behavior("/plain/*"),),
        default=hooked(viewer_request=handler),
        functions={handler: fn(handler, **limits)},
    )
    ok_route.reply("/plain/ok", "fine")
    for _ in range(2):  # the broken environment is replaced, and fails the same way
        response = await client.get(f"{edge.url}/ok")
        assert response.status_code == status
        assert response.headers["x-cache"] == x_cache
        assert "Traceback" not in response.text
        assert response.headers["x-amz-cf-id"] in response.text
    await still_serves(client, edge.url)


async def test_throttled_function_is_503_limit_exceeded(
    ok_route: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient
) -> None:
    edge = await make_edge(
        default=hooked(viewer_request="slow_pass"),
        functions={"slow_pass": fn("slow_pass", concurrency=1)},
    )
    responses = await asyncio.gather(*(client.get(f"{edge.url}/ok") for _ in range(3)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses[0] == 200
    throttled = [r for r in responses if r.status_code == 503]
    assert throttled
    assert all(r.headers["x-cache"] == "LambdaLimitExceeded from cloudfront" for r in throttled)
    assert "throttled" in throttled[0].text
    assert (await client.get(f"{edge.url}/ok")).status_code == 200


async def test_stats_report_cold_starts(
    ok_route: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient
) -> None:
    edge = await make_edge(
        default=hooked(viewer_request="add_header_and_rewrite"),
        functions={"add_header_and_rewrite": fn("add_header_and_rewrite")},
    )
    for _ in range(3):
        await client.get(f"{edge.url}/ok")
    stats = (await client.get(f"{edge.admin_url}/stats")).json()["functions"]
    numbers = stats["add_header_and_rewrite"]
    assert numbers["invocations"] == 3
    assert numbers["cold_starts"] == 1
    assert json.dumps(numbers)  # plain JSON for the admin API


async def test_a_viewer_that_leaves_mid_function_does_not_cost_the_environment(
    ok_route: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient
) -> None:
    """The viewer hangs up while its viewer-request function runs: the function
    runs to its end and its warm environment serves the next request."""
    edge = await make_edge(
        default=hooked(viewer_request="slow_pass"),
        functions={"slow_pass": fn("slow_pass")},
    )

    async def numbers() -> dict[str, int]:
        stats = (await client.get(f"{edge.admin_url}/stats")).json()["functions"]
        return stats["slow_pass"]  # type: ignore[no-any-return]

    host, port = edge.url.removeprefix("http://").split(":")
    _, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"GET /ok HTTP/1.1\r\nHost: edge.test\r\n\r\n")
    await writer.drain()
    for _ in range(500):
        if (await numbers())["busy"] == 1:
            break
        await asyncio.sleep(0.01)
    writer.close()  # gone before the function answers
    await writer.wait_closed()
    for _ in range(500):
        if (await numbers())["invocations"] == 1:
            break
        await asyncio.sleep(0.01)
    answered = await client.get(f"{edge.url}/ok")
    assert answered.status_code == 200
    after = await numbers()
    assert after["invocations"] == 2
    assert after["cold_starts"] == 1
    assert after["errors"] == 0
