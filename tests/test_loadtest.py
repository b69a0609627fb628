"""edgesim loadtest end to end: a real edge (started from --config) on loopback, a real origin.

The harness runs in a thread (it blocks while its processes work) so the
origin, served by this test's event loop, keeps answering. Every run is
bounded by its duration or request count, and by the request timeout.
"""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from edgesim.loadtest import Options, loadtest
from edgesim.loadtest.driver import UNSENT
from tests.conftest import RecordingOrigin


def edge_config(tmp_path: Path, origin: RecordingOrigin, extra: str = "") -> Path:
    path = tmp_path / "edge.yaml"
    path.write_text(
        "origins:\n"
        f"  app: {{url: '{origin.url}'}}\n"
        "default_behavior:\n"
        "  origin: app\n"
        "  cache: CachingOptimized\n" + extra
    )
    return path


def objects(origin: RecordingOrigin, count: int, body: bytes = b"x" * 1000) -> None:
    for n in range(count):
        origin.reply(f"/obj/{n}", body, Cache_Control="max-age=3600")


async def run(tmp_path: Path, **options: Any) -> dict[str, Any]:
    out = io.StringIO()
    json_path = tmp_path / "report.json"
    doc = await asyncio.to_thread(
        loadtest,
        Options(ceiling=0, **options),
        json_path=json_path,
        out=out,
        progress=False,
    )
    assert json.loads(json_path.read_text()) == json.loads(json.dumps(doc))
    assert "edgesim loadtest:" in out.getvalue()
    return doc


def scenario(tmp_path: Path, count: int, extra: str = "") -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(
        "seed: 3\n"
        "requests:\n"
        f"  - {{url: '/obj/{{n}}', objects: {count}, popularity: uniform}}\n" + extra
    )
    return path


async def test_counts_add_up_against_the_origin_and_the_edge(tmp_path, origin):
    objects(origin, 20)
    doc = await run(
        tmp_path,
        config=edge_config(tmp_path, origin),
        scenario=scenario(tmp_path, 20),
        concurrency=4,
        requests=600,
    )
    assert doc["requests"] == 600 == doc["answered"]  # the budget, exactly
    assert doc["statuses"] == {"200": 600}
    # Every Miss, and only a Miss, reached the origin: its own count agrees.
    assert doc["origin_fetches"] == doc["x_cache"]["Miss"] == len(origin.seen)
    assert 1 <= len({s.path_qs for s in origin.seen}) <= 20
    # The hit ratio is what the X-Cache headers said, and what the origin did not see.
    hits = doc["x_cache"]["Hit"]
    assert hits + doc["x_cache"]["Miss"] == 600
    assert doc["hit_ratio"] == pytest.approx(hits / 600)
    assert doc["hit_ratio"] == pytest.approx(1 - len(origin.seen) / 600)
    assert doc["origin_offload"] == pytest.approx(doc["hit_ratio"])
    # The edge's own counters (GET /stats) tell the same story.
    edge = doc["edge"]
    assert doc["origin_counted_by"] == "edge"
    assert edge["origin"] == {
        "requests": len(origin.seen),
        "responses": len(origin.seen),
        "errors": 0,
    }
    assert edge["requests_total"] == 600
    assert edge["cache"]["misses"] == len(origin.seen) and edge["cache"]["hits"] == hits
    # The timeline and the histogram hold every answered request.
    assert sum(row["answered"] for row in doc["timeline"]) == 600
    assert sum(b[2] for b in doc["histogram"]["buckets"]) == 600
    lat = doc["latency_ms"]
    assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p99.9"] <= lat["max"]
    assert doc["errors"] == {} and doc["warnings"] == []


async def test_origin_fetches_of_errors_are_the_edges_count(tmp_path, origin):
    # X-Cache says "Error" both for an origin's 503 and for that 503 served from the
    # cache (CloudFront caches a 503 for ErrorCachingMinTTL, no-store or not); the
    # edge knows which requests went to the origin.
    origin.reply("/broken", b"down", status=503, Cache_Control="no-store")
    doc = await run(
        tmp_path,
        config=edge_config(tmp_path, origin),
        urls=("/broken",),
        concurrency=2,
        requests=40,
    )
    assert doc["statuses"] == {"503": 40} and doc["x_cache"] == {"Error": 40}
    assert doc["origin_counted_by"] == "edge"
    assert 1 <= doc["origin_fetches"] == len(origin.seen) < 40
    assert doc["origin_offload"] == pytest.approx(1 - len(origin.seen) / 40)
    assert doc["edge"]["origin"] == {
        "requests": len(origin.seen),
        "responses": len(origin.seen),
        "errors": 0,
    }


