"""A researcher sets a study up in the site: step by step, saved as a draft at each step, cloned; bad input
gets a clear error that names what is wrong (a prompt file's line) and writes nothing."""

import json

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from inference_workers.models import ModelStatus, Prompt, PromptSet
from ratings.models import PairingDesign, Recruitment, Study, StudyMode, StudyStatus
from ratings.web.research import prompt_files
from tests import factories

pytestmark = pytest.mark.django_db

PROLIFIC_COMPLETE = "https://app.prolific.com/submissions/complete"


def jsonl(records) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def prompts_file(n=20, name="prompts.jsonl", body: bytes | None = None) -> SimpleUploadedFile:
    body = body if body is not None else jsonl({"id": f"q{i}", "text": f"Question {i}?"} for i in range(1, n + 1))
    return SimpleUploadedFile(name, body, content_type="application/octet-stream")


def step_url(study, step):
    return reverse("ratings:study-setup", args=[study.slug, step])


def new_draft(client, title="Imitation vs base", mode=StudyMode.PREFERENCE) -> Study:
    response = client.post(reverse("ratings:study-new"), {"title": title, "mode": mode})
    assert response.status_code == 302
    return Study.objects.get(title=title)


DESIGN = {
    "pairing": PairingDesign.ALL_PAIRS,
    "votes_per_comparison": "3",
    "comparisons_per_rater": "10",
    "attention_check_rate": "0.1",
    "qualification_items": "0",
    "min_seconds_on_page": "0",
    "follow_up_questions": "factual: Which answer is more accurate?",
    "max_new_tokens": "16",
    "temperature": "0",
    "top_p": "1",
    "seed": "7",
    "system_prompt": "",
}


def errors_of(response) -> str:
    """The page's error lists as text."""
    html = response.content.decode()
    assert response.status_code == 200
    return " ".join(part.split("</ul>")[0] for part in html.split('class="errorlist"')[1:])


def test_a_researcher_sets_a_study_up_step_by_step(researcher_client):
    a, b = factories.model(name="alpha"), factories.model(name="beta")
    study = new_draft(researcher_client)
    assert study.status == StudyStatus.DRAFT and study.prompt_set is None and study.created_by is not None
    models = {"models": [a.pk, b.pk], "reference_model": b.pk}
    assert researcher_client.post(step_url(study, "models"), models).status_code == 302
    assert researcher_client.post(step_url(study, "prompts"), {"file": prompts_file()}).status_code == 302
    assert researcher_client.post(step_url(study, "design"), DESIGN).status_code == 302
    recruitment = {"recruitment": Recruitment.PROLIFIC, "completion_code": "C0DE42",
                   "completion_redirect_url": f"{PROLIFIC_COMPLETE}?cc=C0DE42"}  # fmt: skip
    assert researcher_client.post(step_url(study, "recruitment"), recruitment).status_code == 302
    texts = {"consent_text": "You may stop at any time.", "instructions": "Pick the better answer."}
    done = researcher_client.post(step_url(study, "texts"), texts)
    assert done["Location"] == reverse("ratings:study-detail", args=[study.slug])
    study.refresh_from_db()
    assert set(study.language_models.all()) == {a, b} and study.reference_model == b
    assert study.prompt_set.prompts.count() == 20
    assert study.votes_per_comparison == 3 and study.comparisons_per_rater == 10
    assert study.questions() == [{"key": "factual", "text": "Which answer is more accurate?"}]
    assert study.decoding_config.max_new_tokens == 16 and study.decoding_config.seed == 7
    assert study.completion_redirect_url.endswith("cc=C0DE42") and study.consent_text
    assert study.status == StudyStatus.DRAFT
    # Each step shows what was saved.
    page = researcher_client.get(step_url(study, "design")).content.decode()
    assert 'value="16"' in page and "factual: Which answer is more accurate?" in page


def test_only_ready_models_are_offered_with_their_role(researcher_client):
    factories.model(name="ready-one", display_name="Ready One")
    factories.model(name="refused-one", display_name="Refused One", status=ModelStatus.REFUSED)
    study = new_draft(researcher_client)
    page = researcher_client.get(step_url(study, "models")).content.decode()
    assert "Ready One · Imitation" in page
    assert "Refused One" not in page


def test_a_draft_is_saved_at_any_step_and_can_be_left_half_done(researcher_client):
    study = new_draft(researcher_client)
    response = researcher_client.post(step_url(study, "design"), {**DESIGN, "then": "stay"})
    assert response["Location"] == step_url(study, "design")
    study.refresh_from_db()
    assert study.status == StudyStatus.DRAFT and study.comparisons_per_rater == 10 and study.prompt_set is None
    # The study list and page show the half-done draft, with what it lacks.
    assert study.title in researcher_client.get(reverse("ratings:study-list")).content.decode()
    page = researcher_client.get(reverse("ratings:study-detail", args=[study.slug])).content.decode()
    assert "Choose a prompt set or upload prompts." in page and "Choose at least two models (chosen: 0)." in page


