"""Headless Chromium for tests that check a page in a real browser.

Debian's chromium is driven by Playwright's Python API; Playwright's own
browser download is never used. Without /usr/bin/chromium the browser tests
are skipped with a reason, unless EDGESIM_REQUIRE_BROWSER is set (CI sets it),
in which case they fail: a page that was never rendered is not tested.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.async_api import Browser

__all__ = ["CHROMIUM", "CHROMIUM_FLAGS", "browser"]

CHROMIUM = Path("/usr/bin/chromium")
# Headless, as root, on a machine whose network is closed: without the
# background-networking flags Chromium keeps dialling Google's hosts.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """A fresh headless Chromium, closed after the test."""
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} not found (Debian package chromium)"
        if os.environ.get("EDGESIM_REQUIRE_BROWSER"):
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS
        )
        try:
            yield chromium
        finally:
            await chromium.close()
