"""The demo study: the Vicuna-80 questions with imported answers (data/vicuna80, see its SOURCE.md).

Every loader here is idempotent: running it again finds what is there and adds only what is missing.
"""

import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import transaction

from inference_workers.actions import do_import_outputs, do_import_prompts
from inference_workers.models import LanguageModel, ModelKind, ModelRole, ModelStatus, PromptSet
from ratings.actions import do_create_comparisons
from ratings.models import PairingDesign, Study, StudyStatus

VICUNA80_DIR = Path(settings.BASE_DIR) / "data" / "vicuna80"
PROMPT_SET_NAME = "vicuna-80"
DEMO_STUDY_SLUG = "vicuna80-chatgpt-vs-vicuna13b"


@dataclass(frozen=True)
class CatalogueEntry:
    """A model whose answers ship in data/vicuna80, with its research metadata."""

    file: str
    answer_field: str
    display_name: str
    role: str
    base_model_name: str = ""
    parameter_count: int | None = None
    imitation_data_source: str = ""


VICUNA80_MODELS = {
    "gpt4": CatalogueEntry("answer_gpt4.jsonl", "text", "GPT-4", ModelRole.PROPRIETARY),
    "gpt35": CatalogueEntry("answer_gpt35.jsonl", "text", "ChatGPT (gpt-3.5-turbo)", ModelRole.PROPRIETARY),
    "bard": CatalogueEntry("answer_bard.jsonl", "text", "Bard", ModelRole.PROPRIETARY),
    "vicuna-13b": CatalogueEntry(
        "answer_vicuna-13b.jsonl",
        "text",
        "Vicuna-13B",
        ModelRole.IMITATION,
        "LLaMA-13B",
        13_000_000_000,
        "ShareGPT (ChatGPT conversations)",
    ),
    "guanaco-7b": CatalogueEntry(
        "7b-guanaco-vicuna-generations-topp0.9-temp0.7.jsonl",
        "generation_truncated",
        "Guanaco-7B",
        ModelRole.BASE,
        "LLaMA-7B",
        7_000_000_000,
        "OASST1 (human-written)",
    ),
    "guanaco-13b": CatalogueEntry(
        "13b-guanaco-vicuna-generations-topp0.9-temp0.7.jsonl",
        "generation_truncated",
        "Guanaco-13B",
        ModelRole.BASE,
        "LLaMA-13B",
        13_000_000_000,
        "OASST1 (human-written)",
    ),
    "guanaco-33b": CatalogueEntry(
        "30b-guanaco-vicuna-generations-topp0.9-temp0.7.jsonl",
        "generation_truncated",
        "Guanaco-33B",
        ModelRole.BASE,
        "LLaMA-33B",
        33_000_000_000,
        "OASST1 (human-written)",
    ),
    "guanaco-65b": CatalogueEntry(
        "65b-guanaco-vicuna-generations-topp0.9-temp0.7.jsonl",
        "generation_truncated",
        "Guanaco-65B",
        ModelRole.BASE,
        "LLaMA-65B",
        65_000_000_000,
        "OASST1 (human-written)",
    ),
}


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def load_vicuna80_prompts() -> PromptSet:
    prompt_set, _ = PromptSet.objects.get_or_create(
        name=PROMPT_SET_NAME,
        defaults={
            "title": "Vicuna-80 questions",
            "description": "80 open-ended questions in 9 categories (writing, roleplay, knowledge, coding, ...).",
            "source": "QLoRA (Dettmers et al. 2023), MIT licence; see data/vicuna80/SOURCE.md.",
        },
    )
    records = read_jsonl(VICUNA80_DIR / "vicuna_questions.jsonl")
    do_import_prompts(
        prompt_set,
        ({"external_id": r["question_id"], "text": r["text"], "category": r["category"]} for r in records),
    )
    return prompt_set


def load_vicuna80_model(prompt_set: PromptSet, name: str) -> tuple[LanguageModel, list[int]]:
    """Register one catalogue model as imported outputs and store its 80 answers."""
    entry = VICUNA80_MODELS[name]
    model, _ = LanguageModel.objects.get_or_create(
        name=name,
        defaults={
            "display_name": entry.display_name,
            "kind": ModelKind.IMPORTED,
            "role": entry.role,
            "status": ModelStatus.READY,
            "base_model_name": entry.base_model_name,
            "parameter_count": entry.parameter_count,
            "imitation_data_source": entry.imitation_data_source,
            "notes": "Answers imported from data/vicuna80 (see its SOURCE.md).",
        },
    )
    rows = read_jsonl(VICUNA80_DIR / "generations" / entry.file)
    answers = {str(r["question_id"]): r[entry.answer_field] for r in rows}
    return model, do_import_outputs(model, prompt_set, answers)


@dataclass
class DemoSetup:
    study: Study
    new_response_ids: list[int] = field(default_factory=list)
    new_comparisons: int = 0


@transaction.atomic
def setup_demo_study() -> DemoSetup:
    """ChatGPT against Vicuna-13B (an imitation of ChatGPT) on the Vicuna-80 questions, open for rating."""
    prompt_set = load_vicuna80_prompts()
    reference, ref_ids = load_vicuna80_model(prompt_set, "gpt35")
    imitation, imi_ids = load_vicuna80_model(prompt_set, "vicuna-13b")
    study, _ = Study.objects.get_or_create(
        slug=DEMO_STUDY_SLUG,
        defaults={
            "title": "Vicuna-80: ChatGPT vs an imitation model",
            "prompt_set": prompt_set,
            "reference_model": reference,
            "pairing": PairingDesign.VS_REFERENCE,
            "status": StudyStatus.OPEN,
            "votes_per_comparison": 3,
            "comparisons_per_rater": 10,
            "instructions": (
                "You will see a question and two answers written by AI assistants. "
                "Read both and choose the better answer. Judge what is said, not only how it looks."
            ),
            "consent_text": (
                "This is a research study on how people judge AI-written answers. Your choices are "
                "recorded anonymously. You may stop at any time."
            ),
            "follow_up_questions": [
                {"key": "factual", "text": "Which answer is more factually accurate?"},
                {"key": "written", "text": "Which answer is better written?"},
            ],
        },
    )
    study.language_models.add(reference, imitation)
    return DemoSetup(study=study, new_response_ids=ref_ids + imi_ids, new_comparisons=do_create_comparisons(study))


DEMO_ACCOUNTS = (("admin", True), ("researcher", False))


def ensure_demo_accounts(credentials_file: Path) -> dict[str, str | None]:
    """Create the demo's admin and researcher on first run; later runs reuse them.

    Passwords are random, kept only in ``credentials_file`` (mode 0600, outside git).
    Returns {username: password, or None when the account predates the file}.
    """
    from django.contrib.auth import get_user_model

    from ratings.roles import ensure_researcher_group

    saved = json.loads(credentials_file.read_text()) if credentials_file.exists() else {}
    user_model = get_user_model()
    result: dict[str, str | None] = {}
    for username, superuser in DEMO_ACCOUNTS:
        user = user_model.objects.filter(username=username).first()
        if user is None:
            password = secrets.token_urlsafe(12)
            if superuser:
                user_model.objects.create_superuser(username, password=password)
            else:
                user = user_model.objects.create_user(username, password=password, is_staff=True)
                user.groups.add(ensure_researcher_group())
            saved[username] = password
        result[username] = saved.get(username)
    credentials_file.write_text(json.dumps(saved, indent=2))
    credentials_file.chmod(0o600)
    return result
