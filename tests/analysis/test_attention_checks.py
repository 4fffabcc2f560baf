"""Attention checks measure raters, not models: their votes stay out of ratings and exports."""

import io
import json

import pytest

from ratings.actions.studies import do_create_attention_checks, do_create_comparisons
from ratings.analysis.battles import export_battles
from ratings.analysis.votes import study_votes
from ratings.models import Vote, VoteSource
from tests import factories

pytestmark = pytest.mark.django_db


def test_votes_on_attention_checks_enter_neither_analysis_nor_export():
    ps = factories.prompt_set()
    prompts = [factories.prompt(ps, category=f"c{i}") for i in range(4)]
    ref, other = factories.model(), factories.model()
    for m in (ref, other):
        for p in prompts:
            factories.response(m, p, f"{m.name} answers {p.text}")
    study = factories.study(ps, [ref, other], reference_model=ref)
    do_create_comparisons(study)
    assert do_create_attention_checks(study, 2) == 2
    rater = factories.rater(study)
    for c in study.comparisons.all():
        a = factories.assignment(c, rater, status="voted")
        Vote.objects.create(comparison=c, assignment=a, rater=rater, source=VoteSource.LIVE, winner="a")

    assert Vote.objects.filter(comparison__study=study).count() == 6
    assert study_votes(study).n_votes == 4
    out = io.StringIO()
    assert export_battles(study, out) == 4
    names = {json.loads(line)["model_b"] for line in out.getvalue().splitlines()}
    assert "attention-check" not in names
