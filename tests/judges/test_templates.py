"""The two shipped prompt templates and their verdict parsers.

The Vicuna three-class template is the reviewer prompt the PRD judges were given; the MT-bench-style one asks
for [[A]], [[B]] or [[C]]. Each parser reads what its template asks for and calls anything else unparsed, never
a tie. The Vicuna template also runs a whole judging job (``judge_study``) against an OpenAI-protocol judge
served over HTTP that answers as that prompt asks.
"""

import gzip
import json
import re
from collections import Counter
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from judges.actions import do_create_judge, ensure_builtin_prompts
from judges.formats import PRD_SCORE
from judges.models import JudgeVerdict, JudgingJob, Outcome
from judges.verdicts import fill, messages, parse_brackets, parse_threeclass, template_problem
from tests.inference_workers.chat_server import ChatServer

from .test_judging_job import KEY, api_judge, planted_study

PRD = Path(__file__).resolve().parents[2] / "data" / "vicuna80-llm-judges"


def builtin() -> dict:
    return {p.name: p for p in ensure_builtin_prompts()}


@pytest.mark.django_db
def test_the_vicuna_template_is_the_prd_reviewer_prompt_and_both_shipped_templates_are_usable():
    shipped = builtin()
    assert set(shipped) == {"vicuna-threeclass", "mt-bench-pairwise"}
    for p in shipped.values():
        assert template_problem(p.system, p.user) == "" and p.source
    with (PRD / "prompts" / "vicuna_prompt_threeclass.jsonl").open(encoding="utf-8") as fh:
        general = next(r for r in map(json.loads, fh) if r["prompt_id"] == 1)
    vicuna = shipped["vicuna-threeclass"]
    assert vicuna.system == general["system_prompt"]
    assert vicuna.user == general["prompt_template"].replace("{prompt}", general["defaults"]["prompt"])
    assert vicuna.parser == "threeclass"
    ours = shipped["mt-bench-pairwise"]
    assert ours.parser == "brackets"
    assert all(tag in ours.system for tag in ('"[[A]]"', '"[[B]]"', '"[[C]]"'))
    # Asking again creates nothing new.
    assert {p.pk for p in ensure_builtin_prompts()} == {p.pk for p in shipped.values()}


def test_filling_a_template_leaves_slots_inside_the_answers_alone():
    user = "Q: {question}\n1: {answer_1}\n2: {answer_2}\n{not_a_slot} {}"
    text = fill(user, "What is {answer_2}?", "I say {answer_2}", "I say {question}")
    assert text == "Q: What is {answer_2}?\n1: I say {answer_2}\n2: I say {question}\n{not_a_slot} {}"
    assert messages("", user, "q", "a", "b") == [{"role": "user", "content": fill(user, "q", "a", "b")}]
    assert messages("sys", user, "q", "a", "b")[0] == {"role": "system", "content": "sys"}


@pytest.mark.parametrize(
    "text, outcome",
    [
        ("A is longer and clearer.\n\n[[A]]", "first"),
        ("[[B]]", "second"),
        ("Neither stands out. [[C]]", "tie"),
        ("Verdict: [[A]] ... as I said, [[A]]", "first"),  # the same verdict twice is still one verdict
        ("At first [[A]], on reflection [[B]]", "unparsed"),  # two verdicts: ambiguous
        ("Assistant A is better.", "unparsed"),
        ("[A]", "unparsed"),
        ("[[D]]", "unparsed"),
        ("[[a]]", "unparsed"),
        ("", "unparsed"),
    ],
)
def test_the_bracket_parser(text, outcome):
    assert parse_brackets(text) == outcome


@pytest.mark.parametrize(
    "text, outcome",
    [
        ("Assistant 1 was more detailed.\n1", "first"),
        ("Both were fine, but the second was more accurate.\n\n2\n\n", "second"),
        ("They are equivalent.\n3", "tie"),
        ("Explanation.\nAssistant 2", "second"),
        ("Explanation.\n1.", "first"),
        ("Explanation.\n**3**", "tie"),
        ("1\nOn reflection, both are weak.", "unparsed"),  # the verdict must be the last line
        ("Explanation.\n1 or 2", "unparsed"),
        ("Explanation.\n4", "unparsed"),
        ("Explanation.\n12", "unparsed"),
        ("Therefore, I choose 1.", "unparsed"),  # not what the prompt asks for: counted, not guessed
        ("   \n  ", "unparsed"),
    ],
)
def test_the_threeclass_parser(text, outcome):
    assert parse_threeclass(text) == outcome


