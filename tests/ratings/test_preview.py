"""Preview as a rater: the exact rating page (or fact-check page) with a preview banner; nothing is leased
or recorded, and no model's name or id reaches the page, before Launch and after."""

import re

import pytest
from django.urls import reverse

from ratings.models import Assignment, Rater, StudyMode, StudyStatus, Vote
from tests import factories
from tests.ratings.rating_setup import SECRET_MODELS, rating_study, secret_strings

pytestmark = pytest.mark.django_db


def assert_blind(html: str, models) -> None:
    for secret in secret_strings(models):
        assert secret.lower() not in html.lower(), secret
    for m in models:
        assert not re.search(rf"\b(model|response)[-_ ]?(id)?[=:\"' ]+{m.pk}\b", html, re.IGNORECASE)


def written_rows() -> tuple[int, int, int]:
    return Rater.objects.count(), Assignment.objects.count(), Vote.objects.count()


def test_the_preview_is_the_rating_page_with_a_banner_and_records_nothing(researcher_client):
    study = rating_study(n_prompts=3, follow_up_questions=[{"key": "factual", "text": "Which is more accurate?"}])
    models = list(study.language_models.all())
    url = reverse("preview:item", args=[study.token])
    page = researcher_client.get(url)
    html = page.content.decode()
    assert page.status_code == 200
    assert 'id="preview-banner"' in html and "Nothing is leased or recorded" in html
    # The rater's own page: its form, its four choices, the follow-up question, the answers' sanitised HTML.
    assert 'id="vote-form"' in html and 'data-key="x"' in html and "Which is more accurate?" in html
    assert "<li>point one</li>" in html
    assert page["Content-Security-Policy"].startswith("default-src 'self'")
    assert study.slug not in html
    assert_blind(html, models)
    # A choice posted from the preview is read and dropped.
    after = researcher_client.post(f"{url}?item=1", {"choice": "left"}, follow=True)
    assert "Preview: not recorded." in after.content.decode()
    assert after.redirect_chain[-1][0].endswith("?item=2")
    researcher_client.post(f"{url}?item=2", {}, follow=True)  # no choice: the rater's own message
    assert written_rows() == (0, 0, 0)
    assert not study.comparisons.filter(claim_count__gt=0).exists()


def test_the_preview_of_a_fact_check_study_is_the_fact_check_page(researcher_client):
    study = rating_study(n_prompts=2, mode=StudyMode.FACT_CHECK, references=lambda i: [f"Reference {i}"])
    html = researcher_client.get(reverse("preview:item", args=[study.token])).content.decode()
    assert "Is answer A correct?" in html and 'id="preview-banner"' in html
    assert re.search(r"<li>Reference [01]</li>", html)
    assert_blind(html, list(study.language_models.all()))
    assert written_rows() == (0, 0, 0)


def test_before_launch_the_preview_shows_the_first_prompts_with_what_answers_exist(researcher_client):
    ps = factories.prompt_set()
    prompts = [factories.prompt(ps, text=f"Prompt number {i}?") for i in range(3)]
    models = [factories.model(**spec) for spec in SECRET_MODELS[:2]]
    factories.response(models[0], prompts[0], "An **imported** answer <script>alert(1)</script>")
    study = factories.study(ps, models, status=StudyStatus.DRAFT)
    html = researcher_client.get(reverse("preview:item", args=[study.token])).content.decode()
    assert "Prompt number 0?" in html
    assert "<strong>imported</strong>" in html and "<script>alert" not in html
    assert "An answer appears here once the model has answered this prompt" in html
    assert_blind(html, models)
    assert written_rows() == (0, 0, 0) and study.comparisons.count() == 0


def test_the_preview_is_for_researchers_only(client):
    study = rating_study(n_prompts=1)
    url = reverse("preview:item", args=[study.token])
    assert client.get(url)["Location"].startswith("/admin/login/")
    assert written_rows() == (0, 0, 0)


def test_the_preview_of_an_mturk_study_may_not_be_framed(researcher_client):
    study = rating_study(n_prompts=1, recruitment="mturk")
    page = researcher_client.get(reverse("preview:item", args=[study.token]))
    assert "frame-ancestors 'none'" in page["Content-Security-Policy"]
    assert page["X-Frame-Options"] == "DENY"