async def test_warm_up_requests_are_not_counted(tmp_path, origin):
    objects(origin, 3)
    doc = await run(
        tmp_path,
        config=edge_config(tmp_path, origin),
        scenario=scenario(tmp_path, 3),
        concurrency=2,
        warmup=0.5,
        duration=0.5,
    )
    warm = doc["warmup"]
    assert warm["requests"] > 0
    # Between them, warm-up and measurement fetched each object once from the origin...
    assert warm["origin_fetches"] + doc["origin_fetches"] == len(origin.seen)
    # ... and the edge counted the two stages apart exactly as the generator did.
    assert doc["edge"]["warmup"]["requests_total"] == warm["requests"]
    assert doc["edge"]["requests_total"] == doc["requests"]
    assert doc["edge"]["cache"]["misses"] == doc["x_cache"].get("Miss", 0)
    if warm["x_cache"].get("Miss", 0) == 3:  # warm-up fetched all three objects
        assert doc["hit_ratio"] == 1.0 and doc["origin_fetches"] == 0
    assert doc["duration_s"] < 5  # stopped by itself after its half second


async def test_function_statistics_and_cost_come_from_the_edge(tmp_path, origin):
    objects(origin, 1)
    functions = Path(__file__).resolve().parent.parent / "bench" / "peers"
    config = edge_config(
        tmp_path,
        origin,
        "  functions: {viewer-request: noop}\n"
        "functions:\n"
        f"  noop: {{runtime: python3.12, code: '{functions}', "
        "handler: noop_function.handler, memory: 128}\n"
        f"  idle: {{runtime: python3.12, code: '{functions}', handler: noop_function.handler}}\n",
    )
    doc = await run(tmp_path, config=config, urls=("/obj/0",), concurrency=2, requests=200)
    noop = doc["edge"]["functions"]["noop"]
    assert noop["invocations"] == 200  # one viewer-request per request, hit or miss
    assert noop["cold_starts"] >= 1 and noop["throttles"] == 0 and noop["errors"] == 0
    assert noop["billed_ms"] >= 200  # at least 1 ms each
    assert 0 < noop["duration_ms"]["p50"] <= noop["duration_ms"]["max"]
    cost = doc["cost"]
    row = cost["functions"][0]
    assert row["pricing"] == "lambda@edge" and row["invocations"] == 200
    expected = 200 / 1e6 * 0.60 + noop["billed_ms"] / 1000 * 0.125 * 0.00005001
    assert cost["run_usd"] == pytest.approx(expected)
    assert cost["per_million_requests_usd"] == pytest.approx(expected / 200 * 1e6)
    # The terminal line: a no-op's microseconds are shown as such, not as 0.00 ms,
    # and a function nothing invoked has no duration to show.
    from edgesim.loadtest.report import summary

    lines = summary(doc).splitlines()
    noop_line = next(line for line in lines if "function    noop " in line)
    p50 = noop["duration_ms"]["p50"]
    shown = f"{p50 * 1000:.1f} us" if p50 < 0.1 else f"{p50:.2f} ms"
    assert f"200 invocations, {noop['cold_starts']} cold starts" in noop_line
    assert f"duration p50 {shown}, p99 " in noop_line
    idle_line = next(line for line in lines if "function    idle " in line)
    assert "0 invocations" in idle_line and idle_line.endswith("no duration")


async def slow_server(delay: float) -> tuple[web.AppRunner, int]:
    async def handler(_: web.Request) -> web.Response:
        await asyncio.sleep(delay)
        return web.Response(body=b"slow")

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, int(runner.addresses[0][1])


async def test_open_loop_sends_on_schedule_and_charges_a_stalled_server(tmp_path):
    # The server takes 0.3 s a request; two connections carry ~7 req/s of the 40 offered.
    runner, port = await slow_server(0.3)
    try:
        doc = await run(
            tmp_path, urls=(f"http://127.0.0.1:{port}/x",), rate=40, duration=1, connections=2
        )
    finally:
        await runner.cleanup()
    # Every intended request is accounted for: 40 req/s for 1 s.
    assert doc["requests"] == 40
    assert doc["answered"] + doc["errors"].get(UNSENT, 0) == 40
    assert doc["errors"][UNSENT] > 0
    # Latency counts from the intended send time: queueing behind the stall shows.
    assert doc["latency_ms"]["p50"] >= 300
    assert doc["latency_ms"]["max"] > doc["latency_ms"]["min"] + 250
    assert doc["x_cache"] == {"none": doc["answered"]} and doc["hit_ratio"] is None
    assert any("did not keep up" in w for w in doc["warnings"])


async def test_a_refusing_target_gives_errors_and_the_run_still_ends(tmp_path, unused_tcp_port):
    doc = await run(tmp_path, urls=(f"http://127.0.0.1:{unused_tcp_port}/",), duration=0.3)
    assert doc["answered"] == 0 and doc["requests"] > 0
    assert doc["errors"] == {"connection refused": doc["requests"]}
    assert any("got no response" in w for w in doc["warnings"])


async def test_several_generator_processes_share_the_load(tmp_path, origin):
    objects(origin, 1)
    doc = await run(
        tmp_path,
        config=edge_config(tmp_path, origin),
        urls=("/obj/0",),
        concurrency=4,
        requests=301,
        processes=2,
    )
    assert doc["requests"] == 301 and doc["generator"]["processes"] == 2
    assert doc["edge"]["requests_total"] == 301
    assert len(doc["generator"]["cpu"]) == 2


