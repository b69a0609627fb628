"""Request traces through a real edge: GET /requests and GET /requests/{id} on the admin API.

Every test sends real requests through the edge (real origin, real function
workers) and reads what the trace says about them from the admin listener.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web

from edgesim.config.schema import (
    ALL_METHODS,
    Behavior,
    CustomOrigin,
    FunctionAssociation,
    FunctionConfig,
    InspectorSettings,
    OriginGroup,
)
from tests.conftest import EdgeFactory, ManualClock, RecordingOrigin, behavior, raw_request

HANDLERS = Path(__file__).parent / "fixtures" / "inspector"


def fn(name: str) -> FunctionConfig:
    return FunctionConfig(name, "python3.11", HANDLERS, f"handlers.{name}")


def hooked(path: str = "*", **events: str) -> Behavior:
    return behavior(
        path,
        functions=tuple((e.replace("_", "-"), FunctionAssociation(f)) for e, f in events.items()),
    )


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _trace(client: httpx.AsyncClient, admin: str, request_id: str) -> dict[str, Any]:
    response = await client.get(f"{admin}/requests/{request_id}")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def _stage(trace: dict[str, Any], stage: str) -> dict[str, Any]:
    steps = [s for s in trace["trip"] if s["stage"] == stage]
    assert len(steps) == 1, (stage, trace["trip"])
    return steps[0]


async def test_a_miss_then_a_hit_show_the_cache_decision_and_the_origin_fetch(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient
) -> None:
    origin.reply("/page", "hello", Cache_Control="max-age=60", Content_Type="text/plain")
    edge = await make_edge()
    miss = await client.get(f"{edge.url}/page?x=1", headers={"User-Agent": "trace-test"})
    hit = await client.get(f"{edge.url}/page?x=1")

    listed = (await client.get(f"{edge.admin_url}/requests")).json()["requests"]
    assert [r["id"] for r in listed] == [hit.headers["x-amz-cf-id"], miss.headers["x-amz-cf-id"]]
    assert [(r["method"], r["url"], r["status"], r["x_cache"]) for r in listed] == [
        ("GET", "/page?x=1", 200, "Hit from cloudfront"),
        ("GET", "/page?x=1", 200, "Miss from cloudfront"),
    ]

    first = await _trace(client, edge.admin_url, miss.headers["x-amz-cf-id"])
    assert [s["stage"] for s in first["trip"]] == ["behavior", "cache", "origin"]
    cache = _stage(first, "cache")
    assert cache["decision"] == "Miss"
    assert cache["key_parts"] == [["path", "/page"]]  # the default policy keys on the path only
    assert cache["ttl"] == 60
    assert cache["stored"] is True
    assert "max-age=60" in cache["why"]
    fetch = _stage(first, "origin")
    assert fetch["status"] == 200
    assert fetch["target"] == "/page"
    assert fetch["origin"].startswith("app (http://127.0.0.1:")
    sent = dict((n.lower(), v) for n, v in fetch["request_headers"])
    assert sent["x-amz-cf-id"] == first["id"]
    assert first["request"]["headers"][0] == ["Host", edge.url.removeprefix("http://")]
    assert ["User-Agent", "trace-test"] in first["request"]["headers"]
    assert ["X-Cache", "Miss from cloudfront"] in first["response"]["headers"]
    assert first["bytes"]["sent"] > len("hello")
    assert first["timings"]["total_ms"] >= first["timings"]["origin_ms"] > 0

    second = await _trace(client, edge.admin_url, hit.headers["x-amz-cf-id"])
    assert [s["stage"] for s in second["trip"]] == ["behavior", "cache"]
    cache = _stage(second, "cache")
    assert cache["decision"] == "Hit"
    assert cache["ttl"] == 60 and 0 <= cache["ttl_left"] <= 60
    assert second["timings"]["origin_ms"] == 0


async def test_hooks_show_what_they_changed_their_logs_and_report(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient
) -> None:
    origin.reply("/new", "new page", Cache_Control="max-age=60")
    edge = await make_edge(
        default=hooked(viewer_request="log_and_rewrite", viewer_response="stamp_response"),
        functions={
            "log_and_rewrite": fn("log_and_rewrite"),
            "stamp_response": fn("stamp_response"),
        },
    )
    response = await client.get(f"{edge.url}/old", headers={"X-Drop-Me": "gone"})
    assert response.headers["x-stamped"] == "1"
    trace = await _trace(client, edge.admin_url, response.headers["x-amz-cf-id"])
    assert [s["stage"] for s in trace["trip"]] == [
        "behavior",
        "viewer-request",
        "cache",
        "origin",
        "viewer-response",
    ]
    viewer_request = _stage(trace, "viewer-request")
    assert viewer_request["fired"] is True
    assert viewer_request["function"] == "log_and_rewrite"
    assert viewer_request["outcome"] == "ContinueRequest"
    changes = {
        (c["field"], c.get("name")): (c["before"], c["after"]) for c in viewer_request["changes"]
    }
    assert changes[("uri", None)] == ("/old", "/new")
    assert changes[("header", "X-Traced")] == (None, "yes")
    assert changes[("header", "X-Drop-Me")] == ("gone", None)
    assert "rewriting /old" in viewer_request["logs"]
    assert viewer_request["report"].startswith("REPORT RequestId: ")
    assert "\tDuration: " in viewer_request["report"]
    assert viewer_request["init_duration_ms"] is not None  # the first invocation: a cold start
    assert viewer_request["round_trip_ms"] > 0
    assert _stage(trace, "cache")["key_parts"] == [["path", "/new"]]
    assert _stage(trace, "origin")["target"] == "/new"
    viewer_response = _stage(trace, "viewer-response")
    assert viewer_response["outcome"] == "ModifiedResponse"
    assert viewer_response["changes"] == [
        {"field": "header", "name": "X-Stamped", "before": None, "after": "1"}
    ]

    again = await client.get(f"{edge.url}/old")
    warm = _stage(
        await _trace(client, edge.admin_url, again.headers["x-amz-cf-id"]), "viewer-request"
    )
    assert warm["init_duration_ms"] is None


async def test_hooks_that_did_not_fire_say_why(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient
) -> None:
    origin.reply("/cached", "c", Cache_Control="max-age=60")
    origin.reply("/missing", "nope", status=404)
    functions = {
        name: fn(name) for name in ("redirect", "stamp_response", "log_and_rewrite", "fail")
    }
    dead = CustomOrigin("dead", "http", "127.0.0.1", _dead_port(), connection_attempts=1)
    edge = await make_edge(
        origins={"dead": dead},
        behaviors=(
            hooked(
                "/redirect",
                viewer_request="redirect",
                origin_request="log_and_rewrite",
                viewer_response="stamp_response",
            ),
            hooked("/cached", origin_request="log_and_rewrite"),
            hooked("/missing", viewer_response="stamp_response"),
            hooked("/broken", viewer_request="fail", origin_request="log_and_rewrite"),
            Behavior(
                "/down",
                "dead",
                functions=(("origin-response", FunctionAssociation("stamp_response")),),
            ),
        ),
        functions=functions,
    )

    async def skipped(path: str) -> dict[str, str]:
        response = await client.get(f"{edge.url}{path}")
        trace = await _trace(client, edge.admin_url, response.headers["x-amz-cf-id"])
        return {s["stage"]: s["skipped"] for s in trace["trip"] if s.get("fired") is False}

    assert await skipped("/redirect") == {
        "origin-request": "the viewer-request function generated a response",
        "viewer-response": "the viewer-request function generated a response",
    }
    await client.get(f"{edge.url}/cached")
    assert await skipped("/cached") == {
        "origin-request": "a cache hit: the origin was not contacted"
    }
    assert await skipped("/missing") == {
        "viewer-response": "the status is 404: viewer-response runs only below 400"
    }
    assert await skipped("/broken") == {
        "origin-request": "the viewer-request function failed (LambdaExecutionError)"
    }
    assert await skipped("/down") == {
        "origin-response": "no HTTP response from the origin (OriginConnectError)"
    }


async def test_a_failed_function_shows_its_error_and_logs(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient
) -> None:
    edge = await make_edge(default=hooked(viewer_request="fail"), functions={"fail": fn("fail")})
    response = await client.get(f"{edge.url}/x")
    assert response.status_code == 503
    trace = await _trace(client, edge.admin_url, response.headers["x-amz-cf-id"])
    step = _stage(trace, "viewer-request")
    assert step["outcome"] == "LambdaExecutionError"
    assert step["result"] == "error"
    assert step["error"]["errorType"] == "ValueError"
    assert "broken on purpose" in step["failure"]
    assert "about to fail" in step["logs"]
    assert _stage(trace, "cache")["why"].startswith(
        "answered before the lookup: the viewer-request"
    )
    assert trace["x_cache"] == "LambdaExecutionError from cloudfront"
    assert (await client.get(f"{edge.url}/x")).status_code == 503  # and the edge serves on


async def test_what_is_not_cached_says_why(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient
) -> None:
    origin.reply("/private", "p", Cache_Control="no-store")
    origin.reply("/form", "posted")
    edge = await make_edge(
        default=behavior(allowed_methods=ALL_METHODS, ttl=(0, 86_400, 31_536_000))
    )
    no_store = await client.get(f"{edge.url}/private")
    cache = _stage(await _trace(client, edge.admin_url, no_store.headers["x-amz-cf-id"]), "cache")
    assert cache["decision"] == "Miss"
    assert cache["stored"] is False
    assert (
        cache["why"] == "not stored: the origin's Cache-Control (no-store) with a minimum TTL of 0"
    )

    posted = await client.post(f"{edge.url}/form", content=b"a=1")
    trace = await _trace(client, edge.admin_url, posted.headers["x-amz-cf-id"])
    assert (
        _stage(trace, "cache")["why"]
        == "POST is not cached by this behavior (cached methods: GET, HEAD)"
    )
    assert trace["bytes"]["received"] >= len(b"a=1")


async def test_a_revalidation_shows_the_304_and_the_new_ttl(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient, clock: ManualClock
) -> None:
    async def etagged(request: web.Request) -> web.Response:
        if request.headers.get("If-None-Match") == '"v1"':
            return web.Response(status=304, headers={"ETag": '"v1"', "Cache-Control": "max-age=30"})
        return web.Response(text="v1", headers={"ETag": '"v1"', "Cache-Control": "max-age=5"})

    origin.route("/doc", etagged)
    edge = await make_edge()
    await client.get(f"{edge.url}/doc")
    clock.advance(10)
    refreshed = await client.get(f"{edge.url}/doc")
    assert refreshed.headers["x-cache"] == "RefreshHit from cloudfront"
    trace = await _trace(client, edge.admin_url, refreshed.headers["x-amz-cf-id"])
    cache = _stage(trace, "cache")
    assert cache["decision"] == "RefreshHit"
    assert cache["ttl"] == 30
    assert "the origin answered 304" in cache["why"] and "max-age=30" in cache["why"]
    fetch = _stage(trace, "origin")
    assert fetch["status"] == 304
    assert ["If-None-Match", '"v1"'] in fetch["request_headers"]


async def test_failover_shows_each_origin_tried_in_order(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient
) -> None:
    origin.reply("/a", "down", status=503)
    origin.reply("/backup/a", "from secondary")
    backup = CustomOrigin("backup", "http", "127.0.0.1", origin.port, path="/backup")
    edge = await make_edge(
        origins={"backup": backup},
        default=Behavior("*", "ha"),
        settings={"origin_groups": {"ha": OriginGroup("ha", "app", "backup", frozenset({503}))}},
    )
    response = await client.get(f"{edge.url}/a")
    trace = await _trace(client, edge.admin_url, response.headers["x-amz-cf-id"])
    fetches = [s for s in trace["trip"] if s["stage"] == "origin"]
    assert [(f["origin"].split()[0], f["status"], f["target"]) for f in fetches] == [
        ("app", 503, "/a"),
        ("backup", 200, "/backup/a"),
    ]
    assert trace["notes"] == ["failover after status 503"]


async def test_only_the_latest_requests_are_kept(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient
) -> None:
    origin.reply("/n", "n")
    edge = await make_edge(settings={"inspector": InspectorSettings(3)})
    ids = [(await client.get(f"{edge.url}/n?i={i}")).headers["x-amz-cf-id"] for i in range(5)]
    listed = (await client.get(f"{edge.admin_url}/requests")).json()
    assert listed["kept"] == 3
    assert [r["id"] for r in listed["requests"]] == ids[:1:-1]
    gone = await client.get(f"{edge.admin_url}/requests/{ids[0]}")
    assert gone.status_code == 404
    assert gone.json()["Error"]["Code"] == "NoSuchRequest"

    nothing = await make_edge(settings={"inspector": InspectorSettings(0)})
    assert (await client.get(f"{nothing.url}/n")).status_code == 200
    assert (await client.get(f"{nothing.admin_url}/requests")).json()["requests"] == []


async def test_the_list_filters_and_refuses_bad_parameters(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient
) -> None:
    origin.reply("/ok", "fine", Cache_Control="max-age=60")
    edge = await make_edge()
    for path in ("/ok", "/ok", "/missing", "/api/missing"):
        await client.get(f"{edge.url}{path}")

    async def listed(query: str) -> list[tuple[str, int]]:
        response = await client.get(f"{edge.admin_url}/requests?{query}")
        assert response.status_code == 200, response.text
        return [(r["url"], r["status"]) for r in response.json()["requests"]]

    assert await listed("status=4xx") == [("/api/missing", 404), ("/missing", 404)]
    assert await listed("status=200&x_cache=hit") == [("/ok", 200)]
    assert await listed("path=/api/") == [("/api/missing", 404)]
    assert await listed("limit=1") == [("/api/missing", 404)]
    for query in ("limit=abc", "limit=0", "limit=100000", "status=abc", "status=6xx"):
        bad = await client.get(f"{edge.admin_url}/requests?{query}")
        assert bad.status_code == 400, query
        assert bad.json()["Error"]["Code"] == "InvalidArgument"
    unknown = await client.get(f"{edge.admin_url}/requests/not-an-id")
    assert unknown.status_code == 404
    assert (await client.get(f"{edge.url}/ok")).headers["x-cache"] == "Hit from cloudfront"


async def test_a_refused_request_is_traced_too(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient
) -> None:
    edge = await make_edge()
    assert edge.address is not None
    answer = await raw_request(
        edge.address.port, b"GET /x HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 400 ")
    [summary] = (await client.get(f"{edge.admin_url}/requests")).json()["requests"]
    assert (summary["method"], summary["status"], summary["x_cache"]) == (
        "-",
        400,
        "Error from cloudfront",
    )
    trace = await _trace(client, edge.admin_url, summary["id"])
    assert trace["detailed_result_type"] == "InvalidRequest"
    assert [s["stage"] for s in trace["trip"]] == ["refused"]


async def test_a_viewer_that_leaves_before_the_answer_is_recorded(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient
) -> None:
    release = asyncio.Event()

    async def slow(_: web.Request) -> web.Response:
        await asyncio.wait_for(release.wait(), 5)
        return web.Response(text="late")

    origin.route("/slow", slow)
    edge = await make_edge()
    assert edge.address is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", edge.address.port)
    writer.write(b"GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
    await writer.drain()
    while not origin.hits("/slow"):
        await asyncio.sleep(0.01)
    writer.close()
    listed: list[dict[str, Any]] = []
    for _ in range(200):
        listed = (await client.get(f"{edge.admin_url}/requests")).json()["requests"]
        if listed:
            break
        await asyncio.sleep(0.02)
    release.set()
    [summary] = listed
    assert summary["aborted"] is True
    assert summary["status"] == 0
    assert summary["url"] == "/slow"
    metrics = (await client.get(f"{edge.admin_url}/metrics")).text
    cut = 'edgesim_requests_cut_off_total{status="0",x_cache="Miss from cloudfront"} 1.0'
    assert cut in metrics
    assert (await client.get(f"{edge.admin_url}/stats")).json()["requests"] == {"Error": 1}
    del reader


async def test_a_cloudfront_function_shows_its_change_and_compute_utilization(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient
) -> None:
    origin.reply("/docs/index.html", "docs")
    code = Path(__file__).resolve().parent.parent / "functions" / "cloudfront" / "url_rewrite.js"
    rewrite = FunctionConfig("url-rewrite", "cloudfront-js-1.0", code, "handler")
    edge = await make_edge(
        default=behavior(functions=(("viewer-request", FunctionAssociation("url-rewrite")),)),
        functions={"url-rewrite": rewrite},
    )
    response = await client.get(f"{edge.url}/docs/")
    assert response.text == "docs"
    step = _stage(
        await _trace(client, edge.admin_url, response.headers["x-amz-cf-id"]), "viewer-request"
    )
    assert step["function"] == "url-rewrite"
    assert step["changes"] == [{"field": "uri", "before": "/docs/", "after": "/docs/index.html"}]
    assert 0 <= step["compute_utilization"] <= 100


async def test_a_simulated_viewer_is_in_the_trace(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient
) -> None:
    origin.reply("/geo", "g")
    edge = await make_edge()
    response = await client.get(
        f"{edge.url}/geo", headers={"X-Edgesim-Viewer": "ip=203.0.113.9; country=DE; city=Berlin"}
    )
    trace = await _trace(client, edge.admin_url, response.headers["x-amz-cf-id"])
    assert trace["client"]["ip"] == "203.0.113.9"
    viewer = trace["simulated_viewer"]
    assert (viewer["ip"], viewer["country"], viewer["city"]) == ("203.0.113.9", "DE", "Berlin")
    assert all(name.lower() != "x-edgesim-viewer" for name, _ in trace["request"]["headers"])
    plain = await client.get(f"{edge.url}/geo")
    assert (await _trace(client, edge.admin_url, plain.headers["x-amz-cf-id"]))[
        "simulated_viewer"
    ] is None


async def test_traces_metrics_and_the_access_log_outlive_a_reload(
    origin: RecordingOrigin, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """The recorders belong to the edge server, which a reload keeps."""
    from edgesim.config import load_config
    from edgesim.reload import Reloader
    from edgesim.service import Edge

    origin.reply("/r", "r", Cache_Control="max-age=60")
    config_file = tmp_path / "edge.yaml"
    text = (
        "listen: 127.0.0.1:0\nadmin_listen: 127.0.0.1:0\naccess_log: access.log\n"
        f"origins:\n  app: {{url: {origin.url}}}\n"
        "default_behavior: {origin: app, cache: {min_ttl: 0, default_ttl: TTL, max_ttl: 600}}\n"
    )
    config_file.write_text(text.replace("TTL", "60"))
    edge = Edge(load_config(config_file))
    await edge.start()
    try:
        reloader = Reloader(edge, lambda: load_config(config_file))
        before = await client.get(f"{edge.url}/r")
        config_file.write_text(text.replace("TTL", "30"))
        assert (await reloader.reload()).applied
        after = await client.get(f"{edge.url}/r")
        listed = (await client.get(f"{edge.admin_url}/requests")).json()["requests"]
        assert [r["id"] for r in listed] == [
            after.headers["x-amz-cf-id"],
            before.headers["x-amz-cf-id"],
        ]
        metrics = (await client.get(f"{edge.admin_url}/metrics")).text
        assert 'edgesim_requests_total{status="200",x_cache="Miss from cloudfront"} 1.0' in metrics
        assert 'edgesim_requests_total{status="200",x_cache="Hit from cloudfront"} 1.0' in metrics
        assert edge.server.access_log is not None
        await edge.server.access_log.flush()
        lines = (tmp_path / "access.log").read_text().splitlines()[2:]
        assert [line.split("\t")[14] for line in lines] == [
            before.headers["x-amz-cf-id"],
            after.headers["x-amz-cf-id"],
        ]
    finally:
        await edge.stop(grace=1.0)


async def test_a_trace_keeps_no_body_but_the_cached_objects(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient
) -> None:
    """Kept traces must not hold big bodies (or the streams behind them) in memory."""
    big = b"b" * (300 * 1024)  # over the inline limit: it streams through
    origin.reply("/big", big, Cache_Control="no-store")
    origin.reply("/small", b"s" * (20 * 1024), Cache_Control="no-store")
    origin.reply("/kept", "k", Cache_Control="max-age=60")
    edge = await make_edge()
    for path, size in (("/big", len(big)), ("/small", 20 * 1024), ("/kept", 1), ("/kept", 1)):
        response = await client.get(f"{edge.url}{path}")
        assert len(response.content) == size
        ex = edge.server.traces.find(response.headers["x-amz-cf-id"])
        assert ex is not None and ex.response is not None
        if path == "/kept":
            entry = ex.stored if ex.stored is not None else ex.cached
            assert entry is not None
            assert ex.response.body is entry.body  # type: ignore[attr-defined]
        else:
            assert ex.response.body is None
        trace = await _trace(client, edge.admin_url, response.headers["x-amz-cf-id"])
        assert trace["response"]["body_bytes"] == size
