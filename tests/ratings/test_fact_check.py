"""The fact-check rating mode on the rater's path: the page, verdicts recorded once, refusals, attention checks."""

import re

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse

from ratings.actions.studies import do_create_attention_checks
from ratings.models import Assignment, Rater, StudyMode, StudyStatus, Vote, VoteSource
from tests import factories
from tests.ratings.rating_setup import fact_check_study, rating_study
from tests.ratings.test_blindness import HOSTILE, assert_inert
from tests.ratings.test_rater_path import vote_form

pytestmark = pytest.mark.django_db


def enter(client, study):
    return client.get(reverse("rater:enter", args=[study.token]), follow=True)


def test_the_page_shows_question_references_and_both_answers_with_a_verdict_each(client):
    study = fact_check_study(
        n_prompts=1, answers=lambda i, j: HOSTILE if j == 0 else "It is **Canberra 0**, the capital."
    )
    page = enter(client, study)
    html = page.content.decode()
    assert "Question 0: how would you explain topic 0?" in html
    assert "<li>Canberra 0</li>" in html and "<li>the city of Canberra 0</li>" in html
    assert "It is <strong>Canberra 0</strong>, the capital." in html
    answers = re.findall(r'<div class="answer-body">(.*?)</div>\s*<fieldset', html, re.S)
    assert len(answers) == 2
    for answer in answers:
        assert_inert(answer)
    # One radio group per answer, with the shortcuts shown, and no "which is better" question.
    for side, keys in (("left", "123"), ("right", "456")):
        radios = re.findall(rf'<input type="radio" name="verdict_{side}" value="(\w+)" data-key="(\d)" required>', html)
        assert radios == list(zip(["correct", "partly", "wrong"], keys, strict=True))
    assert "<kbd>1</kbd> Correct" in html and "<kbd>6</kbd> Wrong" in html
    assert 'name="choice"' not in html and "is better" not in html
    assert "script-src 'self'" in page["Content-Security-Policy"]


def test_verdicts_are_stored_for_a_and_b_once_whatever_the_order_shown(client):
    study = fact_check_study(n_prompts=4, comparisons_per_rater=4)
    page = enter(client, study)
    rater = Rater.objects.get(study=study)
    seen = []
    for _ in range(4):
        form = vote_form(page.content.decode())
        assignment = Assignment.objects.get(token=form.rstrip("/").rsplit("/", 1)[1])
        page = client.post(
            form, {"verdict_left": "correct", "verdict_right": "wrong", "reason": "checked"}, follow=True
        )
        # A double submission (a second click, the back button) records nothing more.
        client.post(form, {"verdict_left": "wrong", "verdict_right": "correct"})
        seen.append(assignment.pk)
    assert study.completion_code in page.content.decode()
    votes = Vote.objects.filter(rater=rater).select_related("assignment")
    assert votes.count() == 4 and sorted(v.assignment_id for v in votes) == sorted(seen)
    for vote in votes:
        assert vote.winner == "" and vote.reason == "checked"
        expected = ("correct", "wrong") if vote.assignment.left_is_a else ("wrong", "correct")
        assert (vote.verdict_a, vote.verdict_b) == expected
    assert {v.assignment.left_is_a for v in votes} <= {True, False}


def test_missing_or_unknown_verdicts_are_refused_kindly_and_the_same_pair_stays(client):
    study = fact_check_study(n_prompts=2, comparisons_per_rater=2)
    page = enter(client, study)
    form = vote_form(page.content.decode())
    for data in (
        {"verdict_left": "correct"},
        {"verdict_right": "wrong"},
        {"verdict_left": "yes", "verdict_right": "no"},
    ):
        page = client.post(form, data, follow=True)
        html = page.content.decode()
        assert "Please judge both answers (correct, partly correct or wrong), then submit." in html
        assert vote_form(html) == form
    assert not Vote.objects.exists()


def test_a_preference_choice_is_not_a_fact_check_vote(client):
    study = fact_check_study(n_prompts=1)
    form = vote_form(enter(client, study).content.decode())
    client.post(form, {"choice": "left"})
    assert not Vote.objects.exists()


def test_the_database_holds_a_vote_to_one_kind_winner_or_both_verdicts():
    c = factories.comparison_setup()
    rater = factories.rater(c.study)
    bad = [
        {"winner": "a", "verdict_a": "correct", "verdict_b": "wrong"},
        {"winner": "", "verdict_a": "correct", "verdict_b": ""},
        {"winner": "", "verdict_a": "", "verdict_b": ""},
        {"winner": "", "verdict_a": "right", "verdict_b": "wrong"},
    ]
    for fields in bad:
        with pytest.raises(IntegrityError), transaction.atomic():
            a = factories.assignment(c, factories.rater(c.study))
            Vote.objects.create(comparison=c, assignment=a, rater=a.rater, source=VoteSource.LIVE, **fields)
    a = factories.assignment(c, rater)
    Vote.objects.create(comparison=c, assignment=a, rater=rater, verdict_a="partly", verdict_b="wrong")
    assert Vote.objects.get().winner == ""


