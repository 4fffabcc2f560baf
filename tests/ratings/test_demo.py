"""The demo study loads the shipped Vicuna-80 data, and loading it again adds nothing."""

import pytest

from inference_workers.models import LanguageModel, Prompt, Response
from ratings.demo import (
    VICUNA80_MODELS,
    ensure_demo_accounts,
    load_vicuna80_model,
    load_vicuna80_prompts,
    setup_demo_study,
)
from ratings.models import Comparison
from ratings.roles import is_researcher

pytestmark = pytest.mark.django_db


def test_demo_study_is_idempotent():
    first = setup_demo_study()
    assert first.study.prompt_set.prompts.count() == 80
    assert len(first.new_response_ids) == 160
    assert first.new_comparisons == 80
    # Every comparison is ChatGPT (the reference) against Vicuna-13B on the same question.
    c = Comparison.objects.select_related("response_a__model", "response_b__model").first()
    assert {c.response_a.model.name, c.response_b.model.name} == {"gpt35", "vicuna-13b"}
    assert c.response_a.prompt_id == c.response_b.prompt_id == c.prompt_id

    second = setup_demo_study()
    assert (second.new_response_ids, second.new_comparisons) == ([], 0)
    assert Prompt.objects.count() == 80
    assert Response.objects.count() == 160
    assert Comparison.objects.count() == 80


@pytest.mark.parametrize("name", sorted(VICUNA80_MODELS))
def test_every_shipped_model_has_an_answer_to_every_question(name):
    prompt_set = load_vicuna80_prompts()
    model, ids = load_vicuna80_model(prompt_set, name)
    assert len(ids) == 80
    assert not Response.objects.filter(model=model, text="").exists()
    assert LanguageModel.objects.get(name=name).role == VICUNA80_MODELS[name].role


def test_demo_accounts_are_created_once_and_kept_private(tmp_path):
    creds = tmp_path / "credentials.json"
    first = ensure_demo_accounts(creds)
    assert set(first) == {"admin", "researcher"} and all(first.values())
    assert oct(creds.stat().st_mode & 0o777) == "0o600"
    assert ensure_demo_accounts(creds) == first

    from django.contrib.auth import authenticate

    researcher = authenticate(username="researcher", password=first["researcher"])
    assert researcher is not None and is_researcher(researcher) and not researcher.is_superuser
    assert authenticate(username="admin", password=first["admin"]).is_superuser
