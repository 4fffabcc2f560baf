"""The rater's path without JavaScript: enter, consent, rate, pause, resume, finish."""

import re

import pytest
from django.urls import reverse

from ratings.models import Assignment, Rater, Recruitment, Vote
from tests.ratings.rating_setup import rating_study

pytestmark = pytest.mark.django_db


def vote_form(html: str) -> str:
    return re.search(r'<form method="post" action="([^"]+/vote/[^"]+)"', html).group(1)


def test_open_link_rater_consents_rates_and_gets_the_code(client):
    study = rating_study(n_prompts=3, comparisons_per_rater=3, consent_text="You may stop at any time.")
    page = client.get(reverse("rater:enter", args=[study.token]), follow=True)
    assert "You may stop at any time." in page.content.decode()
    rater = Rater.objects.get(study=study)
    page = client.post(reverse("rater:consent", args=[rater.token]), {"consent": "yes"}, follow=True)
    for i in range(3):
        html = page.content.decode()
        assert f"{i + 1} of 3" in html
        page = client.post(vote_form(html), {"choice": "left", "reason": "clearer"}, follow=True)
    assert study.completion_code in page.content.decode()
    assert Vote.objects.filter(rater=rater).count() == 3
    rater.refresh_from_db()
    assert rater.completed_at is not None


def test_the_same_prolific_id_resumes_the_same_rater_and_never_double_counts(client):
    study = rating_study(n_prompts=4, recruitment=Recruitment.PROLIFIC, comparisons_per_rater=4)
    url = reverse("rater:enter", args=[study.token]) + "?PROLIFIC_PID=p1&STUDY_ID=s1&SESSION_ID=x1"
    page = client.get(url, follow=True)
    first = vote_form(page.content.decode())
    page = client.post(first, {"choice": "tie"}, follow=True)
    # Resubmitting the same form (a double click, a back button) records nothing more.
    client.post(first, {"choice": "left"})
    # A new browser, same Prolific id: the same rater, at the same place.
    from django.test import Client

    other = Client()
    page = other.get(url.replace("SESSION_ID=x1", "SESSION_ID=x2"), follow=True)
    assert "2 of 4" in page.content.decode()
    rater = Rater.objects.get(study=study)
    assert rater.platform == Recruitment.PROLIFIC and rater.platform_session_id == "x2"
    assert Vote.objects.filter(rater=rater).count() == 1


def test_prolific_study_refuses_a_link_without_prolific_parameters(client):
    study = rating_study(n_prompts=1, recruitment=Recruitment.PROLIFIC)
    page = client.get(reverse("rater:enter", args=[study.token]))
    assert page.status_code == 400
    assert not Rater.objects.exists()


def test_mturk_preview_creates_no_rater_and_completion_posts_to_mturk(client):
    study = rating_study(n_prompts=1, recruitment=Recruitment.MTURK, comparisons_per_rater=1)
    enter = reverse("rater:enter", args=[study.token])
    page = client.get(enter + "?assignmentId=ASSIGNMENT_ID_NOT_AVAILABLE&hitId=h1")
    assert "Accept the HIT" in page.content.decode()
    assert not Rater.objects.exists()
    # MTurk shows the task in an iframe on its own site: allowed there, and only there.
    assert "frame-ancestors https://worker.mturk.com https://workersandbox.mturk.com" in page["Content-Security-Policy"]
    page = client.get(
        enter + "?workerId=W1&assignmentId=A1&hitId=h1&turkSubmitTo=https://workersandbox.mturk.com", follow=True
    )
    page = client.post(vote_form(page.content.decode()), {"choice": "right"}, follow=True)
    html = page.content.decode()
    assert 'action="https://workersandbox.mturk.com/mturk/externalSubmit"' in html
    assert 'name="assignmentId" value="A1"' in html


def test_mturk_submit_address_must_be_mturk(client):
    study = rating_study(n_prompts=1, recruitment=Recruitment.MTURK)
    page = client.get(
        reverse("rater:enter", args=[study.token]) + "?workerId=W1&assignmentId=A1&turkSubmitTo=https://evil.example"
    )
    assert page.status_code == 400


def test_invite_link_enters_as_the_invited_rater(client):
    from ratings.actions.raters import do_invite_raters

    study = rating_study(n_prompts=1, recruitment=Recruitment.INVITE)
    (invited,) = do_invite_raters(study, 1)
    enter = reverse("rater:enter", args=[study.token])
    assert client.get(enter).status_code == 400
    assert client.get(enter + "?invite=not-a-token").status_code == 404
    page = client.get(enter + f"?invite={invited.token}")
    assert page.url == reverse("rater:rate", args=[invited.token])


def test_session_cookie_remembers_an_anonymous_rater(client):
    study = rating_study(n_prompts=2)
    client.get(reverse("rater:enter", args=[study.token]))
    client.get(reverse("rater:enter", args=[study.token]))
    assert Rater.objects.filter(study=study).count() == 1