def test_a_fact_check_study_without_reference_answers_cannot_be_opened():
    study = rating_study(n_prompts=3, mode=StudyMode.FACT_CHECK, status=StudyStatus.DRAFT)
    study.full_clean()  # a draft may wait for its references
    study.status = StudyStatus.OPEN
    with pytest.raises(ValidationError) as refused:
        study.full_clean()
    assert "needs reference answers on every prompt: 3 prompt(s)" in str(refused.value.message_dict["status"])
    # A preference study needs none.
    study.mode = StudyMode.PREFERENCE
    study.full_clean()
    study.mode = StudyMode.FACT_CHECK
    study.prompt_set.prompts.update(reference_answers=["Canberra"])
    study.full_clean()


def test_a_study_with_votes_keeps_its_mode():
    study = fact_check_study(n_prompts=1)
    study.mode = StudyMode.PREFERENCE
    study.full_clean()  # no votes yet: a researcher may still change their mind
    study.mode = StudyMode.FACT_CHECK
    c = study.comparisons.get()
    rater = factories.rater(study)
    a = factories.assignment(c, rater, status="voted")
    Vote.objects.create(comparison=c, assignment=a, rater=rater, verdict_a="correct", verdict_b="wrong")
    study.mode = StudyMode.PREFERENCE
    with pytest.raises(ValidationError) as refused:
        study.full_clean()
    assert refused.value.message_dict["mode"] == ["This study has votes already: its mode can no longer change."]


def test_the_admin_refuses_to_open_a_fact_check_study_without_references(admin_client):
    study = rating_study(n_prompts=2, mode=StudyMode.FACT_CHECK, status=StudyStatus.DRAFT)
    page = admin_client.get(reverse("admin:ratings_study_change", args=[study.pk]))
    form = page.context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None and k != "language_models"}
    data.update(
        status="open", language_models=[m.pk for m in study.language_models.all()], prompt_set=study.prompt_set_id
    )
    data["follow_up_questions"] = "[]"
    page = admin_client.post(reverse("admin:ratings_study_change", args=[study.pk]), data)
    assert page.status_code == 200
    assert "A fact-check study needs reference answers on every prompt" in page.content.decode()
    study.refresh_from_db()
    assert study.status == StudyStatus.DRAFT


def test_an_attention_check_is_passed_by_calling_the_off_topic_answer_wrong():
    from django.test import Client

    study = fact_check_study(n_prompts=6, n_gold=2, qualification_items=2, comparisons_per_rater=4)
    assert study.comparisons.filter(is_gold=True, gold_answer="a").count() == 2

    def judge_two_checks(verdict_on_off_topic: str) -> tuple[Rater, str]:
        client = Client()
        html = enter(client, study).content.decode()
        for _ in range(2):
            form = vote_form(html)
            assignment = Assignment.objects.select_related("comparison").get(token=form.rstrip("/").rsplit("/", 1)[1])
            assert assignment.comparison.is_gold
            # Gold answer A is the good one: the off-topic answer is B, shown on the right when A is left.
            off_topic = "verdict_right" if assignment.left_is_a else "verdict_left"
            good = "verdict_left" if off_topic == "verdict_right" else "verdict_right"
            # What the rater says of the good answer does not count: it may well be wrong.
            html = client.post(form, {off_topic: verdict_on_off_topic, good: "wrong"}, follow=True).content.decode()
        return Rater.objects.get(pk=assignment.rater_id), html

    careful, html = judge_two_checks("wrong")
    assert "3 of 4" in html and not Rater.objects.get(pk=careful.pk).excluded
    careless, html = judge_two_checks("partly")
    assert "practice round with answers whose verdict is known" in html
    assert Rater.objects.get(pk=careless.pk).excluded


def test_attention_checks_in_fact_check_mode_avoid_answers_that_match_the_references():
    # Every answer of the good model matches its own question's reference, and "Canberra 1" would match
    # question 1's: the off-topic answer drawn for a question is never one that matches its references.
    study = fact_check_study(n_prompts=8)
    do_create_attention_checks(study, 8)
    from inference_workers.substance.scoring import contains_match

    for c in study.comparisons.filter(is_gold=True).select_related("prompt", "response_b"):
        assert not contains_match(c.response_b.text, c.prompt.reference_answers)
