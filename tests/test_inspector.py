"""The inspector page in a real headless Chromium, against a real edge, origin and functions.

The page is served by the admin listener; requests go through the edge while
the page is open, and the test watches them arrive, opens one, and
invalidates a cached object from the page, as a developer would.
"""

from __future__ import annotations

from pathlib import Path

import httpx
from playwright.async_api import Browser, Page, expect

from edgesim.config.schema import FunctionAssociation, FunctionConfig
from edgesim.service import Edge
from tests.conftest import EdgeFactory, RecordingOrigin, behavior

HANDLERS = Path(__file__).parent / "fixtures" / "inspector"
WAIT_MS = 10_000


def _functions(*names: str) -> dict[str, FunctionConfig]:
    return {n: FunctionConfig(n, "python3.11", HANDLERS, f"handlers.{n}") for n in names}


async def _open(browser: Browser, edge: Edge) -> tuple[Page, list[str]]:
    """The inspector in a new tab, live; and every URL the page fetches."""
    page = await browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(WAIT_MS)
    fetched: list[str] = []
    page.on("request", lambda request: fetched.append(request.url))
    await page.goto(f"{edge.admin_url}/inspector")
    await expect(page.locator("#live")).to_have_text("live")
    return page, fetched


async def test_a_request_appears_live_opens_its_trip_and_its_object_can_be_invalidated(
    browser: Browser, origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient
) -> None:
    origin.reply("/new", "new page", Cache_Control="max-age=60", Content_Type="text/plain")
    edge = await make_edge(
        default=behavior(
            functions=(
                ("viewer-request", FunctionAssociation("log_and_rewrite")),
                ("viewer-response", FunctionAssociation("stamp_response")),
            )
        ),
        functions=_functions("log_and_rewrite", "stamp_response"),
    )
    page, fetched = await _open(browser, edge)
    await expect(page.locator("#request-list tbody tr")).to_have_count(0)

    miss = await client.get(f"{edge.url}/old")
    row = page.locator(f'#request-list tr[data-id="{miss.headers["x-amz-cf-id"]}"]')
    await expect(row).to_contain_text("/old")
    await expect(row).to_contain_text("Miss")
    await row.click()

    detail = page.locator("#detail")
    await expect(detail.locator("h2")).to_have_text("GET /old")
    hook = detail.locator('.step[data-stage="viewer-request"]')
    await expect(hook).to_contain_text("log_and_rewrite")
    await expect(hook).to_contain_text("continued with the request")
    await expect(hook.locator("ul.changes li.changed")).to_have_text("~ uri: /old \u2192 /new")
    await expect(hook.locator("ul.changes li.added")).to_have_text("+ X-Traced: yes")
    await expect(hook.locator("pre.logs")).to_contain_text("rewriting /old")
    await expect(hook.locator("pre.report")).to_contain_text("REPORT RequestId:")
    await expect(hook).to_contain_text("Init Duration")
    cache = detail.locator('.step[data-stage="cache"]')
    await expect(cache.locator("h3")).to_have_text("cache \u2014 Miss")
    await expect(cache).to_contain_text("stored for 60 s: max-age=60")
    await expect(detail.locator('.step[data-stage="origin"] h3')).to_contain_text("200")
    await expect(detail.locator('.step[data-stage="viewer-response"]')).to_contain_text(
        "+ X-Stamped: 1"
    )

    hit = await client.get(f"{edge.url}/old")
    newest = page.locator("#request-list tbody tr").first
    await expect(newest).to_have_attribute("data-id", hit.headers["x-amz-cf-id"])
    await expect(newest).to_contain_text("Hit")

    await page.click('nav button[data-tab="cache"]')
    entry = page.locator('#cache-list tr[data-path="/new"]')
    await expect(entry).to_contain_text("text/plain")
    await entry.locator("button.invalidate").click()
    await expect(page.locator("#invalidate-result")).to_have_text("/new: 1 removed")
    await expect(entry).to_have_count(0)
    again = await client.get(f"{edge.url}/old")
    assert again.headers["x-cache"] == "Miss from cloudfront"

    await page.click('nav button[data-tab="functions"]')
    stamp = page.locator('#function-list tr[data-function="stamp_response"]')
    await expect(stamp.locator("td").nth(2)).to_have_text("3")  # invocations
    await expect(stamp.locator("td").nth(5)).to_have_text("1")  # cold starts
    await expect(stamp.locator("td").nth(9)).to_have_text("1")  # warm environments

    # Nothing the page loaded came from anywhere but the admin listener.
    assert fetched and all(url.startswith(edge.admin_url + "/") for url in fetched), fetched


