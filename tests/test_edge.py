"""The edge as a viewer and an origin see it: caching, headers, forwarding, failures.

Each test starts the real edge and a real origin on loopback; the edge's clock
is moved by the test where freshness matters.
"""

from __future__ import annotations

import asyncio
import re

import httpx
from aiohttp import web

from edgesim.config.schema import ALL_METHODS, CachePolicy, CacheSettings, Selection
from tests.conftest import EdgeFactory, ManualClock, RecordingOrigin, behavior, raw_request


async def test_miss_then_hit_with_cloudfront_headers(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient, clock: ManualClock
) -> None:
    origin.reply("/page", "hello edge", Cache_Control="max-age=60", Content_Type="text/plain")
    edge = await make_edge()
    first = await client.get(f"{edge.url}/page")
    clock.advance(7)
    second = await client.get(f"{edge.url}/page")

    assert first.status_code == second.status_code == 200
    assert first.text == second.text == "hello edge"
    assert first.headers["x-cache"] == "Miss from cloudfront"
    assert second.headers["x-cache"] == "Hit from cloudfront"
    assert "age" not in first.headers
    assert second.headers["age"] == "7"
    assert re.fullmatch(r"1\.1 [0-9a-f]{32}\.cloudfront\.net \(CloudFront\)", first.headers["via"])
    assert first.headers["x-amz-cf-pop"] == "LHR62-C2"
    for response in (first, second):
        cf_id = response.headers["x-amz-cf-id"]
        assert len(cf_id) == 56 and cf_id.endswith("==")
    assert first.headers["x-amz-cf-id"] != second.headers["x-amz-cf-id"]
    assert second.headers["content-type"] == "text/plain"
    assert origin.hits("/page") == 1


async def test_request_forwarded_to_origin_like_cloudfront(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient
) -> None:
    origin.reply("/p", "ok")
    edge = await make_edge(headers=(("X-Origin-Verify", "s3cret"),))
    response = await client.get(
        f"{edge.url}/p?utm=1",
        headers={
            "Cookie": "sid=1",
            "Accept-Language": "fr",
            "X-Forwarded-For": "203.0.113.7",
            "User-Agent": "curl/8",
            "X-Custom": "dropped",
        },
    )
    assert response.status_code == 200
    seen = origin.seen[-1]
    assert seen.path_qs == "/p"  # query strings are not forwarded unless selected
    assert seen.headers["host"] == f"127.0.0.1:{origin.port}"
    assert seen.headers["x-forwarded-for"] == "203.0.113.7, 127.0.0.1"
    assert seen.headers["user-agent"] == "Amazon CloudFront"
    assert seen.headers["x-amz-cf-id"] == response.headers["x-amz-cf-id"]
    assert seen.headers["via"].endswith(".cloudfront.net (CloudFront)")
    assert seen.headers["x-origin-verify"] == "s3cret"
    for absent in ("cookie", "accept-language", "x-custom"):
        assert absent not in seen.headers


async def test_policy_selects_what_is_keyed_and_forwarded(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient
) -> None:
    origin.reply("/k", "keyed", Cache_Control="max-age=60")
    policy = CachePolicy(
        query_strings=Selection("allow", frozenset({"v"})),
        headers=Selection("allow", frozenset({"x-tenant"})),
        cookies=Selection("allow", frozenset({"sid"})),
    )
    edge = await make_edge(default=behavior(cache=policy))
    url = f"{edge.url}/k"
    await client.get(
        url, params={"v": "1", "utm": "a"}, headers={"X-Tenant": "a", "Cookie": "sid=1; t=x"}
    )
    hit = await client.get(
        url, params={"v": "1", "utm": "b"}, headers={"X-Tenant": "a", "Cookie": "sid=1; t=y"}
    )
    other_q = await client.get(url, params={"v": "2"}, headers={"X-Tenant": "a", "Cookie": "sid=1"})
    other_h = await client.get(url, params={"v": "1"}, headers={"X-Tenant": "b", "Cookie": "sid=1"})
    other_c = await client.get(url, params={"v": "1"}, headers={"X-Tenant": "a", "Cookie": "sid=2"})

    assert hit.headers["x-cache"] == "Hit from cloudfront"
    for response in (other_q, other_h, other_c):
        assert response.headers["x-cache"] == "Miss from cloudfront"
    assert origin.hits("/k") == 4
    first = origin.seen[0]
    assert first.path_qs == "/k?v=1"
    assert first.headers["x-tenant"] == "a"
    assert first.headers["cookie"] == "sid=1"