async def test_the_ceiling_probe_measures_the_generator_alone(tmp_path, origin):
    objects(origin, 1)
    out = io.StringIO()
    options = Options(urls=(f"{origin.url}/obj/0",), concurrency=2, duration=0.3, ceiling=0.3)
    doc = await asyncio.to_thread(loadtest, options, out=out, progress=False)
    ceiling = doc["generator"]["ceiling"]
    assert ceiling["requests_per_s"] > 0 and ceiling["connections"] == 2
    assert ceiling["body_bytes"] > 0
    assert doc["generator"]["share_of_ceiling"] == pytest.approx(
        doc["throughput_rps"] / ceiling["requests_per_s"]
    )
    assert "ceiling" in out.getvalue()


def test_progress_is_plain_lines_when_not_a_terminal():
    from edgesim.loadtest.harness import RunData, StageData, build_phases
    from edgesim.loadtest.metrics import Tally
    from edgesim.loadtest.progress import Progress
    from edgesim.loadtest.scenario import simple_scenario

    options = Options(urls=("http://127.0.0.1:1/",), duration=5)
    sc = simple_scenario(list(options.urls), relative=False)
    run_data = RunData(
        options, sc, build_phases(options, sc), "t", 0.0, None, StageData(), {}, {}, None
    )
    data = StageData()
    for second in range(2):
        tally = Tally()
        tally.answered(200, "Hit from cloudfront", 100, 1500)
        tally.answered(200, "Miss from cloudfront", 100, 2500)
        data.add(second, tally)
    out = io.StringIO()
    progress = Progress(out, every=0.0)
    progress.update("measure", data, run_data)
    progress.close()
    line = out.getvalue()
    assert line.startswith("loadtest: stage measuring") and line.count("\n") == 1
    assert "hit ratio 50.0%" in line and "req/s 2" in line and "p99 2.50 ms" in line
    quiet = io.StringIO()
    Progress(quiet, enabled=False).update("measure", data, run_data)
    assert quiet.getvalue() == ""


def test_the_cli_refuses_bad_input_with_a_clear_message(tmp_path, capsys):
    from edgesim.cli import main

    assert main(["loadtest", "/just-a-path", "--quiet"]) == 2
    assert "is a path: give a full URL" in capsys.readouterr().err
    bad = tmp_path / "s.yaml"
    bad.write_text("requests:\n  - url: http://127.0.0.1:1/\n    wieght: 2\n")
    assert main(["loadtest", "--scenario", str(bad), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and ":3" in err and "did you mean 'weight'" in err
    config = tmp_path / "edge.yaml"
    config.write_text(
        "origins: {app: {url: 'http://127.0.0.1:1'}}\ndefault_behavior: {orign: app}\n"
    )
    assert main(["loadtest", "--config", str(config), "/", "--quiet"]) == 2
    assert "did you mean 'origin'" in capsys.readouterr().err
    assert main(["loadtest", "http://127.0.0.1:1/", "--cpus", "x", "--quiet"]) == 2
    for argv in (["--rate", "5", "--concurrency", "2"], ["--duration", "0"], ["--processes", "0"]):
        with pytest.raises(SystemExit) as exited:
            main(["loadtest", "http://127.0.0.1:1/", *argv])
        assert exited.value.code == 2


def _finished_run(rate: float, ceiling: float | None, cpu: float) -> Any:
    """A run's data as the coordinator collects it: one second at ``rate``, one process."""
    from edgesim.loadtest.driver import StageResult
    from edgesim.loadtest.harness import RunData, StageData, build_phases
    from edgesim.loadtest.histogram import Histogram
    from edgesim.loadtest.metrics import Tally
    from edgesim.loadtest.scenario import simple_scenario

    options = Options(urls=("http://127.0.0.1:1/",), duration=1)
    sc = simple_scenario(list(options.urls), relative=False)
    data = StageData()
    tally = Tally()
    for _ in range(int(rate)):
        tally.answered(200, "Hit from cloudfront", 1100, 900)
    data.add(0, tally)
    data.results.append(StageResult(1.0, cpu, 10, 10, Histogram()))
    probe = None if ceiling is None else {"requests_per_s": ceiling}
    return RunData(options, sc, build_phases(options, sc), "t", 0.0, None, data, {}, {}, probe)


@pytest.mark.parametrize(
    ("rate", "ceiling", "cpu", "warned"),
    [
        (900, 1000, 0.5, "of its own ceiling"),  # 90% of the ceiling
        (500, 1000, 0.5, None),
        (500, None, 0.95, "used 95% of a core"),
        (500, 1000, 0.2, None),
    ],
)
def test_a_run_near_the_generators_ceiling_is_flagged(rate, ceiling, cpu, warned):
    from edgesim.loadtest.report import build, summary

    doc = build(_finished_run(rate, ceiling, cpu))
    assert doc["throughput_rps"] == pytest.approx(rate)
    if ceiling:
        assert doc["generator"]["share_of_ceiling"] == pytest.approx(rate / ceiling)
    if warned is None:
        assert doc["warnings"] == []
    else:
        assert any(warned in w for w in doc["warnings"])
        assert warned in summary(doc)