def test_the_threeclass_parser_on_the_real_prd_texts_never_contradicts_the_published_score():
    """On the 8,160 real reviews: every verdict the parser reads is the one PRD published. Judges that end on
    the bare number (GPT-4, Claude) are read; texts that end otherwise ("Therefore, my choice is 1.") are
    unparsed, never a guess and never a tie."""
    read, unparsed = Counter(), Counter()
    for file in sorted(PRD.glob("ratings-*/*.jsonl.gz")):
        judge = file.parent.name.removeprefix("ratings-")
        with gzip.open(file, "rt", encoding="utf-8") as fh:
            for record in map(json.loads, fh):
                got = parse_threeclass(record["text"])
                if got == "unparsed":
                    unparsed[judge] += 1
                else:
                    assert got == PRD_SCORE[record["score"]], (file.name, record["review_id"])
                    read[judge] += 1
    assert sum(read.values()) + sum(unparsed.values()) == 8160
    assert read == {"gpt4": 1600, "claude": 1598, "gpt35": 270, "bard": 3}
    assert unparsed == {"claude": 2, "gpt35": 1490, "bard": 1597, "vicuna-13b": 1600}


class VicunaReviewer(ChatServer):
    """Answers the Vicuna reviewer prompt as it asks: an explanation, then 1, 2 or 3 alone on the last line. It
    prefers the longer answer (3 within a tenth); to a question ending in ``?!`` it ends on a sentence instead."""

    ANSWER = re.compile(
        r"\[The Start of Assistant ([12])'s Answer\]\n(.*?)\n\n\[The End of Assistant \1's Answer\]", re.S
    )

    def answer(self, body: dict) -> str:
        prompt = body["messages"][-1]["content"]
        question = re.search(r"\[Question\]\n(.*?)\n\n\[The Start", prompt, re.S).group(1)
        answers = {k: len(v.split()) for k, v in self.ANSWER.findall(prompt)}
        if question.endswith("?!"):
            return "Both assistants answered.\nI would rather not choose between them."
        first, second = answers["1"], answers["2"]
        verdict = "1" if first > 1.1 * second else "2" if second > 1.1 * first else "3"
        return f"Assistant 1 wrote {first} words and Assistant 2 wrote {second}.\n{verdict}"


@pytest.mark.django_db(transaction=True)
def test_a_judge_on_the_vicuna_template_judges_a_study_in_both_orders():
    study = planted_study(n_prompts=6, garbled_every=3)
    comparisons = list(study.comparisons.select_related("prompt", "response_a", "response_b"))
    out = StringIO()
    with VicunaReviewer(KEY, delay_s=0.01) as server:
        priced = api_judge(server, name="vicuna-length-judge")
        judge = do_create_judge("vicuna-judge", priced.model, builtin()["vicuna-threeclass"], max_new_tokens=256)
        call_command("judge_study", "--study", study.slug, "--judge", judge.name, "--in-process", stdout=out)
    job = JudgingJob.objects.get(judge=judge)
    assert out.getvalue().rstrip().endswith("Succeeded.")
    assert job.done == job.total == 2 * len(comparisons) == len(server.requests)
    system = {r["messages"][0]["content"] for r in server.requests}
    assert system == {"You are a helpful and precise assistant for checking the quality of the answer."}

    def expected(first, second, question):
        if question.endswith("?!"):
            return Outcome.UNPARSED
        a, b = len(first.split()), len(second.split())
        return Outcome.FIRST if a > 1.1 * b else Outcome.SECOND if b > 1.1 * a else Outcome.TIE

    verdicts = {(v.response_first_id, v.response_second_id): v for v in JudgeVerdict.objects.filter(job=job)}
    for c in comparisons:
        for first, second in ((c.response_a, c.response_b), (c.response_b, c.response_a)):
            v = verdicts[(first.pk, second.pk)]
            assert v.outcome == expected(first.text, second.text, c.prompt.text), v.text
            assert v.text.startswith("Assistant 1 wrote") or "rather not choose" in v.text
    garbled = sum(c.prompt.text.endswith("?!") for c in comparisons)
    assert job.unparsed == 2 * garbled > 0
    assert not JudgeVerdict.objects.filter(job=job, outcome=Outcome.TIE, text__contains="rather not").exists()
