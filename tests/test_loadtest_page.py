"""The HTML report renders in a real headless Chromium: plots drawn, nothing fetched, no errors."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

from playwright.async_api import Browser

from edgesim.loadtest import Options, loadtest
from tests.conftest import RecordingOrigin


async def test_the_html_report_draws_its_plots_offline(
    browser: Browser, origin: RecordingOrigin, tmp_path: Path
) -> None:
    origin.reply("/a", b"x" * 2000, Cache_Control="max-age=60")
    origin.reply("/b", b"y" * 500, Cache_Control="no-store")
    config = tmp_path / "edge.yaml"
    config.write_text(
        f"origins:\n  app: {{url: '{origin.url}'}}\n"
        "default_behavior: {origin: app, cache: CachingOptimized}\n"
    )
    html_path = tmp_path / "report.html"
    options = Options(config=config, urls=("/a", "/b"), concurrency=3, duration=2.2, ceiling=0)
    doc = await asyncio.to_thread(
        loadtest, options, html_path=html_path, out=io.StringIO(), progress=False
    )
    assert len(doc["timeline"]) >= 2

    tab = await browser.new_page()
    problems: list[str] = []
    requests: list[str] = []
    tab.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda e: problems.append(str(e)))
    tab.on("request", lambda r: requests.append(r.url))
    await tab.goto(html_path.as_uri())
    assert requests == [html_path.as_uri()]  # self-contained: nothing else fetched
    assert problems == []
    assert (await tab.title()).startswith("edgesim loadtest")

    for plot in ("latency-over-time", "throughput-over-time", "latency-distribution"):
        box = await tab.locator(f"#{plot}").bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 150, plot
    # Drawn content: lines with real extent, and bars.
    for series in ("p50", "p90", "p99"):
        line = tab.locator(f'#latency-over-time polyline[data-series="{series}"]')
        box = await line.bounding_box()
        assert box is not None and box["width"] > 100, series
    for series in ("req/s", "hit ratio"):
        line = tab.locator(f'#throughput-over-time polyline[data-series="{series}"]')
        assert await line.count() == 1, series
        box = await line.bounding_box()
        assert box is not None and box["width"] > 100, series
    bars = tab.locator("#latency-distribution rect.bar")
    assert await bars.count() >= 1
    heights = [await bars.nth(i).get_attribute("height") for i in range(await bars.count())]
    assert max(float(h or 0) for h in heights) > 50
    text = await tab.locator("table").inner_text()
    assert "hit ratio" in text and "p99" in text