async def test_behaviors_first_match_wins_and_methods(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient
) -> None:
    origin.reply("/api/items", "api", Cache_Control="max-age=60")
    origin.reply("/API/items", "upper", Cache_Control="max-age=60")
    edge = await make_edge(
        behaviors=(behavior("/api/*", allowed_methods=ALL_METHODS, ttl=(0, 0, 0)),),
    )
    post = await client.post(f"{edge.url}/api/items", content=b"\x00\x01binary\xff" * 1000)
    assert post.status_code == 200
    assert origin.seen[-1].method == "POST"
    assert origin.seen[-1].body == b"\x00\x01binary\xff" * 1000
    # /api/* has TTL 0: every GET goes to the origin, even with max-age... clamped to max 0
    await client.get(f"{edge.url}/api/items")
    again = await client.get(f"{edge.url}/api/items")
    assert again.headers["x-cache"] == "Miss from cloudfront"
    # Matching is case-sensitive: /API/ falls to the default behavior (GET, HEAD only).
    refused = await client.post(f"{edge.url}/API/items", content=b"x")
    assert refused.status_code == 403
    assert refused.headers["x-cache"] == "Error from cloudfront"
    assert refused.headers["server"] == "CloudFront"
    assert "ERROR: The request could not be satisfied" in refused.text
    assert refused.headers["x-amz-cf-id"] in refused.text
    assert all(s.path_qs != "/API/items" or s.method != "POST" for s in origin.seen)


async def test_ttl_rules_from_cache_control_and_policy(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient, clock: ManualClock
) -> None:
    origin.reply("/nostore", "x", Cache_Control="no-store")
    origin.reply("/smax", "x", Cache_Control="max-age=5, s-maxage=100")
    origin.reply("/plain", "x")
    edge = await make_edge(
        behaviors=(behavior("/min/*", ttl=(30, 60, 120)),),
        default=behavior(ttl=(0, 50, 1000)),
    )
    origin.reply("/min/nostore", "x", Cache_Control="no-store")

    async def xcache(path: str) -> str:
        return (await client.get(f"{edge.url}{path}")).headers["x-cache"]

    for path in ("/nostore", "/smax", "/plain", "/min/nostore"):
        assert await xcache(path) == "Miss from cloudfront"
    clock.advance(20)
    assert await xcache("/nostore") == "Miss from cloudfront"  # min 0: no-store respected
    assert await xcache("/smax") == "Hit from cloudfront"  # s-maxage wins over max-age
    assert await xcache("/plain") == "Hit from cloudfront"  # default TTL 50
    assert await xcache("/min/nostore") == "Hit from cloudfront"  # min 30 overrides no-store
    clock.advance(40)  # t=60
    assert await xcache("/plain") != "Hit from cloudfront"
    assert await xcache("/min/nostore") != "Hit from cloudfront"
    assert await xcache("/smax") == "Hit from cloudfront"


async def test_error_caching(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient, clock: ManualClock
) -> None:
    paths = ("/missing", "/forbidden", "/forbidden-cached", "/range")
    origin.reply("/missing", "nope", status=404)
    origin.reply("/forbidden", "no", status=403)
    origin.reply("/forbidden-cached", "no", status=403, Cache_Control="max-age=30")
    origin.reply("/range", "bad", status=416, Cache_Control="max-age=30")
    edge = await make_edge()
    for path in paths:
        first = await client.get(f"{edge.url}{path}")
        # Errors CloudFront passes on are reported as such, cached or not.
        assert first.headers["x-cache"] == "Error from cloudfront"
    clock.advance(5)
    for path in paths:
        await client.get(f"{edge.url}{path}")
    assert origin.hits("/missing") == 1  # 404: cached for 10 s by default
    assert origin.hits("/forbidden") == 2  # 403 only with max-age
    assert origin.hits("/forbidden-cached") == 1
    assert origin.hits("/range") == 2  # 416 never
    clock.advance(6)
    gone = await client.get(f"{edge.url}/missing")
    assert gone.status_code == 404
    assert origin.hits("/missing") == 2
    stats = (await client.get(f"{edge.admin_url}/stats")).json()["cache"]
    assert stats["hits"] == 2


