"""The fact-check mode: raters judge each answer correct, partly correct or wrong.

A fact-check study runs on the same engine as a preference study: the same comparisons, leases, k
judgements per item, left / right drawn per assignment. The page shows the question, its reference
answers and the two answers; the rater gives a verdict on each (``verdict_left`` / ``verdict_right``
in the form) and never says which is better. Votes store the verdicts in terms of responses A and B
(``Vote.verdict_a`` / ``verdict_b``) and no winner, so every preference analysis, which reads winners,
leaves them out.

Rules kept here:

- a fact-check study opens only when every prompt of its set has reference answers;
- an attention check (a good answer against another question's answer) is passed by judging the
  off-topic answer wrong (``ratings.models.passed_attention_check``), so the off-topic answer must not
  happen to match the question's reference answers;
- results (``ratings/analysis/fact_check.py``): human-judged accuracy per model beside the automatic
  accuracy of the same answers and the model's benchmark score.
"""

from collections.abc import Mapping

from inference_workers.models import PromptSet
from inference_workers.substance.scoring import contains_match
from ratings.analysis.fact_check import clean_refs, fact_check_results
from ratings.models import Comparison, Study, StudyMode, Verdict
from ratings.modes.base import Judgement, Mode

# (form value, label, shortcut key) per side; the keys are shown on the page.
VERDICT_KEYS = {"left": ("1", "2", "3"), "right": ("4", "5", "6")}


def prompts_without_reference(prompt_set: PromptSet) -> int:
    """How many prompts of the set have no reference answer."""
    return sum(1 for refs in prompt_set.prompts.values_list("reference_answers", flat=True) if not clean_refs(refs))


def verdict_from_form(value: str) -> str | None:
    return value if value in Verdict.values else None


def verdicts_for_a_and_b(verdict_left: str, verdict_right: str, left_is_a: bool) -> tuple[str, str]:
    """The verdicts as shown (left, right) in terms of the comparison's responses (A, B)."""
    if verdict_left not in Verdict.values or verdict_right not in Verdict.values:
        raise ValueError(f"unknown verdicts {verdict_left!r}, {verdict_right!r}")
    return (verdict_left, verdict_right) if left_is_a else (verdict_right, verdict_left)


class FactCheck(Mode):
    value = StudyMode.FACT_CHECK
    template = "rater/fact_check.html"
    results_key = "fact_check"

    def opening_problem(self, study: Study) -> str:
        missing = prompts_without_reference(study.prompt_set)
        if not missing:
            return ""
        return (
            f"A fact-check study needs reference answers on every prompt: {missing} prompt(s) of "
            f"'{study.prompt_set.name}' have none. Add them (Prompt.reference_answers) or keep the study a draft."
        )

    def page_context(self, context: dict, comparison_id: int) -> dict:
        refs = Comparison.objects.filter(pk=comparison_id).values_list("prompt__reference_answers", flat=True).first()
        return self.item_context(context, refs)

    def item_context(self, context: dict, reference_answers) -> dict:
        choices = [(v.value, v.label) for v in (Verdict.CORRECT, Verdict.PARTLY, Verdict.WRONG)]
        sides = [
            {"key": key, "label": label, "html": context[f"{key}_html"]}
            | {"choices": [(value, text, k) for (value, text), k in zip(choices, VERDICT_KEYS[key], strict=True)]}
            for key, label in (("left", "A"), ("right", "B"))
        ]
        return {**context, "sides": sides, "references": clean_refs(reference_answers)}

    def read_form(self, form: Mapping[str, str], study: Study) -> Judgement | str:
        verdicts = (verdict_from_form(form.get("verdict_left", "")), verdict_from_form(form.get("verdict_right", "")))
        if None in verdicts:
            return "Please judge both answers (correct, partly correct or wrong), then submit."
        return Judgement(verdicts=verdicts, reason=form.get("reason", ""))

    def vote_fields(self, judgement: Judgement, left_is_a: bool) -> dict:
        if judgement.verdicts is None:
            raise ValueError("a fact-check vote needs a verdict on each answer")
        verdict_a, verdict_b = verdicts_for_a_and_b(*judgement.verdicts, left_is_a)
        return {"verdict_a": verdict_a, "verdict_b": verdict_b}

    def off_topic_fits(self, study: Study):
        return lambda good, other: not contains_match(other.text, good.prompt.reference_answers or [])

    def results(self, study: Study, substance: dict[str, dict]) -> dict | None:
        return fact_check_results(study, substance)