async def test_filters_by_status_x_cache_and_path(
    browser: Browser, origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient
) -> None:
    origin.reply("/ok", "ok", Cache_Control="max-age=60")
    edge = await make_edge()
    for path in ("/ok", "/ok", "/missing", "/api/missing"):
        await client.get(f"{edge.url}{path}")
    page, _ = await _open(browser, edge)
    rows = page.locator("#request-list tbody tr:visible")
    await expect(rows).to_have_count(4)
    await page.select_option("#f-status", "4xx")
    await expect(rows).to_have_count(2)
    await expect(page.locator("#count")).to_have_text("2 of 4 requests")
    await page.fill("#f-path", "/api/")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("/api/missing")
    await page.fill("#f-path", "")
    await page.select_option("#f-status", "")
    await page.select_option("#f-xcache", "Hit")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("/ok")
    # New requests that do not match arrive hidden; matching ones show.
    await client.get(f"{edge.url}/missing")
    await expect(page.locator("#count")).to_have_text("1 of 5 requests")
    await client.get(f"{edge.url}/ok")
    await expect(rows).to_have_count(2)


async def test_what_requests_carry_is_shown_as_text_never_run(
    browser: Browser, origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient
) -> None:
    edge = await make_edge()
    sneaky = "<img src=x onerror=\"document.title='pwned'\">"
    response = await client.get(f"{edge.url}/x", headers={"User-Agent": sneaky})
    page, _ = await _open(browser, edge)
    title = await page.title()
    await page.click(f'tr[data-id="{response.headers["x-amz-cf-id"]}"]')
    await page.click("#detail details summary >> text=viewer request headers")
    await expect(page.locator("#detail table.headers td", has_text=sneaky)).to_have_count(1)
    assert await page.locator("#detail img").count() == 0
    assert await page.title() == title


async def test_a_request_no_longer_kept_says_so(
    browser: Browser, origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient
) -> None:
    from edgesim.config.schema import InspectorSettings

    edge = await make_edge(settings={"inspector": InspectorSettings(1)})
    first = await client.get(f"{edge.url}/a")
    page, _ = await _open(browser, edge)
    await client.get(f"{edge.url}/b")  # pushes /a out of the ring; the page still lists it
    await expect(page.locator("#request-list tbody tr")).to_have_count(2)
    await page.click(f'tr[data-id="{first.headers["x-amz-cf-id"]}"]')
    await expect(page.locator("#detail")).to_contain_text("the last 1 requests are kept")


async def test_the_readme_screenshot_script_makes_a_png(browser: Browser, tmp_path: Path) -> None:
    """docs/screenshot.py runs the demo, opens the inspector and saves the picture."""
    import asyncio
    import sys

    del browser  # only here to require (or skip without) Chromium, like the other tests
    out = tmp_path / "inspector.png"
    script = Path(__file__).resolve().parent.parent / "docs" / "screenshot.py"
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(script), "--out", str(out), stdout=asyncio.subprocess.PIPE
    )
    stdout, _ = await asyncio.wait_for(process.communicate(), 50)
    assert process.returncode == 0
    assert stdout.decode().strip() == f"wrote {out}"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
