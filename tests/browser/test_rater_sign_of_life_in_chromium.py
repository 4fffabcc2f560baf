"""Issue 14, finding 1, in Chromium: the rating page's script extends the short first lease on the rater's
first interaction (one POST to the item's alive URL), and only then."""

import time

import pytest
from django.urls import reverse

from ratings.models import Assignment, Rater
from tests.ratings.rating_setup import rating_study


def lease_seconds(rater: Rater) -> float:
    lease = Assignment.objects.get(rater=rater, status="leased")
    return (lease.lease_expires_at - lease.leased_at).total_seconds()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_first_interaction_extends_the_short_first_lease(chromium, live_server):
    study = rating_study(n_prompts=3, comparisons_per_rater=3, lease_seconds=600)
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    alive_posts = []
    page.on("request", lambda r: alive_posts.append(r.url) if "/alive/" in r.url else None)
    page.goto(live_server.url + reverse("rater:enter", args=[study.token]))
    page.wait_for_selector("#vote-form")
    rater = Rater.objects.get(study=study)
    assert lease_seconds(rater) <= 90
    page.wait_for_timeout(300)
    assert alive_posts == []  # loading the page is not a sign of life
    page.mouse.move(200, 300)
    page.mouse.move(420, 380)
    page.mouse.wheel(0, 200)
    # Wait on progress: the lease row changes once the POST lands (generous ceiling, a busy machine).
    deadline = time.monotonic() + 30
    while lease_seconds(rater) <= 90 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert lease_seconds(rater) == 600
    assert len(alive_posts) == 1  # once per page, however much the rater moves
    context.close()
