"""The browser fixture renders and clicks through a page served by a real server."""

from __future__ import annotations

from aiohttp import web
from playwright.async_api import Browser

_PAGE = """<!doctype html><title>before</title>
<button id="go"
  onclick="fetch('/clicked').then(r => r.text()).then(t => document.title = t)">go</button>
"""


async def test_chromium_renders_and_clicks_a_loopback_page(browser: Browser) -> None:
    async def page(_: web.Request) -> web.Response:
        return web.Response(text=_PAGE, content_type="text/html")

    async def clicked(_: web.Request) -> web.Response:
        return web.Response(text="after")

    app = web.Application()
    app.router.add_get("/", page)
    app.router.add_get("/clicked", clicked)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        tab = await browser.new_page()
        await tab.goto(f"http://127.0.0.1:{port}/")
        assert await tab.title() == "before"
        await tab.click("#go")
        await tab.wait_for_function("document.title === 'after'")
        assert await tab.title() == "after"
    finally:
        await runner.cleanup()
