"""A new crowd platform is one module and one registration line: the smallest one, end to end.

The class below is the whole of it (the README quotes it); a real one also adds its value to
``ratings.models.Recruitment`` and to ``PLATFORMS`` in ``ratings/platforms/__init__.py``.
"""

import re

import pytest
from django.urls import reverse

from ratings.models import Rater, Vote
from ratings.platforms import PLATFORMS, Arrival, Platform, Refusal
from tests.ratings.rating_setup import rating_study

pytestmark = pytest.mark.django_db


class Classroom(Platform):
    """Students arrive with ?student=<id> and get the study's code at the end."""

    value = "classroom"

    def arrival(self, params):
        student = params.get("student", "").strip()
        if not student:
            return Refusal("Please open this study from your course page.")
        return Arrival(self.value, external_id=student[:200])


@pytest.fixture
def classroom(monkeypatch):
    monkeypatch.setitem(PLATFORMS, Classroom.value, Classroom())
    return rating_study(n_prompts=1, recruitment=Classroom.value, comparisons_per_rater=1)


def test_a_registered_platform_takes_raters_through_the_whole_path(client, classroom):
    refused = client.get(reverse("rater:enter", args=[classroom.token]))
    assert refused.status_code == 400 and "from your course page" in refused.content.decode()

    page = client.get(reverse("rater:enter", args=[classroom.token]) + "?student=s-42", follow=True)
    rater = Rater.objects.get(study=classroom)
    assert (rater.platform, rater.external_id) == ("classroom", "s-42")
    action = re.search(r'<form method="post" action="([^"]+/vote/[^"]+)"', page.content.decode()).group(1)
    done = client.post(action, {"choice": "left"}, follow=True)
    assert classroom.completion_code in done.content.decode()
    assert Vote.objects.filter(rater=rater).count() == 1

    # The same student id, from another browser, resumes the same rater.
    client.cookies.clear()
    client.get(reverse("rater:enter", args=[classroom.token]) + "?student=s-42")
    assert Rater.objects.filter(study=classroom).count() == 1