def test_a_prompt_file_with_a_malformed_line_7_is_refused_naming_line_7(researcher_client):
    study = new_draft(researcher_client)
    lines = [json.dumps({"id": f"q{i}", "text": f"Question {i}?"}) for i in range(1, 11)]
    lines[6] = '{"id": "q7", "text": "Question 7?"'  # no closing brace
    upload = prompts_file(body="\n".join(lines).encode())
    response = researcher_client.post(step_url(study, "prompts"), {"file": upload})
    assert "Line 7: not valid JSON" in errors_of(response)
    assert "Line 6" not in errors_of(response) and "Line 8" not in errors_of(response)
    study.refresh_from_db()
    assert study.prompt_set is None and PromptSet.objects.count() == 0 and Prompt.objects.count() == 0


def test_duplicate_prompt_ids_are_refused_naming_both_lines(researcher_client):
    study = new_draft(researcher_client)
    body = jsonl([{"id": "q1", "text": "One?"}, {"id": "q2", "text": "Two?"}, {"id": "q1", "text": "One again?"}])
    response = researcher_client.post(step_url(study, "prompts"), {"file": prompts_file(body=body)})
    assert "Line 3: the id &#x27;q1&#x27; is used on line 1 too." in errors_of(response)
    assert PromptSet.objects.count() == 0


def test_a_csv_prompt_file_with_references(researcher_client):
    study = new_draft(researcher_client, mode=StudyMode.FACT_CHECK)
    body = b'id,text,category,reference_answers\nq1,"Capital of Australia?",geo,Canberra\nq2,"2 + 2?",math,4|four\n'
    response = researcher_client.post(step_url(study, "prompts"), {"file": prompts_file(name="p.csv", body=body)})
    assert response.status_code == 302
    study.refresh_from_db()
    refs = dict(study.prompt_set.prompts.values_list("external_id", "reference_answers"))
    assert refs == {"q1": ["Canberra"], "q2": ["4", "four"]}


@pytest.mark.parametrize(
    ("name", "body", "message"),
    [
        ("p.jsonl", b'{"id": "q1", "text": "ok"}\n{"id": "q2", "text": "caf\xe9"}\n', "Line 2: not UTF-8 text"),
        ("p.jsonl", b'{"id": "q1", "text": "a\x00b"}\n', "Line 1: a NUL byte"),
        ("p.exe", b'{"id": "q1", "text": "ok"}\n', "Upload a .jsonl file"),
        ("p.jsonl", b'{"id": "q1"}\n', "Line 1: no prompt text"),
        ("p.jsonl", b'["q1", "text"]\n', "Line 1: not a JSON object."),
        ("p.csv", b"question,answer\nq,a\n", "Line 1: the CSV header must name the columns id and text."),
    ],
)
def test_hostile_or_broken_prompt_files_are_refused_with_the_line(researcher_client, name, body, message):
    study = new_draft(researcher_client)
    response = researcher_client.post(step_url(study, "prompts"), {"file": prompts_file(name=name, body=body)})
    assert message in errors_of(response)
    assert PromptSet.objects.count() == 0


def test_prompt_files_are_capped_in_size_and_lines(researcher_client, monkeypatch):
    monkeypatch.setattr(prompt_files, "MAX_LINES", 5)
    study = new_draft(researcher_client)
    response = researcher_client.post(step_url(study, "prompts"), {"file": prompts_file(n=6)})
    assert "more than 5 lines" in errors_of(response)
    big = b'{"id": "q1", "text": "' + b"x" * (prompt_files.MAX_BYTES + 1) + b'"}\n'
    response = researcher_client.post(step_url(study, "prompts"), {"file": prompts_file(body=big)})
    assert "larger than 5 MB" in errors_of(response)
    assert PromptSet.objects.count() == 0


def test_a_prompt_text_is_never_rendered_unescaped_on_the_researcher_pages(researcher_client):
    study = new_draft(researcher_client)
    body = jsonl([{"id": "<b>q1</b>", "text": "<script>alert(1)</script>"}, {"id": "<b>q1</b>", "text": "x"}])
    response = researcher_client.post(step_url(study, "prompts"), {"file": prompts_file(body=body)})
    html = response.content.decode()
    assert "<b>q1</b>" not in html and "&lt;b&gt;q1&lt;/b&gt;" in html


