"""Headless Chromium screenshots of every dashboard page with the Vicuna-80 votes loaded, and of a fact-check one."""

from contextlib import contextmanager

import pytest
from django.urls import reverse

from ratings.actions.snapshots import do_compute_snapshots
from ratings.demo.vicuna80_votes import load_vicuna80_votes
from tests.chromium import CHROMIUM, SCREENSHOTS, launch

PAGES = ("overview", "substance", "matrix", "activity", "raters")


@contextmanager
def researcher_page(live_server, researcher_client):
    """A Chromium page logged in as the researcher, at desktop size."""
    from playwright.sync_api import sync_playwright

    session = researcher_client.cookies["sessionid"].value
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = launch(p)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.add_cookies([{"name": "sessionid", "value": session, "url": live_server.url}])
        yield context.new_page()
        browser.close()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium")
def test_screenshots_of_the_dashboard_pages(live_server, researcher_client):
    study = load_vicuna80_votes().study
    do_compute_snapshots(study)
    outside = []
    with researcher_page(live_server, researcher_client) as page:
        # No page may fetch anything from outside the site (no CDN).
        page.on("request", lambda r: None if r.url.startswith(live_server.url) else outside.append(r.url))
        for name in PAGES:
            page.goto(live_server.url + reverse(f"dashboard:{name}", args=[study.slug]))
            assert page.locator("h1").inner_text() == study.title
            assert "7040 votes" in page.locator("main").inner_text()
            assert page.locator("svg.chart").count() >= (0 if name == "raters" else 1)
            shot = SCREENSHOTS / f"dashboard-{name}.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
    assert outside == []


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium")
def test_screenshot_of_a_fact_check_dashboard(live_server, researcher_client):
    from tests.analysis.test_fact_check_results import judged_study

    study = judged_study()
    do_compute_snapshots(study)
    with researcher_page(live_server, researcher_client) as page:
        page.goto(live_server.url + reverse("dashboard:overview", args=[study.slug]))
        assert "8 fact-check votes" in page.locator("main").inner_text()
        assert page.locator("svg.chart").count() == 1
        shot = SCREENSHOTS / "dashboard-fact-check.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
