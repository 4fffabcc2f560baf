"""The rater's whole path in headless Chromium: Prolific link, consent, ten pairs by keyboard, the redirect home."""

import pytest
from django.urls import reverse

from ratings.models import Assignment, Rater, Recruitment
from tests.chromium import SCREENSHOTS
from tests.ratings.rating_setup import rating_study

PROLIFIC_COMPLETE = "https://app.prolific.com/submissions/complete"
KEYS = "abtx"


def rate_as(browser, base_url: str, study, pid: str, screenshot: str | None = None, viewport=None) -> dict:
    """One Prolific participant's session; returns {question text: left answer text} as the browser showed it."""
    context = browser.new_context(viewport=viewport or {"width": 1280, "height": 900})
    page = context.new_page()
    entry = reverse("rater:enter", args=[study.token])
    page.goto(f"{base_url}{entry}?PROLIFIC_PID={pid}&STUDY_ID=prolific-study&SESSION_ID=s-{pid}")
    assert "Before you start" in page.content()
    page.check("input[name=consent]")
    with page.expect_navigation():
        page.click("#start")
    shown = {}
    for i in range(study.comparisons_per_rater):
        assert page.inner_text("#progress") == f"{i + 1} of {study.comparisons_per_rater}"
        question = page.locator(".prompt p").first.inner_text().strip()
        shown[question] = page.locator(".answer-body").first.inner_text().strip()
        if screenshot and i == 0:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / screenshot), full_page=True)
            boxes = [page.locator(".answer").nth(n).bounding_box() for n in (0, 1)]
            narrow = (viewport or {"width": 1280})["width"] < 700
            # Side by side on a desktop, stacked on a phone.
            assert (boxes[0]["x"] == boxes[1]["x"]) == narrow
        if i + 1 < study.comparisons_per_rater:
            with page.expect_navigation():
                page.keyboard.press(KEYS[i % 4])
            continue
        # Prolific itself is out of reach from here: the browser's request to it is the evidence.
        with page.expect_request(lambda r: r.url.startswith(PROLIFIC_COMPLETE), timeout=120_000) as prolific:
            page.keyboard.press(KEYS[i % 4])
    assert prolific.value.url == f"{PROLIFIC_COMPLETE}?cc={study.completion_code}"
    assert prolific.value.is_navigation_request()
    context.close()
    return shown


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_prolific_raters_rate_ten_pairs_by_keyboard_and_return_with_the_code(chromium, live_server):
    study = rating_study(
        n_prompts=10,
        recruitment=Recruitment.PROLIFIC,
        comparisons_per_rater=10,
        votes_per_comparison=3,
        consent_text="This is a research study. You may stop at any time.",
        completion_redirect_url=PROLIFIC_COMPLETE,
    )
    first = rate_as(chromium, live_server.url, study, "pid-one", screenshot="rating-page.png")
    assert (SCREENSHOTS / "rating-page.png").stat().st_size > 10_000
    rater = Rater.objects.get(study=study, external_id="pid-one")
    assert rater.completed_at is not None and rater.votes.count() == 10
    # The keys chose left, right, tie, both bad in turn; stored in terms of A and B.
    for n, vote in enumerate(rater.votes.select_related("assignment").order_by("pk")):
        expected = ["left", "right", "tie", "both_bad"][n % 4]
        if expected in ("left", "right"):
            expected = "a" if (expected == "left") == vote.assignment.left_is_a else "b"
        assert vote.winner == expected
    # The same ten pairs for two more raters: left / right is drawn anew for each of them.
    others = [
        rate_as(chromium, live_server.url, study, "pid-two", screenshot="rating-page-phone.png",
                viewport={"width": 390, "height": 844}),
        rate_as(chromium, live_server.url, study, "pid-three"),
    ]  # fmt: skip
    assert all(set(o) == set(first) for o in others)
    assert any(o[q] != first[q] for o in others for q in first)
    # What the browser showed on the left is what each assignment stored.
    shown = dict(zip(["pid-one", "pid-two", "pid-three"], [first, *others], strict=True))
    for a in Assignment.objects.filter(rater__study=study).select_related(
        "rater", "comparison__prompt", "comparison__response_a", "comparison__response_b"
    ):
        left = a.comparison.response_a if a.left_is_a else a.comparison.response_b
        assert shown[a.rater.external_id][a.comparison.prompt.text].split("\n")[0] == left.text.split("\n")[0]
    assert Assignment.objects.filter(rater__study=study, status="voted").count() == 30
