"""Hot reload against a real edge, real origin and real workers.

The config is a real file and the functions real packages on disk; each test
edits them as a developer would and reloads, explicitly through
``Reloader.reload`` or by waiting (with a bound, never a duration assertion)
for the file watcher to notice.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from edgesim.config import load_config
from edgesim.reload import Reloader, package_digest
from edgesim.service import Edge
from tests.conftest import RecordingOrigin

HANDLER = """\
VERSION = {version!r}


def handler(event, context):
    response = event["Records"][0]["cf"]["response"]
    response["headers"]["x-{name}"] = [{{"key": "X-{name}", "value": VERSION}}]
    return response
"""

CONFIG = """\
listen: 127.0.0.1:0
admin_listen: null
origins:
  app:
    url: {origin}
functions:
  stamp:
    runtime: python3.11
    code: ./stamp
    handler: stamp.handler
  tag:
    runtime: python3.11
    code: ./tag
    handler: tag.handler
behaviors:
  - path: /a/*
    origin: app
    cache: {{min_ttl: 0, default_ttl: 60, max_ttl: 60{a_extra}}}
    functions: {{viewer-response: tag}}
default_behavior:
  origin: app
  cache: {{min_ttl: 0, default_ttl: {ttl}, max_ttl: 600}}
  functions: {{viewer-response: stamp}}
"""


class Project:
    """A config file and two function packages in a folder, edited like a developer would."""

    def __init__(self, root: Path, origin: str) -> None:
        self.root = root
        self.origin = origin
        self.config = root / "edge.yaml"
        self.write_function("stamp", "1")
        self.write_function("tag", "1")
        self.write_config()

    def write_function(self, name: str, version: str) -> None:
        folder = self.root / name
        folder.mkdir(exist_ok=True)
        (folder / f"{name}.py").write_text(HANDLER.format(name=name, version=version))

    def write_config(self, *, a_extra: str = "", ttl: int = 60) -> None:
        text = CONFIG.format(origin=self.origin, a_extra=a_extra, ttl=ttl)
        self.config.write_text(text)


@pytest.fixture
def project(tmp_path: Path, origin: RecordingOrigin) -> Project:
    origin.reply("/page", "page", Cache_Control="max-age=60")
    origin.reply("/a/thing", "thing", Cache_Control="max-age=60")
    return Project(tmp_path, origin.url)


@pytest.fixture
async def running(project: Project) -> AsyncIterator[tuple[Edge, Reloader, list[str]]]:
    console: list[str] = []
    edge = Edge(load_config(project.config), echo=console.append)
    await edge.start()
    reloader = Reloader(edge, lambda: load_config(project.config), echo=console.append)
    yield edge, reloader, console
    await edge.stop(grace=1.0)


async def get(client: httpx.AsyncClient, edge: Edge, path: str) -> httpx.Response:
    response = await client.get(f"{edge.url}{path}")
    assert response.status_code == 200, response.text
    return response


async def test_an_edited_function_answers_the_next_request_after_a_cold_start(
    project: Project, running: tuple[Edge, Reloader, list[str]], client: httpx.AsyncClient
) -> None:
    edge, reloader, console = running
    server = edge.server
    assert (await get(client, edge, "/page")).headers["x-stamp"] == "1"
    assert (await get(client, edge, "/a/thing")).headers["x-tag"] == "1"
    assert edge.functions is not None
    tag_pool = edge.functions.pools["tag"]

    project.write_function("stamp", "2")
    report = await reloader.reload()

    assert report.applied and report.generation == 2
    assert report.changed == ("stamp",)
    assert report.kept == ("tag",)
    assert any("fresh workers" in line and "stamp" in line for line in console)
    again = await get(client, edge, "/page")
    assert again.headers["x-stamp"] == "2"
    assert again.headers["x-cache"] == "Hit from cloudfront"  # the cache survived
    await get(client, edge, "/a/thing")
    stats = edge.functions.stats()
    assert stats["stamp"]["cold_starts"] == 1  # a new pool: its first environment
    assert edge.functions.pools["tag"] is tag_pool
    assert stats["tag"]["cold_starts"] == 1 and stats["tag"]["invocations"] == 2
    assert edge.server is server and server.counters["Hit"] >= 2  # counters carried over


async def test_a_request_in_flight_finishes_on_the_generation_it_started_on(
    project: Project,
    origin: RecordingOrigin,
    running: tuple[Edge, Reloader, list[str]],
    client: httpx.AsyncClient,
) -> None:
    edge, reloader, _ = running
    arrived, release = asyncio.Event(), asyncio.Event()

    async def slow(_: web.Request) -> web.Response:
        arrived.set()
        await release.wait()
        return web.Response(text="slow", headers={"Cache-Control": "no-store"})

    origin.route("/slow", slow)
    await get(client, edge, "/page")  # a warm stamp environment, version 1 loaded
    in_flight = asyncio.ensure_future(client.get(f"{edge.url}/slow"))
    await asyncio.wait_for(arrived.wait(), 10)

    project.write_function("stamp", "2")
    report = await reloader.reload()
    assert report.applied
    assert (await get(client, edge, "/page")).headers["x-stamp"] == "2"
    assert reloader.retiring == 1  # the old stamp pool waits for its last request

    release.set()
    finished = await asyncio.wait_for(in_flight, 10)
    assert finished.status_code == 200 and finished.text == "slow"
    # Its viewer-response ran on the old generation's warm environment.
    assert finished.headers["x-stamp"] == "1"
    for _ in range(200):  # bounded: the old pool closes once nothing uses it
        if reloader.retiring == 0:
            break
        await asyncio.sleep(0.05)
    assert reloader.retiring == 0


async def test_a_config_that_no_longer_validates_is_reported_and_nothing_changes(
    project: Project, running: tuple[Edge, Reloader, list[str]], client: httpx.AsyncClient
) -> None:
    edge, reloader, console = running
    await get(client, edge, "/page")
    text = project.config.read_text().replace("default_ttl: 60,", "default_tll: 60,", 1)
    project.config.write_text(text)

    report = await reloader.reload()

    assert not report.applied and report.generation == 1
    assert report.error is not None
    assert f"{project.config}:18: behaviors[0].cache.default_tll:" in report.error
    assert "did you mean 'default_ttl'?" in report.error
    assert any(line.startswith("edgesim: reload failed:") for line in console)
    assert any("still serving generation 1" in line for line in console)
    response = await get(client, edge, "/page")
    assert response.headers["x-cache"] == "Hit from cloudfront"
    assert response.headers["x-stamp"] == "1"

    project.write_config()  # fixed again: nothing differs from what runs
    assert not (await reloader.reload()).applied


async def test_the_cache_loses_only_the_objects_of_a_behavior_whose_key_changed(
    project: Project,
    origin: RecordingOrigin,
    running: tuple[Edge, Reloader, list[str]],
    client: httpx.AsyncClient,
) -> None:
    edge, reloader, _ = running
    await get(client, edge, "/page")
    await get(client, edge, "/a/thing")

    # /a/* now keys on the query string; the default behavior only changes a TTL.
    project.write_config(a_extra=", query_strings: all", ttl=30)
    report = await reloader.reload()

    assert report.applied and report.changed == ()
    assert report.dropped == 1 and report.kept_objects == 1
    assert report.reasons == ("/a/*: cache key settings changed",)
    assert (await get(client, edge, "/page")).headers["x-cache"] == "Hit from cloudfront"
    refetched = await get(client, edge, "/a/thing")
    assert refetched.headers["x-cache"] == "Miss from cloudfront"
    assert origin.hits("/a/thing") == 2 and origin.hits("/page") == 1


async def test_an_origin_facing_function_change_drops_what_it_shaped(
    project: Project, running: tuple[Edge, Reloader, list[str]], client: httpx.AsyncClient
) -> None:
    edge, reloader, _ = running
    text = project.config.read_text().replace(
        "functions: {viewer-response: stamp}", "functions: {origin-response: stamp}"
    )
    project.config.write_text(text)
    first = await reloader.reload()
    assert first.applied and first.changed == ()  # only the association moved
    assert (await get(client, edge, "/page")).headers["x-stamp"] == "1"  # stored with it
    await get(client, edge, "/a/thing")

    project.write_function("stamp", "2")
    report = await reloader.reload()

    assert report.dropped == 1 and report.reasons == ("*: origin-facing function changed",)
    fresh = await get(client, edge, "/page")
    assert fresh.headers["x-cache"] == "Miss from cloudfront"
    assert fresh.headers["x-stamp"] == "2"
    assert (await get(client, edge, "/a/thing")).headers["x-cache"] == "Hit from cloudfront"


async def test_a_changed_behavior_with_a_viewer_request_function_empties_the_cache(
    project: Project, running: tuple[Edge, Reloader, list[str]], client: httpx.AsyncClient
) -> None:
    edge, reloader, _ = running
    (project.root / "stamp" / "passthrough.py").write_text(
        "def handler(event, context):\n    return event['Records'][0]['cf']['request']\n"
    )
    with_viewer_request = (
        project.config.read_text()
        .replace(
            "functions:\n",
            "functions:\n  pass:\n    runtime: python3.11\n    code: ./stamp\n"
            "    handler: passthrough.handler\n",
            1,
        )
        .replace("{viewer-response: tag}", "{viewer-request: pass, viewer-response: tag}")
    )
    project.config.write_text(with_viewer_request)
    assert (await reloader.reload()).dropped == 0
    await get(client, edge, "/page")
    await get(client, edge, "/a/thing")

    project.config.write_text(
        with_viewer_request.replace("max_ttl: 60}", "max_ttl: 60, cookies: all}", 1)
    )
    report = await reloader.reload()

    assert report.dropped == 2 and report.kept_objects == 0
    assert "can rewrite URIs" in report.reasons[0]
    assert (await get(client, edge, "/page")).headers["x-cache"] == "Miss from cloudfront"


async def test_a_listen_change_waits_for_a_restart(
    project: Project, running: tuple[Edge, Reloader, list[str]], client: httpx.AsyncClient
) -> None:
    edge, reloader, _ = running
    address = edge.url
    project.config.write_text(project.config.read_text().replace(":0\n", ":9\n", 1))
    report = await reloader.reload()
    assert report.notes == ("listen changed to 127.0.0.1:9: restart to apply it",)
    assert edge.url == address
    await get(client, edge, "/page")


async def test_the_watcher_notices_a_saved_function_and_a_saved_config(
    project: Project, running: tuple[Edge, Reloader, list[str]], client: httpx.AsyncClient
) -> None:
    edge, reloader, _ = running
    reloader.start()
    await asyncio.wait_for(reloader.watching.wait(), 30)

    project.write_function("tag", "2")
    report = await asyncio.wait_for(reloader.wait_for_reload(0), 30)
    assert report.applied and report.changed == ("tag",)
    assert (await get(client, edge, "/a/thing")).headers["x-tag"] == "2"

    project.write_config(ttl=30)
    report = await asyncio.wait_for(reloader.wait_for_reload(1), 30)
    assert report.applied and report.generation == 3


def test_a_package_digest_sees_contents_not_bytecode(tmp_path: Path) -> None:
    (tmp_path / "fn.py").write_text("A = 1\n")
    before = package_digest(tmp_path)
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "fn.cpython-311.pyc").write_bytes(b"\0")
    assert package_digest(tmp_path) == before
    (tmp_path / "fn.py").write_text("A = 2\n")
    changed = package_digest(tmp_path)
    assert changed != before
    (tmp_path / "lib.py").write_text("")
    assert package_digest(tmp_path) != changed


async def test_serve_with_a_config_reloads_by_default_and_says_so(
    project: Project, client: httpx.AsyncClient
) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "edgesim.cli",
        "serve",
        "--config",
        str(project.config),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout is not None
    stdout = proc.stdout

    async def line() -> str:
        return (await asyncio.wait_for(stdout.readline(), 30)).decode()

    try:
        lines: list[str] = []
        while not lines or "curl -i" not in lines[-1]:
            lines.append(await line())
            assert lines[-1], lines
        url = re.search(r"edge listening on (http://\S+)", "".join(lines))
        assert url, lines
        notice = [text for text in lines if "reloading on changes to" in text]
        assert notice and "2 function folder(s)" in notice[0] and "--no-reload" in notice[0]
        response = await client.get(f"{url.group(1)}/page")
        assert response.headers["x-stamp"] == "1"
        # The watcher may not be set up yet: save again until it reports (bounded).
        said = ""
        for attempt in range(20):
            project.write_function("stamp", f"{attempt + 2}")
            try:
                while "reloaded" not in said:
                    said = (await asyncio.wait_for(stdout.readline(), 2)).decode()
                break
            except TimeoutError:
                continue
        assert "generation 2" in said, said
        response = await client.get(f"{url.group(1)}/page")
        assert response.headers["x-stamp"] not in ("1", None)
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)


# -- JavaScript functions: a CloudFront Function's code and key value store files, a
#    Node.js package folder ----------------------------------------------------------

GREET = """\
// viewer-response
function handler(event) {{
  var response = event.response;
  response.headers['x-{name}'] = {{value: '{version}'}};
  return response;
}}
"""
LOOKUP = """\
import cf from 'cloudfront';
const kvs = cf.kvs();
async function handler(event) {
  const value = await kvs.get('answer');
  return {statusCode: 200, body: value};
}
"""
NODE = """\
'use strict';
exports.handler = async (event) => {{
  const response = event.Records[0].cf.response;
  response.headers['x-node'] = [{{key: 'X-Node', value: '{version}'}}];
  return response;
}};
"""

JS_CONFIG = """\
listen: 127.0.0.1:0
admin_listen: null
origins:
  app:
    url: {origin}
functions:
  greet:
    runtime: cloudfront-js-1.0
    code: ./cff/greet.js
  wave:
    runtime: cloudfront-js-1.0
    code: ./cff/wave.js
  lookup:
    runtime: cloudfront-js-2.0
    code: ./cff/lookup.js
    key_value_store: ./data/kvs.json
  node-tag:
    runtime: nodejs20.x
    code: ./node
    handler: tag.handler
behaviors:
  - path: /kvs
    origin: app
    functions: {{viewer-request: lookup}}
  - path: /wave
    origin: app
    functions: {{viewer-response: wave}}
  - path: /node
    origin: app
    functions: {{origin-response: node-tag}}
default_behavior:
  origin: app
  functions: {{viewer-response: greet}}
"""


class JsProject:
    """Two CloudFront Functions in one folder, one with a key value store, and a Node.js
    package: the files a developer edits."""

    def __init__(self, root: Path, origin: str) -> None:
        self.root = root
        self.config = root / "edge.yaml"
        (root / "cff").mkdir()
        (root / "data").mkdir()
        (root / "node").mkdir()
        self.write_cff("greet", "1")
        self.write_cff("wave", "1")
        (root / "cff" / "lookup.js").write_text(LOOKUP)
        self.write_kvs("forty-two")
        self.write_node("1")
        self.config.write_text(JS_CONFIG.format(origin=origin))

    def write_cff(self, name: str, version: str, *, by_rename: bool = False) -> None:
        target = self.root / "cff" / f"{name}.js"
        text = GREET.format(name=name, version=version)
        if by_rename:  # as editors that save a new file and rename it into place
            temporary = self.root / "cff" / f".{name}.js.swp"
            temporary.write_text(text)
            temporary.replace(target)
        else:
            target.write_text(text)

    def write_kvs(self, answer: str) -> None:
        data = {"data": [{"key": "answer", "value": answer}]}
        (self.root / "data" / "kvs.json").write_text(json.dumps(data))

    def write_node(self, version: str) -> None:
        (self.root / "node" / "tag.js").write_text(NODE.format(version=version))


@pytest.fixture
async def js_running(
    tmp_path: Path, origin: RecordingOrigin
) -> AsyncIterator[tuple[JsProject, Edge, Reloader]]:
    for path in ("/page", "/wave", "/node"):
        origin.reply(path, "body", Cache_Control="no-store")
    project = JsProject(tmp_path, origin.url)
    edge = Edge(load_config(project.config), echo=lambda _: None)
    await edge.start()
    reloader = Reloader(edge, lambda: load_config(project.config))
    yield project, edge, reloader
    await edge.stop(grace=1.0)


async def js_state(client: httpx.AsyncClient, edge: Edge) -> tuple[str, str, str, str]:
    """What each function currently does: greet, wave, the key value store, node-tag."""
    page = await get(client, edge, "/page")
    wave = await get(client, edge, "/wave")
    kvs = await get(client, edge, "/kvs")
    node = await get(client, edge, "/node")
    return page.headers["x-greet"], wave.headers["x-wave"], kvs.text, node.headers["x-node"]


@pytest.mark.parametrize(
    ("edit", "function", "after"),
    [
        (lambda p: p.write_cff("greet", "2"), "greet", ("2", "1", "forty-two", "1")),
        (lambda p: p.write_kvs("forty-three"), "lookup", ("1", "1", "forty-three", "1")),
        (lambda p: p.write_node("2"), "node-tag", ("1", "1", "forty-two", "2")),
    ],
    ids=["cloudfront-function-code", "key-value-store", "node-package"],
)
async def test_an_edited_javascript_source_reloads_that_function_alone(
    js_running: tuple[JsProject, Edge, Reloader],
    client: httpx.AsyncClient,
    edit: object,
    function: str,
    after: tuple[str, str, str, str],
) -> None:
    project, edge, reloader = js_running
    assert await js_state(client, edge) == ("1", "1", "forty-two", "1")
    assert edge.functions is not None
    pools = dict(edge.functions.pools)

    edit(project)  # type: ignore[operator]
    report = await reloader.reload()

    assert report.applied and report.changed == (function,)
    assert set(report.kept) == {"greet", "wave", "lookup", "node-tag"} - {function}
    assert await js_state(client, edge) == after
    stats = edge.functions.stats()
    for name in report.kept:
        assert edge.functions.pools[name] is pools[name]  # warm workers kept
        assert stats[name]["invocations"] == 2
    assert edge.functions.pools[function] is not pools[function]
    assert stats[function]["cold_starts"] == 1 and stats[function]["invocations"] == 1


async def test_the_watcher_sees_javascript_sources_saved_any_way(
    js_running: tuple[JsProject, Edge, Reloader], client: httpx.AsyncClient
) -> None:
    project, edge, reloader = js_running
    watched = reloader.watched()
    assert watched.folders == (project.root / "node",)
    names = {path.name for path in watched.files}
    assert names == {"greet.js", "wave.js", "lookup.js", "kvs.json"}
    reloader.start()
    await asyncio.wait_for(reloader.watching.wait(), 30)

    edits = [
        (lambda: project.write_cff("wave", "2", by_rename=True), "wave"),
        (lambda: project.write_kvs("forty-four"), "lookup"),
        (lambda: project.write_node("3"), "node-tag"),
    ]
    for attempt, (edit, function) in enumerate(edits):
        edit()
        report = await asyncio.wait_for(reloader.wait_for_reload(attempt), 30)
        assert report.applied and report.changed == (function,), report
    assert await js_state(client, edge) == ("1", "2", "forty-four", "3")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda p: (p.root / "data" / "kvs.json").write_text('{"data": [{"key": "a"}]}'),
            "functions.lookup.key_value_store: data[0] must be an object with exactly",
        ),
        (
            lambda p: (p.root / "cff" / "greet.js").write_text("// " + "x" * 11_000),
            "functions.greet.code: the function is 11,003 bytes",
        ),
        (
            lambda p: (p.root / "cff" / "greet.js").write_text("let handler = (e) => e.response;"),
            "SyntaxError",
        ),
    ],
    ids=["bad-key-value-store", "code-over-10-kb", "not-cloudfront-js-1.0"],
)
async def test_a_javascript_edit_that_does_not_load_is_reported_and_nothing_changes(
    js_running: tuple[JsProject, Edge, Reloader],
    client: httpx.AsyncClient,
    edit: object,
    message: str,
) -> None:
    project, edge, reloader = js_running
    # Warm environments: they keep serving the last code that loaded (a new
    # environment of the running generation would read the files as they are now).
    assert await js_state(client, edge) == ("1", "1", "forty-two", "1")
    edit(project)  # type: ignore[operator]
    report = await reloader.reload()
    assert not report.applied and report.generation == 1
    assert report.error is not None and str(project.config) in report.error
    assert message in report.error, report.error
    assert await js_state(client, edge) == ("1", "1", "forty-two", "1")
