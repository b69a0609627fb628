"""Take the README's screenshot of the inspector: docs/inspector.png.

    python docs/screenshot.py [--out docs/inspector.png]

Starts the embedded demo (its app origin, the example functions) on
ephemeral loopback ports, sends a few requests through the edge, opens the
inspector in headless Chromium (Debian's /usr/bin/chromium, driven by
Playwright), picks the first request for ``/`` (a miss that ran both
functions and went to the origin) and saves a screenshot. Everything stops
when the script ends.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
from pathlib import Path

import httpx
from aiohttp import web
from playwright.async_api import async_playwright

from edgesim.config.schema import Listen
from edgesim.demo import demo_app, demo_config
from edgesim.service import Edge

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TRAFFIC = ["/", "/", "/about-us", "/static/site.css", "/api/echo?x=1", "/static/site.css", "/nope"]


async def main(out: Path) -> None:
    runner = web.AppRunner(demo_app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    config = dataclasses.replace(
        demo_config(int(runner.addresses[0][1])),
        listen=Listen("127.0.0.1", 0),
        admin_listen=Listen("127.0.0.1", 0),
    )
    edge = Edge(config)
    await edge.start()
    try:
        async with httpx.AsyncClient() as client:
            for path in TRAFFIC:
                await client.get(edge.url + path, headers={"User-Agent": "curl/8.5.0"})
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = await browser.new_page(viewport={"width": 1440, "height": 1250})
            await page.goto(edge.admin_url + "/inspector")
            await page.wait_for_selector("#live.on")
            await page.locator("#request-list tbody tr", has_text="Miss").last.click()
            await page.wait_for_selector('#detail .step[data-stage="viewer-response"]')
            await page.screenshot(path=str(out))
            await browser.close()
    finally:
        await edge.stop(grace=1.0)
        await runner.cleanup()
    print(f"wrote {out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("inspector.png"))
    asyncio.run(main(parser.parse_args().out))
