"""A 1 GB download through the edge must not grow the edge's memory by more than a few MB.

The edge runs as its own process (so its memory is its own), the origin and
the viewer run here; the object is bigger than the cache may hold, so it
streams through uncached.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from aiohttp import web

SIZE = 1 << 30
CHUNK = b"\xa5" * (1 << 20)


def _rss_kib(pid: int, field: str) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE)
    assert match, status
    return int(match.group(1))


@pytest.fixture
async def big_origin() -> AsyncIterator[int]:
    async def big(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Length": str(SIZE), "Cache-Control": "max-age=600"}
        )
        await response.prepare(request)
        for _ in range(SIZE // len(CHUNK)):
            await response.write(CHUNK)
        await response.write_eof()
        return response

    async def small(_: web.Request) -> web.Response:
        return web.Response(text="warm")

    app = web.Application()
    app.router.add_get("/big", big)
    app.router.add_get("/small", small)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield int(runner.addresses[0][1])
    await runner.cleanup()


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_one_gigabyte_streams_through_in_constant_memory(
    big_origin: int, tmp_path: Path
) -> None:
    config = tmp_path / "edge.yaml"
    config.write_text(
        "listen: 127.0.0.1:0\n"
        "admin_listen: null\n"
        "cache: {max_size: 256MiB, max_object_size: 64MiB}\n"
        f"origins: {{app: {{url: 'http://127.0.0.1:{big_origin}'}}}}\n"
        "default_behavior: {origin: app}\n"
    )
    edge = subprocess.Popen(
        [sys.executable, "-m", "edgesim.cli", "serve", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert edge.stdout is not None
        url = re.search(r"(http://\S+)", edge.stdout.readline())
        assert url, edge.stderr.read() if edge.stderr else ""
        async with httpx.AsyncClient(timeout=60) as client:
            assert (await client.get(f"{url.group(1)}/small")).text == "warm"
            baseline = _rss_kib(edge.pid, "VmRSS")
            received = 0
            async with client.stream("GET", f"{url.group(1)}/big") as response:
                assert response.headers["x-cache"] == "Miss from cloudfront"
                async for chunk in response.aiter_raw():
                    received += len(chunk)
        peak = _rss_kib(edge.pid, "VmHWM")
        print(f"edge RSS {baseline / 1024:.1f} MiB before, peak {peak / 1024:.1f} MiB after 1 GiB")
        assert received == SIZE
        assert peak - baseline < 16 * 1024, f"edge grew {(peak - baseline) / 1024:.1f} MiB"
    finally:
        edge.send_signal(signal.SIGTERM)
        edge.communicate(timeout=15)