async def test_revalidation_refresh_hit_and_viewer_conditionals(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient, clock: ManualClock
) -> None:
    async def etagged(request: web.Request) -> web.StreamResponse:
        if request.headers.get("If-None-Match") == '"v1"':
            return web.Response(status=304, headers={"ETag": '"v1"', "Cache-Control": "max-age=10"})
        return web.Response(text="body v1", headers={"ETag": '"v1"', "Cache-Control": "max-age=10"})

    origin.route("/obj", etagged)
    edge = await make_edge()
    url = f"{edge.url}/obj"
    await client.get(url)
    not_modified = await client.get(url, headers={"If-None-Match": '"v1"'})
    assert not_modified.status_code == 304
    assert not_modified.headers["etag"] == '"v1"'
    assert not_modified.content == b""
    clock.advance(11)
    refreshed = await client.get(url)
    assert refreshed.headers["x-cache"] == "RefreshHit from cloudfront"
    assert refreshed.text == "body v1"
    assert origin.seen[-1].headers["if-none-match"] == '"v1"'
    assert (await client.get(url)).headers["x-cache"] == "Hit from cloudfront"
    head = await client.head(url)
    assert head.status_code == 200
    assert head.headers["content-length"] == str(len("body v1"))
    assert head.content == b""
    assert origin.hits("/obj") == 2


async def test_stale_object_served_when_revalidation_fails(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient, clock: ManualClock
) -> None:
    state = {"down": False}

    async def flaky(_: web.Request) -> web.StreamResponse:
        if state["down"]:
            return web.Response(status=503, text="down")
        return web.Response(text="good", headers={"Cache-Control": "max-age=10", "ETag": '"g"'})

    origin.route("/f", flaky)
    edge = await make_edge()
    await client.get(f"{edge.url}/f")
    clock.advance(11)
    state["down"] = True
    response = await client.get(f"{edge.url}/f")
    assert response.status_code == 200
    assert response.text == "good"


async def test_concurrent_misses_are_collapsed(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient
) -> None:
    release = asyncio.Event()

    async def slow(_: web.Request) -> web.StreamResponse:
        await release.wait()
        return web.Response(text="once", headers={"Cache-Control": "max-age=60"})

    origin.route("/slow", slow)
    edge = await make_edge()
    tasks = [asyncio.create_task(client.get(f"{edge.url}/slow")) for _ in range(20)]
    while origin.hits("/slow") == 0:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)
    release.set()
    responses = await asyncio.gather(*tasks)
    assert all(r.text == "once" for r in responses)
    assert origin.hits("/slow") == 1
    assert sum(r.headers["x-cache"] == "Miss from cloudfront" for r in responses) == 1


async def test_origin_unreachable_is_502_and_timeout_is_504(
    make_edge: EdgeFactory, origin: RecordingOrigin, client: httpx.AsyncClient
) -> None:
    async def hang(_: web.Request) -> web.StreamResponse:
        await asyncio.sleep(30)
        return web.Response(text="late")

    origin.route("/hang", hang)
    edge = await make_edge(read_timeout=0.3)
    timeout = await client.get(f"{edge.url}/hang")
    assert timeout.status_code == 504
    assert timeout.headers["x-cache"] == "Error from cloudfront"
    assert "504 ERROR" in timeout.text

    dead = await make_edge(port=_dead_port(), connection_attempts=1)
    refused = await client.get(f"{dead.url}/anything")
    assert refused.status_code == 502
    assert refused.headers["x-cache"] == "Error from cloudfront"
    assert refused.headers["content-type"] == "text/html"


def _dead_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_large_bodies_stream_and_oversized_are_not_cached(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient
) -> None:
    big = bytes(range(256)) * 20_000  # 5 MB

    async def chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Cache-Control": "max-age=60"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for i in range(0, len(big), 100_000):
            await response.write(big[i : i + 100_000])
        await response.write_eof()
        return response

    origin.route("/big", chunked)
    origin.reply("/huge", big, Cache_Control="max-age=60")
    edge = await make_edge(cache=CacheSettings(max_object_size=1_000_000))
    for _ in range(2):
        got = await client.get(f"{edge.url}/big")
        assert got.content == big
        got = await client.get(f"{edge.url}/huge")
        assert got.content == big
        assert got.headers["content-length"] == str(len(big))
    assert origin.hits("/big") == 2
    assert origin.hits("/huge") == 2


