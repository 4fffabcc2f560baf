"""The demo's Vicuna-80 study on its style-vs-substance page: the MMLU chart holds at least 8 of its 9
models, every point a published score labelled as such with its source, seen in headless Chromium."""

import pytest
from django.urls import reverse

from inference_workers.substance.published import import_file
from ratings.actions.snapshots import do_compute_snapshots
from ratings.demo.studies import PUBLISHED_BENCHMARKS, PUBLISHED_SCORES, register_base_models
from ratings.demo.vicuna80_votes import load_vicuna80_votes
from tests.analysis.test_screenshots import researcher_page
from tests.chromium import CHROMIUM, SCREENSHOTS


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium")
def test_the_vicuna80_mmlu_chart_shows_eight_models_from_published_data(live_server, researcher_client):
    study = load_vicuna80_votes().study
    register_base_models()  # as the demo does: the LLaMA bases with their published scores, for lineage
    import_file(PUBLISHED_SCORES, only_benchmarks=PUBLISHED_BENCHMARKS, only_known_models=True)
    do_compute_snapshots(study)
    with researcher_page(live_server, researcher_client) as page:
        page.goto(live_server.url + reverse("dashboard:substance", args=[study.slug]))
        chart = page.locator("svg.chart").first
        assert "(MMLU (5-shot))" in chart.locator("title").first.text_content()  # the default: most models
        notes = [t for t in chart.locator("rect > title, circle > title").all_text_contents() if "not rated" not in t]
        assert len(notes) >= 8, notes
        assert all(n.startswith("published: ") for n in notes)  # labelled as published, with the source
        # Lineage: Guanaco-13B and Vicuna-13B each get an arrow from LLaMA-13B (unrated, on the axis).
        assert chart.locator("line.lineage").count() == 5  # Guanaco 7/13/33/65B and Vicuna-13B
        bases = chart.locator("circle > title").all_text_contents()
        assert "LLaMA-13B: not rated in this study" in bases
        labels = chart.locator("text").all_text_contents()
        assert not any("Bard" in label or "bard" in label for label in labels)  # no proxy shown as Bard
        main = page.locator("main").inner_text()
        assert "1 of 2 published values" in main  # where sources disagree, the page says so
        shot = SCREENSHOTS / "dashboard-substance-mmlu.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
