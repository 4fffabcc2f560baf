"""The preference mode: which of two answers is better (left, right, tie, both bad), plus the study's
follow-up questions, each answered left, right or tie. Votes store a winner in terms of A and B."""

from collections.abc import Mapping

from ratings.models import Study, StudyMode, Winner
from ratings.modes.base import Judgement, Mode

CHOICES = ("left", "right", "tie", "both_bad")
SIDE_TO_WINNER = {True: {"left": Winner.A, "right": Winner.B}, False: {"left": Winner.B, "right": Winner.A}}


def side_to_answer(side: str, left_is_a: bool) -> str:
    """A left / right choice (as shown) in terms of the comparison's A and B; tie and both_bad pass through."""
    return SIDE_TO_WINNER[left_is_a].get(side, side)


class Preference(Mode):
    value = StudyMode.PREFERENCE
    template = "rater/rate.html"

    def read_form(self, form: Mapping[str, str], study: Study) -> Judgement | str:
        choice = form.get("choice", "")
        if choice not in CHOICES:
            return "Please choose one of the four buttons."
        answers = {}
        for question in study.questions():
            value = form.get(f"q_{question['key']}", "")
            if value in ("left", "right", "tie"):
                answers[question["key"]] = value
        return Judgement(choice=choice, answers=answers, reason=form.get("reason", ""))

    def vote_fields(self, judgement: Judgement, left_is_a: bool) -> dict:
        if judgement.choice not in CHOICES:
            raise ValueError(f"unknown choice {judgement.choice!r}")
        return {"winner": side_to_answer(judgement.choice, left_is_a)}
