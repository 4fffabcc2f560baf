"""Bad input gets a clear error and writes nothing; good files go out and come back the same."""

import gzip
import json
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from inference_workers.models import ModelKind, ModelRole, ModelStatus
from judges.actions import JudgeRefused, do_create_judge, do_create_prompt, do_start_judging_job, ensure_builtin_prompts
from judges.models import Judge, JudgePrompt, JudgeVerdict, JudgingJob
from ratings.actions.studies import do_create_comparisons
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def study():
    ps = factories.prompt_set()
    prompts = [factories.prompt(ps, external_id=str(i)) for i in (1, 2)]
    models = [factories.model(name=name) for name in ("alpha", "beta")]
    for m in models:
        for p in prompts:
            factories.response(m, p, f"{m.name} answers {p.external_id} " * (3 if m.name == "alpha" else 1))
    s = factories.study(ps, models)
    do_create_comparisons(s)
    return s


def mtbench_line(**overrides) -> str:
    record = {"question_id": 1, "model_1": "alpha", "model_2": "beta", "g1_winner": "model_1", "g2_winner": "tie"}
    record |= {"judge": ["gpt-4", "pair-v2"], "turn": 1, **overrides}
    return json.dumps(record)


def import_file(tmp_path, study, lines: list[str], fmt: str = "mtbench") -> str:
    path = tmp_path / "judgments.jsonl"
    path.write_text("\n".join(lines) + "\n")
    out = StringIO()
    call_command("import_judgements", str(path), "--study", study.slug, "--format", fmt, "--no-snapshot", stdout=out)
    return out.getvalue()


def test_a_template_without_both_answer_slots_is_refused():
    before = JudgePrompt.objects.count()
    with pytest.raises(JudgeRefused, match=r"both answer slots \{answer_1\} and \{answer_2\}.*lacks \{answer_2\}"):
        do_create_prompt("half", "Half", "", "Question: {question}\nOnly {answer_1}", "brackets")
    assert JudgePrompt.objects.count() == before
    with pytest.raises(ValidationError, match="answer slots"):
        JudgePrompt(name="x", title="x", user="{question} {answer_2}", parser="brackets").full_clean()


def test_a_judge_that_is_not_ready_cannot_run(study):
    model = factories.model(
        name="pending-judge",
        kind=ModelKind.OPENAI_API,
        role=ModelRole.PROPRIETARY,
        status=ModelStatus.PENDING,
        api_base_url="https://api.example.invalid/v1",
        api_model_id="judge",
    )
    template = ensure_builtin_prompts()[0]
    judge = do_create_judge("not-ready", model, template)
    with pytest.raises(JudgeRefused, match="is not ready"):
        do_start_judging_job(judge, study)
    imported = Judge.objects.create(name="only-imported", imported=True)
    with pytest.raises(JudgeRefused, match="imported verdicts only"):
        do_start_judging_job(imported, study)
    assert JudgingJob.objects.count() == 0


def test_a_malformed_judgment_file_names_its_line_and_writes_nothing(study, tmp_path):
    lines = [mtbench_line(), mtbench_line(question_id=2), "{not json"]
    with pytest.raises(CommandError, match=r"judgments.jsonl line 3: not JSON.*Nothing was imported"):
        import_file(tmp_path, study, lines)
    with pytest.raises(CommandError, match=r"line 2: g1_winner must be one of"):
        import_file(tmp_path, study, [mtbench_line(), mtbench_line(g1_winner="alpha")])
    with pytest.raises(CommandError, match=r"line 1: the record names no judge"):
        battle = {"question_id": 1, "model_a": "alpha", "model_b": "beta", "winner": "model_a"}
        import_file(tmp_path, study, [json.dumps(battle)], fmt="arena")
    assert JudgeVerdict.objects.count() == 0


def test_a_judge_file_naming_models_the_study_lacks_writes_nothing(study, tmp_path):
    lines = [mtbench_line(), mtbench_line(model_2="gpt-5")]
    with pytest.raises(CommandError, match=r"names models the study .* does not have: gpt-5"):
        import_file(tmp_path, study, lines)
    with pytest.raises(CommandError, match=r"No answer .* alpha on question 9"):
        import_file(tmp_path, study, [mtbench_line(question_id=9)])
    assert JudgeVerdict.objects.count() == 0 and Judge.objects.count() == 0


