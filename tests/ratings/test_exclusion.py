"""Exclusions change only on POST and through ratings.actions.quality, and a researcher's
reinstatement stands against every automatic rule."""

import re

import pytest
from django.urls import reverse

from ratings.actions.quality import do_apply_exclusion_rules, do_reinstate_rater
from ratings.models import Assignment, Rater
from tests.ratings.rating_setup import rating_study

pytestmark = pytest.mark.django_db


def vote_form(html: str) -> str:
    return re.search(r'<form method="post" action="([^"]+/vote/[^"]+)"', html).group(1)


def fail_qualification(client, study) -> Rater:
    """Enter the study and answer both qualification items against the known better answer."""
    page = client.get(reverse("rater:enter", args=[study.token]), follow=True)
    for _ in range(2):
        assignment = Assignment.objects.get(rater__study=study, status="leased")
        wrong = "right" if assignment.left_is_a else "left"
        client.post(vote_form(page.content.decode()), {"choice": wrong})
        page = client.get(reverse("rater:rate", args=[assignment.rater.token]))
    return Rater.objects.get(study=study)


def test_the_vote_that_fails_the_qualification_round_excludes_the_rater_before_any_page_loads(client):
    study = rating_study(n_prompts=4, n_gold=2, qualification_items=2, comparisons_per_rater=6)
    client.get(reverse("rater:enter", args=[study.token]), follow=True)
    rater = Rater.objects.get(study=study)
    for _ in range(2):
        html = client.get(reverse("rater:rate", args=[rater.token])).content.decode()
        assignment = Assignment.objects.get(rater=rater, status="leased")
        wrong = "right" if assignment.left_is_a else "left"
        # The POST alone, no redirect followed: the exclusion must not wait for a GET.
        response = client.post(vote_form(html), {"choice": wrong})
        assert response.status_code == 302
    rater.refresh_from_db()
    assert rater.excluded and rater.exclusion_reason == "Did not pass the qualification round."


def test_a_page_view_never_undoes_a_researchers_reinstatement(client):
    study = rating_study(n_prompts=4, n_gold=2, qualification_items=2, comparisons_per_rater=6)
    rater = fail_qualification(client, study)
    assert rater.excluded
    do_reinstate_rater(rater)
    # The rater reloads the rating page, twice: the researcher's word stands, and they may go on.
    for _ in range(2):
        page = client.get(reverse("rater:rate", args=[rater.token]))
    rater.refresh_from_db()
    assert not rater.excluded and rater.exclusion_overridden
    assert "3 of 6" in page.content.decode()


def test_the_study_rules_leave_a_reinstated_rater_alone(client):
    study = rating_study(n_prompts=4, n_gold=2, qualification_items=2, comparisons_per_rater=6)
    rater = fail_qualification(client, study)
    do_reinstate_rater(rater)
    study.exclude_after_failed_checks = 1
    study.save()
    assert do_apply_exclusion_rules(study) == 0
    rater.refresh_from_db()
    assert not rater.excluded


def test_the_admin_has_no_editable_exclusion_field_and_acts_through_the_actions(admin_client, client):
    study = rating_study(n_prompts=4, n_gold=2, qualification_items=2, comparisons_per_rater=6)
    rater = fail_qualification(client, study)
    changelist = reverse("admin:ratings_rater_changelist")
    html = admin_client.get(changelist).content.decode()
    assert 'name="form-0-excluded"' not in html
    change = admin_client.get(reverse("admin:ratings_rater_change", args=[rater.pk])).content.decode()
    assert 'name="excluded"' not in change and 'name="exclusion_overridden"' not in change

    admin_client.post(changelist, {"action": "reinstate_raters", "_selected_action": [rater.pk]})
    rater.refresh_from_db()
    assert not rater.excluded and rater.exclusion_overridden
    admin_client.post(changelist, {"action": "exclude_raters", "_selected_action": [rater.pk]})
    rater.refresh_from_db()
    assert rater.excluded and not rater.exclusion_overridden
    assert rater.exclusion_reason.startswith("Excluded by ")