async def test_body_cut_off_by_origin_is_not_cached(
    make_edge: EdgeFactory, client: httpx.AsyncClient, origin: RecordingOrigin
) -> None:
    async def liar(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Length": "1000", "Cache-Control": "max-age=60"}
        )
        await response.prepare(request)
        await response.write(b"x" * 10)
        assert request.transport is not None
        request.transport.close()
        return response

    origin.route("/cut", liar)
    edge = await make_edge()
    for _ in range(2):
        try:
            response = await client.get(f"{edge.url}/cut")
        except httpx.HTTPError:
            continue
        assert response.status_code == 502
    assert origin.hits("/cut") == 2
    origin.reply("/ok", "fine")
    assert (await client.get(f"{edge.url}/ok")).text == "fine"


async def test_invalidation_and_stats(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient
) -> None:
    for path in ("/images/a.png", "/images/b.png", "/index.html"):
        origin.reply(path, path, Cache_Control="max-age=600")
    edge = await make_edge()
    for path in ("/images/a.png", "/images/b.png", "/index.html"):
        await client.get(f"{edge.url}{path}")
    stats = (await client.get(f"{edge.admin_url}/stats")).json()
    assert stats["cache"]["entries"] == 3

    bad = await client.post(f"{edge.admin_url}/invalidations", json={"paths": ["/im*ges/x"]})
    assert bad.status_code == 400
    created = await client.post(f"{edge.admin_url}/invalidations", json={"paths": ["/images/*"]})
    assert created.status_code == 201
    ident = created.json()["Invalidation"]["Id"]
    assert re.fullmatch(r"I[A-Z0-9]{13}", ident)
    assert (await client.get(f"{edge.admin_url}/invalidations/{ident}")).status_code == 200
    assert (await client.get(f"{edge.url}/images/a.png")).headers[
        "x-cache"
    ] == "Miss from cloudfront"
    assert (await client.get(f"{edge.url}/index.html")).headers["x-cache"] == "Hit from cloudfront"
    stats = (await client.get(f"{edge.admin_url}/stats")).json()
    assert stats["cache"]["entries"] == 2  # /images/b.png stays gone until asked for
    assert stats["cache"]["hits"] >= 1


async def test_bad_requests_get_cloudfront_errors_and_edge_keeps_serving(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient
) -> None:
    origin.reply("/ok", "fine")
    edge = await make_edge()
    assert edge.address is not None
    port = edge.address.port
    garbage = await raw_request(port, b"NOT HTTP AT ALL\r\n\r\n")
    assert garbage.startswith(b"HTTP/1.1 400 ")
    assert b"X-Cache: Error from cloudfront" in garbage
    huge = b"GET /ok HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 30_000 + b"\r\n\r\n"
    too_big = await raw_request(port, huge)
    assert too_big.startswith(b"HTTP/1.1 494 ")
    long_url = b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    assert (await raw_request(port, long_url)).startswith(b"HTTP/1.1 494 ")
    assert (await client.get(f"{edge.url}/ok")).text == "fine"


def _many_fields(count: int) -> bytes:
    fields = b"".join(b"X-Field-%03d: %s\r\n" % (n, b"v" * 1000) for n in range(count))
    return b"GET /ok HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n"


async def test_headers_over_20480_bytes_in_all_get_494_each_time_they_come(
    origin: RecordingOrigin, make_edge: EdgeFactory
) -> None:
    """CloudFront's limit is on the request line and headers together, each field
    well under it (cloudfront-limits.html): 21 fields of ~1 KB are too many."""
    origin.reply("/ok", "fine")
    edge = await make_edge()
    assert edge.address is not None
    port = edge.address.port
    assert (await raw_request(port, _many_fields(19))).startswith(b"HTTP/1.1 200 ")
    for _ in range(2):  # a block seen before is measured again
        assert (await raw_request(port, _many_fields(21))).startswith(b"HTTP/1.1 494 ")
    assert (await raw_request(port, _many_fields(19))).startswith(b"HTTP/1.1 200 ")


