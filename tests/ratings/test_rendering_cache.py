"""Model text is rendered once and kept: in each process, and in a table every process reads."""

import re

import pytest
from django.urls import reverse

from ratings.engine import rendering
from ratings.engine.rendering import prepare_texts, render_model_text, text_digest
from ratings.models import RenderedText
from tests import factories
from tests.ratings.rating_setup import rating_study
from tests.ratings.test_blindness import HOSTILE, assert_inert

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def empty_memo():
    rendering._MEMO.clear()
    yield
    rendering._MEMO.clear()


def test_prepare_renders_each_distinct_text_once():
    assert prepare_texts(["# One", "*two*", "# One"]) == 2
    assert prepare_texts(["# One", "*two*", "three"]) == 1
    assert RenderedText.objects.count() == 3
    assert RenderedText.objects.get(digest=text_digest("*two*")).html == "<p><em>two</em></p>\n"


def test_a_page_uses_the_stored_html_without_rendering_again(monkeypatch):
    RenderedText.objects.create(digest=text_digest("plain words"), html="<p>as stored</p>")
    monkeypatch.setattr(rendering, "_render", lambda text: pytest.fail(f"rendered again: {text!r}"))
    assert str(render_model_text("plain words")) == "<p>as stored</p>"


def test_a_new_renderer_version_does_not_read_html_made_by_the_old_one(monkeypatch):
    prepare_texts(["**bold**"])
    old = text_digest("**bold**")
    monkeypatch.setattr(rendering, "RENDERER", rendering.RENDERER + " (stricter)")
    assert text_digest("**bold**") != old
    assert prepare_texts(["**bold**"]) == 1


def test_hostile_text_is_stored_inert_and_served_inert_from_the_table():
    prepare_texts([HOSTILE])
    stored = RenderedText.objects.get(digest=text_digest(HOSTILE)).html
    assert_inert(stored)
    assert str(render_model_text(HOSTILE)) == stored


def test_creating_comparisons_renders_their_pages_so_raters_never_wait_for_it(client, monkeypatch):
    study = rating_study(n_prompts=2, n_models=2)
    # Two prompts and two answers to each.
    assert RenderedText.objects.count() == 6
    monkeypatch.setattr(rendering, "_render", lambda text: pytest.fail(f"rendered on request: {text!r}"))
    page = client.get(reverse("rater:enter", args=[study.token]), follow=True)
    assert page.status_code == 200
    bodies = re.findall(r'<div class="answer-body">(.*?)</div></article>', page.content.decode(), re.S)
    assert len(bodies) == 2 and all("<li>point one</li>" in b for b in bodies)


@pytest.mark.django_db(transaction=True)
def test_the_admin_action_creates_comparisons_in_the_worker(worker, admin_client):
    from tests.webapp.test_task_round_trip import wait_for

    ps = factories.prompt_set()
    m1, m2, m3 = factories.model(), factories.model(), factories.model()
    for i in range(3):
        p = factories.prompt(ps, text=f"Question {i}?")
        for m in (m1, m2, m3):
            factories.response(m, p, f"Answer of model {m.pk} to {i}.")
    study = factories.study(ps, [m1, m2, m3])
    page = admin_client.post(
        reverse("admin:ratings_study_changelist"),
        {"action": "create_comparisons", "_selected_action": [study.pk]},
        follow=True,
    )
    assert b"creating its comparisons" in page.content
    # Three prompts x three model pairs, all texts rendered: 3 prompts + 9 answers.
    assert wait_for(lambda: study.comparisons.count() == 9 and RenderedText.objects.count() == 12)
