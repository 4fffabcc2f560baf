"""A fact-check rater in headless Chromium: a verdict on each answer by keyboard, Enter to submit."""

import pytest
from django.urls import reverse

from ratings.models import Rater, Vote
from tests.chromium import SCREENSHOTS
from tests.ratings.rating_setup import fact_check_study

# (key for the left answer, key for the right answer, verdicts as shown) per item.
ITEMS = [("1", "6", ("correct", "wrong")), ("2", "4", ("partly", "correct")), ("3", "5", ("wrong", "partly"))]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_rater_judges_three_pairs_with_the_keyboard(chromium, live_server):
    study = fact_check_study(n_prompts=3, comparisons_per_rater=3, consent_text="You may stop at any time.")
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(live_server.url + reverse("rater:enter", args=[study.token]))
    page.check("input[name=consent]")
    with page.expect_navigation():
        page.click("#start")
    for i, (left_key, right_key, _) in enumerate(ITEMS):
        assert page.inner_text("#progress") == f"{i + 1} of 3"
        assert "Canberra" in page.inner_text(".references")
        page.keyboard.press(left_key)
        # One verdict is not enough: Enter leaves the rater on the same pair.
        page.keyboard.press("Enter")
        page.wait_for_timeout(300)
        assert page.inner_text("#progress") == f"{i + 1} of 3"
        page.keyboard.press(right_key)
        if i == 0:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / "fact-check-page.png"), full_page=True)
        with page.expect_navigation():
            page.keyboard.press("Enter")
    assert study.completion_code in page.content()
    context.close()
    assert (SCREENSHOTS / "fact-check-page.png").stat().st_size > 10_000

    rater = Rater.objects.get(study=study)
    votes = list(Vote.objects.filter(rater=rater).select_related("assignment").order_by("pk"))
    assert len(votes) == 3
    for vote, (_, _, (left, right)) in zip(votes, ITEMS, strict=True):
        assert vote.winner == ""
        assert (vote.verdict_a, vote.verdict_b) == ((left, right) if vote.assignment.left_is_a else (right, left))


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_fact_check_page_stacks_on_a_phone(chromium, live_server):
    study = fact_check_study(n_prompts=1)
    context = chromium.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.goto(live_server.url + reverse("rater:enter", args=[study.token]))
    boxes = [page.locator(".answer").nth(n).bounding_box() for n in (0, 1)]
    assert boxes[0]["x"] == boxes[1]["x"] and boxes[0]["y"] < boxes[1]["y"]
    # Tapping a verdict works as well as its key.
    page.get_by_label("Correct").first.check()
    page.locator("input[name=verdict_right][value=wrong]").check()
    page.screenshot(path=str(SCREENSHOTS / "fact-check-page-phone.png"), full_page=True)
    with page.expect_navigation():
        page.click("button[type=submit][data-key=enter]")
    assert Vote.objects.filter(comparison__study=study).count() == 1
    context.close()
