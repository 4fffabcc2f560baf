"""A new study mode is one module and one registration: a forced choice (no ties), end to end."""

import re

import pytest
from django.urls import reverse

from ratings.models import Rater, Vote, Winner
from ratings.modes import MODES, Judgement
from ratings.modes.preference import Preference
from tests.ratings.rating_setup import rating_study

pytestmark = pytest.mark.django_db


class ForcedChoice(Preference):
    """The preference page, but a rater must pick a side: tie and both bad are refused."""

    value = "forced_choice"

    def read_form(self, form, study):
        if form.get("choice") not in ("left", "right"):
            return "Please choose the better answer: this study has no ties."
        return Judgement(choice=form["choice"])


@pytest.fixture
def forced(monkeypatch):
    monkeypatch.setitem(MODES, ForcedChoice.value, ForcedChoice())
    return rating_study(n_prompts=2, mode=ForcedChoice.value, comparisons_per_rater=2)


def test_a_registered_mode_reads_the_form_and_makes_the_vote(client, forced):
    page = client.get(reverse("rater:enter", args=[forced.token]), follow=True)
    action = re.search(r'<form method="post" action="([^"]+/vote/[^"]+)"', page.content.decode()).group(1)
    refused = client.post(action, {"choice": "tie"}, follow=True)
    assert "this study has no ties" in refused.content.decode()
    assert not Vote.objects.exists()

    client.post(action, {"choice": "left"})
    vote = Vote.objects.get(rater=Rater.objects.get(study=forced))
    assert vote.winner == (Winner.A if vote.assignment.left_is_a else Winner.B)
