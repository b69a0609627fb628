"""JavaScript functions through the real edge: configs/javascript.yaml as a user loads it,
and CloudFront Functions' restrictions and failures, each followed by a request that
proves the edge still serves.

Rules: functions-event-structure.md, functions-javascript-runtime-10/-20.html,
edge-functions-restrictions.md, test-function.md, cloudfront-semantics.md sections 3 and 6.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from edgesim.config import load_config
from edgesim.config.schema import CacheSettings, CustomOrigin, FunctionConfig, Listen
from edgesim.service import Edge
from edgesim.testfunction import run_test_function
from edgesim.workers.pool import CLOUDFRONT_ENVIRONMENTS
from tests.conftest import EdgeFactory, RecordingOrigin, behavior

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "functions" / "cloudfront"


@pytest.fixture
async def edge(origin: RecordingOrigin) -> AsyncIterator[Edge]:
    config = load_config(ROOT / "configs" / "javascript.yaml")
    app = config.origins["app"]
    assert isinstance(app, CustomOrigin)
    config = dataclasses.replace(
        config,
        origins={**config.origins, "app": dataclasses.replace(app, port=origin.port)},
        listen=Listen("127.0.0.1", 0),
        admin_listen=Listen("127.0.0.1", 0),
    )
    running = Edge(config)
    await running.start()
    yield running
    await running.stop(grace=1.0)


async def test_kvs_redirects(
    edge: Edge, origin: RecordingOrigin, client: httpx.AsyncClient
) -> None:
    moved = await client.get(f"{edge.url}/old-pricing")
    assert moved.status_code == 301
    assert moved.headers["location"] == "/pricing"
    assert moved.headers["x-cache"] == "FunctionGeneratedResponse from cloudfront"
    assert moved.headers["server"] == "CloudFront"
    origin.reply("/pricing", "prices")
    page = await client.get(f"{edge.url}/pricing")
    assert page.text == "prices"
    assert [s.path_qs for s in origin.seen] == ["/pricing"]


async def test_country_redirect_and_security_headers(
    edge: Edge, origin: RecordingOrigin, client: httpx.AsyncClient
) -> None:
    origin.reply("/shop/cart", "cart")
    # The behavior's origin request policy lists CloudFront-Viewer-Country, so the
    # CloudFront Function sees CloudFront's value: the simulated viewer's country.
    for country in ("DE", "AT"):
        german = await client.get(
            f"{edge.url}/shop/cart", headers={"X-Edgesim-Viewer": f"country={country}"}
        )
        assert german.status_code == 302
        assert german.headers["location"] == "/de/shop/cart"
    french = await client.get(f"{edge.url}/shop/cart", headers={"X-Edgesim-Viewer": "country=FR"})
    assert french.status_code == 200 and french.text == "cart"
    assert french.headers["strict-transport-security"].startswith("max-age=63072000")
    assert french.headers["x-frame-options"] == "DENY"
    assert origin.seen[-1].headers["cloudfront-viewer-country"] == "FR"
    # What the viewer claims is replaced by what CloudFront knows (here: nothing).
    spoofed = await client.get(f"{edge.url}/shop/cart", headers={"CloudFront-Viewer-Country": "DE"})
    assert spoofed.status_code == 200 and spoofed.text == "cart"
    assert origin.hits("/shop/cart") == 1  # the country is not in the cache key


async def test_cache_key_normalisation(
    edge: Edge, origin: RecordingOrigin, client: httpx.AsyncClient
) -> None:
    origin.reply("/api/items", "items", Cache_Control="max-age=60")
    first = await client.get(
        f"{edge.url}/api/items?B=2&a=1&utm_source=x", headers={"Accept-Language": "de-DE, en"}
    )
    second = await client.get(f"{edge.url}/api/items?a=1&b=2", headers={"Accept-Language": "de-DE"})
    assert origin.seen[0].path_qs == "/api/items?a=1&b=2"
    assert origin.seen[0].headers["accept-language"] == "de-DE"
    assert first.headers["x-cache"] == "Miss from cloudfront"
    assert second.headers["x-cache"] == "Hit from cloudfront"


async def test_url_rewrite_to_folder_index(edge: Edge, client: httpx.AsyncClient) -> None:
    index = (ROOT / "configs" / "public" / "site" / "index.html").read_text()
    page = await client.get(f"{edge.url}/site/")  # the behavior is /site/*
    assert page.status_code == 200
    assert page.text == index


async def test_node_functions_through_the_edge(
    edge: Edge, origin: RecordingOrigin, client: httpx.AsyncClient
) -> None:
    origin.reply("/docs/index.html", "docs home")
    for path in ("/docs/", "/docs"):
        page = await client.get(f"{edge.url}{path}")
        assert page.text == "docs home"
        assert page.headers["x-content-type-options"] == "nosniff"
    assert {s.path_qs for s in origin.seen} == {"/docs/index.html"}
    # Origin-facing functions see CloudFront's own CloudFront-Viewer-Country,
    # never the viewer's: the viewer's location is simulated.
    spoofed = await client.get(f"{edge.url}/eu/offers", headers={"CloudFront-Viewer-Country": "DE"})
    assert spoofed.status_code != 302
    german = await client.get(f"{edge.url}/eu/offers", headers={"X-Edgesim-Viewer": "country=DE"})
    assert german.status_code == 302
    assert german.headers["location"] == "/de/eu/offers"


async def test_aws_style_function_and_test_objects_run_unchanged() -> None:
    function = FunctionConfig(
        "country-redirect", "cloudfront-js-1.0", EXAMPLES / "country_redirect.js", "handler"
    )
    de = json.loads((EXAMPLES / "test-objects" / "country-de.json").read_text())
    result = await run_test_function(function, de)
    assert result.error_message == ""
    assert result.output is not None
    assert result.output["response"]["statusCode"] == 302
    assert result.output["response"]["headers"]["location"] == {"value": "/de/shop/cart"}
    assert 0 <= result.compute_utilization <= 100
    assert result.logs == ()  # FunctionExecutionLogs: it logs nothing (no START/END lines)
    fr = json.loads((EXAMPLES / "test-objects" / "country-fr.json").read_text())
    passed = await run_test_function(function, fr)
    assert passed.output is not None
    assert passed.output["request"]["uri"] == "/shop/cart"


# -- restrictions and failures, through the edge ------------------------------------


def _function(tmp_path: Path, body: str, **settings: object) -> FunctionConfig:
    code = tmp_path / "fn.js"
    code.write_text(body)
    runtime = str(settings.pop("runtime", "cloudfront-js-2.0"))
    return FunctionConfig("fn", runtime, code, "handler", timeout=2.0, **settings)  # type: ignore[arg-type]


async def _edge_with(
    make_edge: EdgeFactory, tmp_path: Path, body: str, event: str = "viewer-request", **kw: object
) -> Edge:
    function = _function(tmp_path, body, **kw)
    hooks = ((event, _assoc("fn")),)
    return await make_edge(default=behavior(functions=hooks), functions={"fn": function})


def _assoc(name: str) -> object:
    from edgesim.config.schema import FunctionAssociation

    return FunctionAssociation(name)


RESTRICTED = """
function handler(event) {
  var out = {};
  function attempt(name, fn) {
    try { fn(); out[name] = 'allowed'; } catch (e) { out[name] = e.name + ': ' + e.message; }
  }
  attempt('eval', function () { eval('1'); });
  attempt('newFunction', function () { new Function('return 1')(); });
  attempt('constructor', function () { (function () {}).constructor('return 1')(); });
  attempt('asyncConstructor', function () { (async function () {}).constructor('return 1'); });
  attempt('setTimeout', function () { setTimeout(function () {}, 1); });
  attempt('setImmediate', function () { setImmediate(function () {}); });
  attempt('fs', function () { require('fs'); });
  attempt('net', function () { require('net'); });
  attempt('http', function () { require('http'); });
  attempt('sloppy', function () { undeclaredGlobal = 1; });
  attempt('consoleError', function () { console.error('x'); });
  out.crypto = typeof require('crypto').createHash;
  out.querystring = typeof require('querystring').parse;
  out.dateFrozen = Date.now() === new Date().getTime();
  out.buffer = typeof Buffer;
  out.bytes = typeof ''.toUTF8;
  return { statusCode: 200, body: JSON.stringify(out) };
}
"""


@pytest.mark.parametrize("runtime", ["cloudfront-js-1.0", "cloudfront-js-2.0"])
async def test_restrictions_are_enforced(
    make_edge: EdgeFactory, tmp_path: Path, client: httpx.AsyncClient, runtime: str
) -> None:
    edge = await _edge_with(make_edge, tmp_path, RESTRICTED, runtime=runtime)
    response = await client.get(f"{edge.url}/x")
    assert response.status_code == 200
    out = response.json()
    for name in ("eval", "newFunction", "constructor", "asyncConstructor"):
        assert out[name].startswith("EvalError"), (name, out[name])
    for name in ("setTimeout", "setImmediate", "sloppy"):
        assert out[name].startswith("ReferenceError"), (name, out[name])
    for name in ("fs", "net", "http"):
        assert out[name] == f'Error: Cannot find module "{name}"'
    assert out["consoleError"].startswith("TypeError")
    assert (out["crypto"], out["querystring"], out["dateFrozen"]) == ("function", "function", True)
    # 2.0 has Buffer and no byte-string methods; 1.0 the other way round.
    v2 = runtime == "cloudfront-js-2.0"
    assert out["buffer"] == ("function" if v2 else "undefined")
    assert out["bytes"] == ("undefined" if v2 else "function")


async def test_digest_without_encoding_differs_by_runtime(tmp_path: Path) -> None:
    body = """
    function handler(event) {
      var d = require('crypto').createHmac('sha256', 'k').update('v').digest();
      var hex = require('crypto').createHash('md5').update('a').digest('hex');
      var b64 = require('crypto').createHash('sha1').update('a').digest('base64url');
      return {statusCode: 200, body: JSON.stringify([typeof d, d.length, hex, b64])};
    }
    """
    kinds = {}
    for runtime in ("cloudfront-js-1.0", "cloudfront-js-2.0"):
        function = _function(tmp_path, body, runtime=runtime)
        event = {"context": {"eventType": "viewer-request"}, "request": {"uri": "/"}}
        result = await run_test_function(function, event)
        assert result.output is not None, result.error_message
        kinds[runtime] = json.loads(result.output["response"]["body"])
    assert kinds["cloudfront-js-1.0"][:2] == ["string", 32]  # a byte string
    assert kinds["cloudfront-js-2.0"][:2] == ["object", 32]  # a Buffer
    assert kinds["cloudfront-js-2.0"][2] == "0cc175b9c0f1b6a831c399e269772661"
    assert kinds["cloudfront-js-2.0"][3] == "hvfkN_qlp_zhXR3cuerq6jd2Z7g"


@pytest.mark.parametrize(
    ("body", "status", "x_cache"),
    [
        ("function handler(e) { throw new TypeError('boom'); }", 503, "FunctionExecutionError"),
        ("function handler(e) { return e.request.nothing.deeper; }", 503, "FunctionExecutionError"),
        ("function handler(e) { for (;;) {} }", 503, "FunctionExecutionError"),
        (
            "function handler(e) { var a = []; for (;;) a.push('x'.repeat(500) + a.length); }",
            503,
            "FunctionExecutionError",
        ),
        ("function handler(e) { return {", 503, "FunctionExecutionError"),
        ("function handler(e) { return 'not an object'; }", 502, "FunctionValidationError"),
        (
            "function handler(e) { e.request.headers['x-forwarded-proto'] = {value: 'https'};"
            " return e.request; }",
            502,
            "FunctionValidationError",
        ),
        (
            "function handler(e) { e.request.headers.host = {value: 'evil.test'};"
            " return e.request; }",
            502,
            "FunctionValidationError",
        ),
        ("function handler(e) { return {statusCode: '302'}; }", 502, "FunctionValidationError"),
        (
            "function handler(e) {"
            " return {statusCode: 200, body: {encoding: 'base64', data: '@@'}}; }",
            502,
            "FunctionValidationError",
        ),
        (
            "function handler(e) { e.request.headers['X-Upper'] = {value: '1'};"
            " return e.request; }",
            502,
            "FunctionValidationError",
        ),
        (
            "function handler(e) { e.request.uri = 'no-slash'; return e.request; }",
            502,
            "FunctionValidationError",
        ),
    ],
)
async def test_failures_get_cloudfront_errors_and_the_edge_keeps_serving(
    make_edge: EdgeFactory,
    tmp_path: Path,
    origin: RecordingOrigin,
    client: httpx.AsyncClient,
    body: str,
    status: int,
    x_cache: str,
) -> None:
    origin.reply("/ok", "fine")
    edge = await _edge_with(make_edge, tmp_path, body)
    failed = await client.get(f"{edge.url}/x")
    assert failed.status_code == status
    assert failed.headers["x-cache"] == f"{x_cache} from cloudfront"
    assert "ERROR: The request could not be satisfied" in failed.text
    assert origin.seen == []
    # The edge (and the function's next environment) still answers.
    again = await client.get(f"{edge.url}/x")
    assert again.status_code == status


async def test_a_function_that_keeps_exceeding_its_budget_is_throttled(
    make_edge: EdgeFactory, tmp_path: Path, origin: RecordingOrigin, client: httpx.AsyncClient
) -> None:
    origin.reply("/x", "hello")
    body = (
        "function handler(e) { var x = 0; for (var i = 0; i < 20000; i++) x += i;"
        " return e.request; }"
    )
    # A budget no run can meet, so every run is an overrun (and none is stopped: the
    # stop is at 100 budgets, and never under 20 ms of CPU).
    edge = await _edge_with(make_edge, tmp_path, body, compute_budget_ms=0.001)
    statuses = [(await client.get(f"{edge.url}/x")).status_code for _ in range(5)]
    assert statuses == [200] * 5
    throttled = await client.get(f"{edge.url}/x")
    assert throttled.status_code == 503
    assert throttled.headers["x-cache"] == "FunctionThrottledError from cloudfront"
    stats = (await client.get(f"{edge.admin_url}/stats")).json()
    assert json.dumps(stats).count("throttles") >= 1


async def test_concurrent_requests_share_a_few_environments_and_none_is_throttled(
    make_edge: EdgeFactory, tmp_path: Path, origin: RecordingOrigin, client: httpx.AsyncClient
) -> None:
    """CloudFront scales a CloudFront Function on its own: a burst waits for one of
    a few environments instead of starting one per request in flight, and a
    runaway among them is stopped without holding up the rest."""
    body = (
        "function handler(e) { if (e.request.uri === '/spin') { while (true) {} }"
        " var x = 0; for (var i = 0; i < 2000; i++) x += i; return e.request; }"
    )
    edge = await _edge_with(make_edge, tmp_path, body)
    for n in range(40):
        origin.reply(f"/o{n}", f"object {n}")
    paths = [f"/o{n}" for n in range(40)]
    paths[7] = paths[23] = "/spin"
    answers = await asyncio.gather(*(client.get(f"{edge.url}{p}") for p in paths))
    for path, answer in zip(paths, answers, strict=True):
        if path == "/spin":
            assert answer.status_code == 503
            assert answer.headers["x-cache"] == "FunctionExecutionError from cloudfront"
        else:
            assert answer.status_code == 200, (path, answer.headers.get("x-cache"))
            assert answer.text == f"object {path[2:]}"
    stats = (await client.get(f"{edge.admin_url}/stats")).json()["functions"]["fn"]
    assert stats["invocations"] == 40
    assert stats["throttles"] == 0
    assert stats["cold_starts"] <= CLOUDFRONT_ENVIRONMENTS + 2  # the two stopped ones are replaced
    assert stats["environments"] <= CLOUDFRONT_ENVIRONMENTS
    again = await client.get(f"{edge.url}/o1")
    assert again.status_code == 200


async def test_viewer_response_may_change_the_status_and_sets_cookies(
    make_edge: EdgeFactory, tmp_path: Path, origin: RecordingOrigin, client: httpx.AsyncClient
) -> None:
    origin.reply("/x", "hello", Set_Cookie="a=1; Path=/")
    body = """
    function handler(event) {
      var response = event.response;
      response.statusCode = 203;
      response.cookies.b = {value: '2', attributes: 'Secure'};
      response.headers['x-seen-cookie'] = {value: event.response.cookies.a ? 'yes' : 'no'};
      return response;
    }
    """
    edge = await make_edge(
        default=behavior(functions=(("viewer-response", _assoc("fn")),), cache=_all_cookies()),
        functions={"fn": _function(tmp_path, body)},
    )
    response = await client.get(f"{edge.url}/x")
    assert response.status_code == 203
    assert response.headers["x-seen-cookie"] == "yes"
    assert sorted(response.headers.get_list("set-cookie")) == ["a=1; Path=/", "b=2; Secure"]
    assert response.text == "hello"


def _all_cookies() -> object:
    from edgesim.config.schema import CachePolicy, Selection

    return CachePolicy(cookies=Selection("all"))


async def test_origin_helpers_change_the_origin_for_that_request(
    make_edge: EdgeFactory, tmp_path: Path, origin: RecordingOrigin, client: httpx.AsyncClient
) -> None:
    from tests.conftest import RecordingOrigin as _R  # noqa: F401

    origin.reply("/v2/x", "from the updated origin")
    origin.reply("/x", "from the default origin")
    body = """
    import cf from 'cloudfront';
    function handler(event) {
      if (event.request.headers['x-pick']) {
        cf.updateRequestOrigin({originPath: '/v2'});
      }
      return event.request;
    }
    """
    edge = await make_edge(
        default=behavior(functions=(("viewer-request", _assoc("fn")),), ttl=(0, 0, 0)),
        functions={"fn": _function(tmp_path, body)},
    )
    picked = await client.get(f"{edge.url}/x", headers={"x-pick": "1"})
    plain = await client.get(f"{edge.url}/x")
    assert picked.text == "from the updated origin"
    assert plain.text == "from the default origin"


# createRequestOriginGroup, selectRequestOriginById of a group, updateRequestOrigin
# on a group (helper-functions-origin-modification.html): the request fails over
# from the primary on the group's statuses. Two origins on one server: paths tell
# which was asked.
GROUP_HELPERS = """
import cf from 'cloudfront';
function handler(event) {
  var how = event.request.headers['x-how'].value;
  if (how === 'ids') {
    cf.createRequestOriginGroup({originIds: ['app', 'backup'],
                                 failoverCriteria: {statusCodes: [503]}});
  } else if (how === 'objects') {
    cf.createRequestOriginGroup({originIds: [{originId: 'app'}, {originId: 'backup'}],
                                 failoverCriteria: {statusCodes: [500, 503]}});
  } else if (how === 'not-on-503') {
    cf.createRequestOriginGroup({originIds: ['app', 'backup'],
                                 failoverCriteria: {statusCodes: [404]}});
  } else if (how === 'select-group') {
    cf.selectRequestOriginById('pair');
  } else if (how === 'update-group') {
    cf.updateRequestOrigin({originPath: '/moved'});
  } else if (how === 'unknown-origin') {
    cf.createRequestOriginGroup({originIds: ['app', 'nowhere'],
                                 failoverCriteria: {statusCodes: [503]}});
  } else if (how === 'bad-status') {
    cf.createRequestOriginGroup({originIds: ['app', 'backup'],
                                 failoverCriteria: {statusCodes: [418]}});
  } else if (how === 'one-origin') {
    cf.createRequestOriginGroup({originIds: ['app'], failoverCriteria: {statusCodes: [503]}});
  }
  return event.request;
}
"""


async def test_origin_group_helpers_fail_over_for_that_request(
    make_edge: EdgeFactory, tmp_path: Path, origin: RecordingOrigin, client: httpx.AsyncClient
) -> None:
    from edgesim.config.schema import OriginGroup

    origin.reply("/x", "primary is down", status=503)
    origin.reply("/backup/x", "from the backup")
    origin.reply("/moved/x", "moved primary is down", status=503)
    backup = CustomOrigin("backup", "http", "127.0.0.1", origin.port, path="/backup")
    pair = OriginGroup("pair", "app", "backup", frozenset({503}))
    edge = await make_edge(
        behaviors=(behavior("/grouped/*", origin="pair", ttl=(0, 0, 0)),),
        default=behavior(functions=(("viewer-request", _assoc("fn")),), ttl=(0, 0, 0)),
        origins={"backup": backup},
        functions={"fn": _function(tmp_path, GROUP_HELPERS)},
        settings={"origin_groups": {"pair": pair}},
        # Errors not cached: each request must reach the origins.
        cache=CacheSettings(error_caching_min_ttl=0),
    )

    async def get(how: str) -> httpx.Response:
        return await client.get(f"{edge.url}/x", headers={"x-how": how})

    for how in ("ids", "objects", "select-group"):
        answer = await get(how)
        assert (answer.status_code, answer.text) == (200, "from the backup"), how
    # A status the group does not fail over on goes to the viewer.
    kept = await get("not-on-503")
    assert kept.status_code == 503 and kept.headers["x-cache"] == "Error from cloudfront"
    assert kept.text == "primary is down"
    # Without a helper call the behavior's single origin answers, no failover.
    assert (await get("none")).status_code == 503
    before = len(origin.seen)
    for how in ("unknown-origin", "bad-status", "one-origin"):
        refused = await get(how)
        assert refused.status_code == 502, how
        assert refused.headers["x-cache"] == "FunctionValidationError from cloudfront"
    assert len(origin.seen) == before  # a refused helper call never reaches an origin
    assert (await get("ids")).text == "from the backup"  # and the edge still serves


async def test_update_request_origin_on_a_group_changes_only_the_primary(
    make_edge: EdgeFactory, tmp_path: Path, origin: RecordingOrigin, client: httpx.AsyncClient
) -> None:
    from edgesim.config.schema import OriginGroup

    origin.reply("/moved/x", "moved primary is down", status=503)
    origin.reply("/backup/x", "from the backup")
    backup = CustomOrigin("backup", "http", "127.0.0.1", origin.port, path="/backup")
    pair = OriginGroup("pair", "app", "backup", frozenset({503}))
    edge = await make_edge(
        default=behavior(
            origin="pair", functions=(("viewer-request", _assoc("fn")),), ttl=(0, 0, 0)
        ),
        origins={"backup": backup},
        functions={"fn": _function(tmp_path, GROUP_HELPERS)},
        settings={"origin_groups": {"pair": pair}},
    )
    answer = await client.get(f"{edge.url}/x", headers={"x-how": "update-group"})
    assert (answer.status_code, answer.text) == (200, "from the backup")
    assert [s.path_qs for s in origin.seen] == ["/moved/x", "/backup/x"]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"kind": "group", "value": {"originIds": ["app"]}}, "exactly two"),
        ({"kind": "group", "value": {"originIds": ["app", "app"]}}, "must differ"),
        ({"kind": "group", "value": {"originIds": ["app", "nowhere"]}}, "no origin 'nowhere'"),
        (
            {"kind": "group", "value": {"originIds": ["app", "b"], "failoverCriteria": {}}},
            "statusCodes",
        ),
        (
            {
                "kind": "group",
                "value": {"originIds": ["app", "b"], "failoverCriteria": {"statusCodes": [418]}},
            },
            "statusCodes",
        ),
        (
            {
                "kind": "group",
                "value": {
                    "originIds": ["app", "b"],
                    "failoverCriteria": {"statusCodes": [503]},
                    "selectionCriteria": "fastest",
                },
            },
            "selectionCriteria",
        ),
        ({"kind": "select", "value": "nowhere"}, "no origin 'nowhere'"),
        ({"kind": "update", "value": "x"}, "takes an object"),
    ],
)
def test_bad_origin_helper_calls_say_what_is_wrong(change: object, reason: str) -> None:
    from edgesim.codecs.origin_change import changed_origins
    from edgesim.config.schema import Behavior, Config
    from edgesim.errors import FunctionValidationError

    app = CustomOrigin("app", "http", "127.0.0.1", 1)
    config = Config(
        origins={"app": app, "b": CustomOrigin("b", "http", "127.0.0.1", 2)},
        default_behavior=Behavior("*", "app"),
    )
    with pytest.raises(FunctionValidationError, match=reason):
        changed_origins(change, config.origins_for("app"), config)