async def test_pipelined_requests_answered_in_order(
    origin: RecordingOrigin, make_edge: EdgeFactory
) -> None:
    async def slow(_: web.Request) -> web.StreamResponse:
        await asyncio.sleep(0.05)
        return web.Response(text="first")

    origin.route("/a", slow)
    origin.reply("/b", "second")
    edge = await make_edge()
    assert edge.address is not None
    data = (
        b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    out = await raw_request(edge.address.port, data)
    assert out.count(b"HTTP/1.1 200 OK") == 2
    assert out.index(b"first") < out.index(b"second")


async def test_ranges_cut_from_cached_objects_and_passed_on_misses(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient
) -> None:
    body = bytes(range(256)) * 8
    origin.reply("/video", body, Cache_Control="max-age=60", ETag='"v"')

    async def partial(request: web.Request) -> web.StreamResponse:
        return web.Response(
            status=206,
            body=body[:10],
            headers={"Content-Range": f"bytes 0-9/{len(body)}", "Cache-Control": "max-age=60"},
        )

    origin.route("/partial", partial)
    edge = await make_edge()
    url = f"{edge.url}/video"
    # The origin ignores Range and sends the whole object: it is cached and
    # the viewer gets its range cut from the stored copy.
    first = await client.get(url, headers={"Range": "bytes=0-9"})
    assert first.status_code == 206
    assert first.content == body[:10]
    assert origin.seen[-1].headers["range"] == "bytes=0-9"
    hit = await client.get(url, headers={"Range": "bytes=100-199"})
    assert hit.status_code == 206
    assert hit.headers["x-cache"] == "Hit from cloudfront"
    assert hit.headers["content-range"] == f"bytes 100-199/{len(body)}"
    assert hit.content == body[100:200]
    suffix = await client.get(url, headers={"Range": "bytes=-5"})
    assert suffix.content == body[-5:]
    beyond = await client.get(url, headers={"Range": f"bytes={len(body)}-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{len(body)}"
    other_version = await client.get(url, headers={"Range": "bytes=0-1", "If-Range": '"old"'})
    assert other_version.status_code == 200
    assert other_version.content == body
    assert origin.hits("/video") == 1
    # An origin's own 206 passes through and is not cached.
    for _ in range(2):
        passed = await client.get(f"{edge.url}/partial", headers={"Range": "bytes=0-9"})
        assert passed.status_code == 206
        assert passed.content == body[:10]
    assert origin.hits("/partial") == 2


async def test_compression_when_behavior_and_policy_allow_it(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient
) -> None:
    page = ("<p>" + "edge " * 600 + "</p>").encode()
    origin.reply("/page.html", page, Content_Type="text/html", ETag='"p1"')
    origin.reply("/tiny.html", b"<p>hi</p>", Content_Type="text/html")
    origin.reply("/photo.jpg", page, Content_Type="image/jpeg")
    edge = await make_edge(
        default=behavior(
            cache=CachePolicy(accept_encoding_gzip=True, accept_encoding_brotli=True), compress=True
        )
    )
    url = f"{edge.url}/page.html"
    br = await client.get(url, headers={"Accept-Encoding": "gzip, deflate, br"})
    assert br.headers["content-encoding"] == "br"
    assert br.headers["etag"] == 'W/"p1"'
    assert br.headers["vary"] == "Accept-Encoding"
    assert br.content == page  # httpx decoded the brotli body
    gz = await client.get(url, headers={"Accept-Encoding": "gzip"})
    assert gz.headers["content-encoding"] == "gzip"
    assert gz.content == page
    assert int(gz.headers["content-length"]) < len(page)
    plain = await client.get(url, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.content == page
    # Each encoding is its own cached object; the origin saw the normalised header.
    assert (await client.get(url, headers={"Accept-Encoding": "br, gzip"})).headers[
        "x-cache"
    ] == "Hit from cloudfront"
    assert {s.headers["accept-encoding"] for s in origin.seen} == {"br,gzip", "gzip", "identity"}
    # Too small, or not a compressible type: sent as the origin sent it.
    for path in ("/tiny.html", "/photo.jpg"):
        response = await client.get(f"{edge.url}{path}", headers={"Accept-Encoding": "gzip"})
        assert "content-encoding" not in response.headers
