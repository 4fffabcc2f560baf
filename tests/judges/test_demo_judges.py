"""The demo's real judges: the signal setup_demo sends loads the five PRD reviewers onto the Vicuna-80 study,
and their dashboard tab shows position bias at a glance (screenshot for the README tour)."""

import pytest
from django.urls import reverse

from judges.charts import BIASED
from judges.models import Judge, JudgeVerdict
from ratings.actions.snapshots import do_compute_snapshots
from ratings.demo.vicuna80_votes import load_vicuna80_votes
from ratings.management.commands.setup_demo import Command as SetupDemo
from ratings.signals import vicuna80_votes_loaded
from tests.analysis.test_screenshots import researcher_page
from tests.chromium import CHROMIUM, SCREENSHOTS


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium")
def test_the_demo_loads_five_real_judges_and_their_tab_shows_position_bias(live_server, researcher_client):
    study = load_vicuna80_votes().study
    vicuna80_votes_loaded.send(sender=SetupDemo, study=study)  # as setup_demo does
    vicuna80_votes_loaded.send(sender=SetupDemo, study=study)  # a second run adds nothing
    assert JudgeVerdict.objects.filter(study=study).count() == 8160
    assert set(Judge.objects.values_list("display_name", flat=True)) >= {"GPT-4 as judge", "Bard as judge"}
    do_compute_snapshots(study)
    with researcher_page(live_server, researcher_client) as page:
        page.goto(live_server.url + reverse("dashboard:overview", args=[study.slug]))
        page.get_by_role("link", name="LLM judges").click()
        assert page.url.endswith(reverse("judges:dashboard", args=[study.slug]))
        text = page.locator("main").inner_text()
        for name in ("GPT-4 as judge", "GPT-3.5 as judge", "Claude as judge", "Bard as judge", "Vicuna-13B as judge"):
            assert name in text
        bias = page.locator("svg.chart").first
        # Four of the five lean to one side with an interval that excludes 0.5 (GPT-3.5 does not).
        assert bias.locator(f'rect[fill="{BIASED}"]').count() == 4
        assert "81% first (1543 decisive)" in bias.inner_html()
        shot = SCREENSHOTS / "dashboard-llm-judges.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        # The README tour's: the top of the page (position bias, agreement, the style chart).
        tour = SCREENSHOTS / "tour-llm-judges.png"
        page.screenshot(path=str(tour), full_page=True, clip={"x": 0, "y": 380, "width": 1280, "height": 1250})
        assert tour.stat().st_size > 10_000
