"""The interface every study mode implements (``ratings/modes/__init__.py`` registers them)."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from inference_workers.models import Response
from ratings.models import Study


@dataclass(frozen=True)
class Judgement:
    """What a rater submitted on one item, as shown (left / right), before it becomes a vote."""

    choice: str = ""  # preference: left, right, tie, both_bad
    verdicts: tuple[str, str] | None = None  # fact check: (left, right)
    answers: dict = field(default_factory=dict)  # follow-up questions, as shown
    reason: str = ""


class Mode:
    """A study mode. Subclasses set the class attributes and override what differs."""

    value: str = ""
    template: str = "rater/rate.html"  # the rating page
    # A key under which the mode's own results go into each snapshot payload, with ``results``.
    results_key: str | None = None

    def opening_problem(self, study: Study) -> str:
        """Why the study may not be open in this mode ("" when it may)."""
        return ""

    def page_context(self, context: dict, comparison_id: int) -> dict:
        """The rating page's context, with what this mode's template needs added."""
        return context

    def item_context(self, context: dict, reference_answers: list) -> dict:
        """The same for an item that is not a comparison yet (the researcher's preview before Launch),
        given its prompt's reference answers."""
        return context

    def read_form(self, form: Mapping[str, str], study: Study) -> Judgement | str:
        """The rater's submitted form as a judgement, or the message that asks them to complete it."""
        raise NotImplementedError

    def vote_fields(self, judgement: Judgement, left_is_a: bool) -> dict:
        """The Vote's judgement fields in terms of the comparison's A and B; ValueError when invalid."""
        raise NotImplementedError

    def off_topic_fits(self, study: Study) -> Callable[[Response, Response], bool]:
        """Whether another question's answer may serve as this question's off-topic attention check."""
        return lambda good, other: True

    def results(self, study: Study, substance: dict[str, dict]) -> dict | None:
        """The mode's own results for a snapshot (``results_key``): a dict with ``n_votes``, or None."""
        return None
