"""The example functions, through the edge, as configs/functions.yaml wires them.

The config is loaded as a user would load it; only its app origin is pointed
at a recording origin on loopback (and the EU origin at a second one).
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from edgesim.config import load_config
from edgesim.config.schema import CustomOrigin, Listen
from edgesim.service import Edge
from tests.conftest import RecordingOrigin

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
async def eu_origin() -> AsyncIterator[RecordingOrigin]:
    rec = RecordingOrigin()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", rec.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, "localhost", 0).start()
    rec.port = int(runner.addresses[0][1])
    yield rec
    await runner.cleanup()


@pytest.fixture
async def edge(origin: RecordingOrigin, eu_origin: RecordingOrigin) -> AsyncIterator[Edge]:
    config = load_config(ROOT / "configs" / "functions.yaml")
    app = config.origins["app"]
    assert isinstance(app, CustomOrigin)
    app = dataclasses.replace(
        app, port=origin.port, headers=(("x-eu-origin-port", str(eu_origin.port)),)
    )
    config = dataclasses.replace(
        config,
        origins={**config.origins, "app": app},
        listen=Listen("127.0.0.1", 0),
        admin_listen=Listen("127.0.0.1", 0),
    )
    running = Edge(config)
    await running.start()
    yield running
    await running.stop(grace=1.0)


async def test_redirects_and_security_headers(edge: Edge, client: httpx.AsyncClient) -> None:
    moved = await client.get(f"{edge.url}/about-us")
    assert moved.status_code == 301
    assert moved.headers["location"] == "/about"
    page = await client.get(f"{edge.url}/about")  # spa-rewrite: the app shell
    assert page.status_code == 200
    assert page.text == (ROOT / "configs" / "public" / "index.html").read_text()
    assert "max-age" in page.headers["strict-transport-security"]
    assert page.headers["x-content-type-options"] == "nosniff"


async def test_basic_auth(edge: Edge, origin: RecordingOrigin, client: httpx.AsyncClient) -> None:
    origin.reply("/admin/", "admin area")
    refused = await client.get(f"{edge.url}/admin/")
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"].startswith("Basic")
    assert origin.seen == []
    allowed = await client.get(f"{edge.url}/admin/", auth=("edge", "let-me-in"))
    assert allowed.status_code == 200
    assert allowed.text == "admin area"


async def test_query_normalisation_and_error_page(
    edge: Edge, origin: RecordingOrigin, client: httpx.AsyncClient
) -> None:
    origin.reply("/api/items", "items", Cache_Control="max-age=60")
    origin.reply("/api/broken", "stack trace from the app", status=500)
    first = await client.get(f"{edge.url}/api/items?b=2&A=1&utm_source=x")
    second = await client.get(f"{edge.url}/api/items?a=1&b=2")
    assert origin.seen[0].path_qs == "/api/items?a=1&b=2"
    assert first.headers["x-cache"] == "Miss from cloudfront"
    assert second.headers["x-cache"] == "Hit from cloudfront"  # one object for both
    broken = await client.get(f"{edge.url}/api/broken")
    assert broken.status_code == 503
    assert "stack trace" not in broken.text
    assert broken.headers["retry-after"] == "30"


async def test_origin_chosen_by_origin_request(
    edge: Edge, origin: RecordingOrigin, eu_origin: RecordingOrigin, client: httpx.AsyncClient
) -> None:
    eu_origin.reply("/eu/prices", "EU prices")
    response = await client.get(f"{edge.url}/eu/prices")
    assert response.text == "EU prices"
    assert origin.seen == []
    # The configuration header went to the function, not to the EU origin.
    assert "x-eu-origin-port" not in eu_origin.seen[0].headers


async def test_ab_testing_by_cookie(
    edge: Edge, origin: RecordingOrigin, client: httpx.AsyncClient
) -> None:
    for variant in ("a", "b"):
        origin.reply(f"/{variant}/shop/cart", f"variant {variant}")
        response = await client.get(
            f"{edge.url}/shop/cart", headers={"Cookie": f"ab-variant={variant}"}
        )
        assert response.text == f"variant {variant}"
    fresh = await client.get(f"{edge.url}/shop/cart")
    assert fresh.text in ("variant a", "variant b")