def test_pause_returns_the_lease_and_resume_continues(client):
    study = rating_study(n_prompts=3, comparisons_per_rater=3)
    page = client.get(reverse("rater:enter", args=[study.token]), follow=True)
    rater = Rater.objects.get(study=study)
    assert Assignment.objects.get(rater=rater).status == "leased"
    page = client.post(reverse("rater:pause", args=[rater.token]), follow=True)
    assert "0 of 3" in page.content.decode()
    assert Assignment.objects.get(rater=rater).status == "expired"
    assert Assignment.objects.get(rater=rater).comparison.claim_count == 0
    page = client.get(reverse("rater:rate", args=[rater.token]))
    assert "1 of 3" in page.content.decode()


def test_no_more_work_page_when_every_comparison_is_full(client):
    study = rating_study(n_prompts=1, votes_per_comparison=1, comparisons_per_rater=5)
    first = client.get(reverse("rater:enter", args=[study.token]), follow=True)
    client.post(vote_form(first.content.decode()), {"choice": "left"})
    page = client.get(reverse("rater:rate", args=[Rater.objects.get().token]))
    assert "No more pairs right now" in page.content.decode()
    from django.test import Client

    late = Client().get(reverse("rater:enter", args=[study.token]), follow=True)
    assert "No more pairs right now" in late.content.decode()


def test_minimum_time_on_page_is_enforced_by_the_server(client):
    study = rating_study(n_prompts=1, min_seconds_on_page=30)
    page = client.get(reverse("rater:enter", args=[study.token]), follow=True)
    assert 'data-wait-ms="' in page.content.decode()
    page = client.post(vote_form(page.content.decode()), {"choice": "left"}, follow=True)
    assert "take a little more time" in page.content.decode()
    assert not Vote.objects.exists()


def test_follow_up_answers_are_stored_in_terms_of_a_and_b(client):
    study = rating_study(
        n_prompts=1, follow_up_questions=[{"key": "factual", "text": "Which is more factually accurate?"}]
    )
    page = client.get(reverse("rater:enter", args=[study.token]), follow=True)
    html = page.content.decode()
    assert "Which is more factually accurate?" in html
    client.post(vote_form(html), {"choice": "left", "q_factual": "right"})
    vote = Vote.objects.get()
    left_is_a = vote.assignment.left_is_a
    assert vote.winner == ("a" if left_is_a else "b")
    assert vote.answers == {"factual": "b" if left_is_a else "a"}


def test_closed_study_says_so(client):
    study = rating_study(n_prompts=1, status="closed")
    page = client.get(reverse("rater:enter", args=[study.token]))
    assert "not open" in page.content.decode()


def test_a_rater_who_fails_the_qualification_round_stops_and_may_still_finish(client):
    study = rating_study(n_prompts=4, n_gold=2, qualification_items=2, comparisons_per_rater=6)
    page = client.get(reverse("rater:enter", args=[study.token]), follow=True)
    for _ in range(2):
        # Both qualification items, answered against the known better answer.
        assignment = Assignment.objects.get(rater__study=study, status="leased")
        wrong = "right" if assignment.left_is_a else "left"
        page = client.post(vote_form(page.content.decode()), {"choice": wrong}, follow=True)
    html = page.content.decode()
    assert "the study ends here for you" in html
    rater = Rater.objects.get(study=study)
    assert rater.excluded and Vote.objects.filter(rater=rater).count() == 2
    page = client.get(reverse("rater:done", args=[rater.token]))
    assert study.completion_code in page.content.decode()


def test_a_rater_who_passes_the_qualification_round_goes_on(client):
    study = rating_study(n_prompts=4, n_gold=2, qualification_items=2, comparisons_per_rater=4)
    page = client.get(reverse("rater:enter", args=[study.token]), follow=True)
    for _ in range(2):
        assignment = Assignment.objects.get(rater__study=study, status="leased")
        right = "left" if assignment.left_is_a else "right"
        page = client.post(vote_form(page.content.decode()), {"choice": right}, follow=True)
    assert "3 of 4" in page.content.decode()
    assert not Rater.objects.get(study=study).excluded


def test_rater_forms_work_without_a_csrf_cookie_as_in_mturks_iframe():
    from django.test import Client

    study = rating_study(n_prompts=2, consent_text="Consent.", comparisons_per_rater=2)
    browser = Client(enforce_csrf_checks=True)
    page = browser.get(reverse("rater:enter", args=[study.token]), follow=True)
    rater = Rater.objects.get(study=study)
    page = browser.post(reverse("rater:consent", args=[rater.token]), {"consent": "yes"}, follow=True)
    page = browser.post(vote_form(page.content.decode()), {"choice": "left"}, follow=True)
    assert "2 of 2" in page.content.decode()
    assert "csrftoken" not in browser.cookies
    assert Vote.objects.filter(rater=rater).count() == 1
