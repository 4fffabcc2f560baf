"""One headless Chromium per browser-test module."""

from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from tests.chromium import launch


@pytest.fixture(scope="module")
def chromium():
    if not Path("/usr/bin/chromium").exists():
        pytest.fail("/usr/bin/chromium is missing: apt-get install chromium")
    # Playwright's sync API keeps an event loop in this thread; the ORM calls here are still synchronous.
    with pytest.MonkeyPatch.context() as mp, sync_playwright() as p:
        mp.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "1")
        browser = launch(p)
        yield browser
        browser.close()