def test_zero_models_are_refused_and_nothing_is_written(researcher_client):
    a, b = factories.model(), factories.model()
    study = new_draft(researcher_client)
    researcher_client.post(step_url(study, "models"), {"models": [a.pk, b.pk]})
    response = researcher_client.post(step_url(study, "models"), {})
    assert "Choose at least two models to compare (chosen: 0)." in errors_of(response)
    assert set(study.language_models.all()) == {a, b}  # the saved choice stands


def test_k_zero_is_refused_and_nothing_is_written(researcher_client):
    study = new_draft(researcher_client)
    response = researcher_client.post(step_url(study, "design"), {**DESIGN, "votes_per_comparison": "0"})
    assert "k, the votes per comparison, must be at least 1." in errors_of(response)
    study.refresh_from_db()
    assert study.votes_per_comparison == 3 and study.decoding_config is None and study.comparisons_per_rater == 30


def test_a_prolific_study_without_a_completion_url_is_refused(researcher_client):
    study = new_draft(researcher_client)
    form = {"recruitment": Recruitment.PROLIFIC, "completion_code": "C0DE42", "completion_redirect_url": ""}
    response = researcher_client.post(step_url(study, "recruitment"), form)
    assert "A Prolific study needs its completion URL" in errors_of(response)
    assert f"{PROLIFIC_COMPLETE}?cc=C0DE42" in errors_of(response)
    # A completion URL whose code is another study's is refused too, naming both codes.
    form["completion_redirect_url"] = f"{PROLIFIC_COMPLETE}?cc=OTHER1"
    response = researcher_client.post(step_url(study, "recruitment"), form)
    assert "(OTHER1) is not this study&#x27;s completion code (C0DE42)" in errors_of(response)
    study.refresh_from_db()
    assert study.recruitment == Recruitment.OPEN_LINK and study.completion_redirect_url == ""


def test_each_model_against_a_reference_needs_one(researcher_client):
    study = new_draft(researcher_client)
    response = researcher_client.post(step_url(study, "design"), {**DESIGN, "pairing": PairingDesign.VS_REFERENCE})
    assert "needs a reference: choose one on the Models step." in errors_of(response)
    study.refresh_from_db()
    assert study.pairing == PairingDesign.ALL_PAIRS


def test_a_study_is_cloned_into_a_new_draft(researcher_client):
    a, b = factories.model(), factories.model()
    ps = factories.prompt_set()
    factories.prompt(ps)
    original = factories.study(
        ps, [a, b], votes_per_comparison=5, instructions="Read both.", exclude_after_failed_checks=4,
        status=StudyStatus.CLOSED,
    )  # fmt: skip
    response = researcher_client.post(reverse("ratings:study-clone", args=[original.slug]))
    clone = Study.objects.exclude(pk=original.pk).get()
    assert response["Location"] == step_url(clone, "basics")
    assert clone.title == f"Copy of {original.title}" and clone.status == StudyStatus.DRAFT
    assert set(clone.language_models.all()) == {a, b} and clone.prompt_set == ps
    assert clone.votes_per_comparison == 5 and clone.instructions == "Read both."
    assert clone.exclude_after_failed_checks == 4
    assert clone.token != original.token and clone.completion_code != original.completion_code
    assert clone.comparisons.count() == 0
    # The original is closed: its set-up pages send the researcher to clone it instead.
    assert researcher_client.get(step_url(original, "design"))["Location"] == reverse(
        "ratings:study-detail", args=[original.slug]
    )


def test_set_up_pages_are_for_researchers_only(client):
    study = factories.study(factories.prompt_set(), status=StudyStatus.DRAFT)
    urls = [reverse("ratings:study-new"), step_url(study, "models"), reverse("ratings:study-clone", args=[study.slug])]
    for url in urls:
        assert client.post(url)["Location"].startswith("/admin/login/")
    someone = get_user_model().objects.create_user("someone", password="a-long-test-password")
    client.force_login(someone)
    for url in urls:
        assert client.post(url).status_code == 403
    assert Study.objects.count() == 1


def test_a_draft_without_prompts_yet_opens_every_researcher_page(researcher_client):
    """A draft may have no prompt set yet (it is saved at the first step): no page may fail on it."""
    study = new_draft(researcher_client)
    pages = ["ratings:study-detail", "ratings:study-recruitment", "quality:study-quality", "judges:dashboard"]
    pages += [f"dashboard:{name}" for name in ("overview", "substance", "matrix", "activity", "raters")]
    for name in pages:
        assert researcher_client.get(reverse(name, args=[study.slug])).status_code == 200, name
    assert researcher_client.get(reverse("preview:item", args=[study.token])).status_code == 200
    assert "Nothing to show yet" in researcher_client.get(reverse("preview:item", args=[study.token])).content.decode()