def test_mtbench_and_arena_files_round_trip(study, tmp_path):
    out = import_file(tmp_path, study, [mtbench_line(), mtbench_line(question_id=2, g2_winner="error")])
    assert "gpt-4: 4 verdicts imported" in out and "unparsed 1" in out
    exported = tmp_path / "out.jsonl"
    call_command("export_judgements", str(exported), "--study", study.slug, "--format", "mtbench")
    records = sorted((json.loads(line) for line in exported.read_text().splitlines()), key=lambda r: r["question_id"])
    assert [(r["g1_winner"], r["g2_winner"]) for r in records] == [("model_1", "tie"), ("model_1", "error")]
    assert records[0]["model_1"] == "alpha" and records[0]["judge"][0] == "gpt-4"
    arena = tmp_path / "arena.jsonl"
    call_command("export_judgements", str(arena), "--study", study.slug, "--format", "arena")
    battles = [json.loads(line) for line in arena.read_text().splitlines()]
    assert len(battles) == 3 and {b["judge"] for b in battles} == {"gpt-4"}  # the unparsed one has no winner
    # Game 2 shows model_2 first: its tie is beta first, alpha second.
    assert {"question_id": 1, "model_a": "beta", "model_b": "alpha", "winner": "tie", "judge": "gpt-4"} in battles
    prd = tmp_path / "prd"
    call_command("export_judgements", str(prd), "--study", study.slug, "--format", "prd")
    assert sorted(p.name for p in (prd / "ratings-gpt-4").iterdir()) == [
        "answer_alpha-vs-answer_beta-gpt-4-reviewer_threeclass.jsonl",
        "answer_beta-vs-answer_alpha-gpt-4-reviewer_threeclass.jsonl",
    ]


def test_the_dashboard_refuses_a_judge_that_is_not_ready_in_words(study, researcher_client):
    model = factories.model(name="waiting-judge", status=ModelStatus.VALIDATING, kind=ModelKind.GGUF)
    judge = do_create_judge("waiting", model, ensure_builtin_prompts()[0])
    page = researcher_client.post(f"/studies/{study.slug}/judges/run/", {"judge": judge.pk}, follow=True)
    assert "cannot run: its model waiting-judge is not ready (validating)" in page.content.decode()
    assert JudgingJob.objects.count() == 0


def test_a_malformed_prd_folder_names_its_file_and_line_and_writes_nothing(study, tmp_path):
    folder = tmp_path / "ratings-some-judge"
    folder.mkdir()

    def review(qid, score):
        return json.dumps({"review_id": f"r{qid}", "question_id": qid, "text": f"Fine.\n{score}", "score": score})

    good = folder / "answer_alpha-vs-answer_beta-some-judge-reviewer_threeclass.jsonl"
    good.write_text(review(1, 1) + "\n" + review(2, 3) + "\n")
    with gzip.open(folder / "answer_beta-vs-answer_alpha-some-judge-reviewer_threeclass.jsonl.gz", "wt") as fh:
        fh.write(review(1, 2) + "\n" + review(2, 5) + "\n")
    out = StringIO()
    args = ("import_judgements", str(tmp_path), "--study", study.slug, "--no-snapshot")
    with pytest.raises(CommandError, match=r"answer_beta-vs-.*\.jsonl\.gz line 2: score must be 1, 2 or 3"):
        call_command(*args, stdout=out)
    (folder / "answer_beta-vs-answer_alpha-some-judge-reviewer_threeclass.jsonl.gz").unlink()
    (folder / "answer_alpha-vs-answer_gamma-some-judge-reviewer_threeclass.jsonl").write_text(review(1, 1) + "\n")
    with pytest.raises(CommandError, match=r"names models the study .* does not have: gamma"):
        call_command(*args, stdout=out)
    (folder / "notes.jsonl").write_text(review(1, 1) + "\n")
    with pytest.raises(CommandError, match=r"notes.jsonl: not a PRD reviewer file name"):
        call_command(*args, stdout=out)
    assert JudgeVerdict.objects.count() == 0 and Judge.objects.count() == 0
    (folder / "notes.jsonl").unlink()
    (folder / "answer_alpha-vs-answer_gamma-some-judge-reviewer_threeclass.jsonl").unlink()
    call_command(*args, stdout=out)  # what is left is well formed: it goes in
    assert JudgeVerdict.objects.filter(judge__name="some-judge").count() == 2
