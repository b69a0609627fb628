"""Origin groups and custom error responses, as a viewer sees them."""

from __future__ import annotations

import httpx

from edgesim.config.schema import (
    Behavior,
    CustomErrorResponse,
    CustomOrigin,
    OriginGroup,
)
from tests.conftest import EdgeFactory, ManualClock, RecordingOrigin, behavior


def _dead_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_origin_group_fails_over_on_status_and_on_connect_errors(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient
) -> None:
    origin.reply("/a", "from primary", status=503)
    origin.reply("/b", "not found on primary", status=404)
    backup = CustomOrigin("backup", "http", "127.0.0.1", origin.port, path="/backup")
    origin.reply("/backup/a", "from secondary")
    origin.reply("/backup/b", "from secondary too")
    edge = await make_edge(
        origins={"backup": backup},
        default=Behavior("*", "ha"),
        settings={
            "origin_groups": {
                "ha": OriginGroup("ha", "app", "backup", frozenset({500, 502, 503, 504}))
            }
        },
    )
    failed_over = await client.get(f"{edge.url}/a")
    assert failed_over.text == "from secondary"
    # 404 is not in this group's failover statuses: the primary's answer stands.
    not_listed = await client.get(f"{edge.url}/b")
    assert not_listed.status_code == 404
    assert origin.hits("/backup/b") == 0

    dead = CustomOrigin("dead", "http", "127.0.0.1", _dead_port(), connection_attempts=1)
    edge2 = await make_edge(
        origins={"backup": backup, "dead": dead},
        default=Behavior("*", "ha"),
        settings={"origin_groups": {"ha": OriginGroup("ha", "dead", "backup", frozenset({500}))}},
    )
    assert (await client.get(f"{edge2.url}/a")).text == "from secondary"
    # Only GET, HEAD and OPTIONS fail over.
    assert (await client.post(f"{edge2.url}/a")).status_code == 403


async def test_custom_error_page_replaces_the_error_and_skips_viewer_response(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient, clock: ManualClock
) -> None:
    origin.reply("/errors/404.html", "<h1>We lost that page</h1>", Content_Type="text/html")
    origin.reply("/gone", "origin's own 404 text", status=404)
    origin.reply("/broken", "origin's 500", status=500)
    edge = await make_edge(
        behaviors=(behavior("/errors/*"),),
        settings={
            "custom_error_responses": {
                404: CustomErrorResponse(404, "/errors/404.html", 200, 30),
                500: CustomErrorResponse(500, None, None, 0),
            }
        },
    )
    page = await client.get(f"{edge.url}/gone")
    assert page.status_code == 200
    assert page.text == "<h1>We lost that page</h1>"
    assert page.headers["content-type"] == "text/html"
    assert page.headers["x-cache"] == "Error from cloudfront"
    # The 404 is cached for this code's error caching minimum TTL (30 s).
    clock.advance(20)
    await client.get(f"{edge.url}/gone")
    assert origin.hits("/gone") == 1
    clock.advance(11)
    await client.get(f"{edge.url}/gone")
    assert origin.hits("/gone") == 2
    # No page for 500, and a minimum TTL of 0: passed on and not cached.
    for _ in range(2):
        broken = await client.get(f"{edge.url}/broken")
        assert broken.status_code == 500
    assert origin.hits("/broken") == 2
