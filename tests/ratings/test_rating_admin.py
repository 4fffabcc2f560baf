"""Admin actions a researcher uses to prepare a study for raters."""

import pytest
from django.urls import reverse

from ratings.models import Comparison, Rater, Recruitment
from tests.ratings.rating_setup import rating_study

pytestmark = pytest.mark.django_db


def run_action(client, action, study):
    return client.post(
        reverse("admin:ratings_study_changelist"), {"action": action, "_selected_action": [study.pk]}, follow=True
    )


def test_add_attention_checks_at_the_study_rate(admin_client):
    study = rating_study(n_prompts=20, attention_check_rate=0.1)
    run_action(admin_client, "add_attention_checks", study)
    assert Comparison.objects.filter(study=study, is_gold=True).count() == 2
    # Running it again adds nothing: the rate is met.
    run_action(admin_client, "add_attention_checks", study)
    assert Comparison.objects.filter(study=study, is_gold=True).count() == 2


def test_create_invite_links(admin_client):
    study = rating_study(n_prompts=1, recruitment="invite")
    page = run_action(admin_client, "create_invites", study)
    invited = Rater.objects.filter(study=study, platform=Recruitment.INVITE)
    assert invited.count() == 10
    assert f"/r/{study.token}/?invite={invited.first().token}" in page.content.decode()
