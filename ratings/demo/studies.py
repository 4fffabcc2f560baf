"""The demo: the Vicuna-80 human-vote study, a live SmolLM2 study, and substance scores (data/vicuna80).

Every loader here is idempotent: running it again finds what is there and adds only what is missing.
"""

import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction

from inference_workers.actions import (
    decoding_config_for,
    do_import_outputs,
    do_import_prompts,
    do_start_generation_job,
    imported_model,
    register_packaged_smollm2,
)
from inference_workers.models import (
    BenchmarkRun,
    GenerationJob,
    JobStatus,
    LanguageModel,
    ModelRole,
    PromptSet,
    Response,
)
from inference_workers.substance.actions import do_start_benchmark_run
from inference_workers.substance.datasets import efficientqa_test_rated, seeded_subset
from inference_workers.substance.prompts import NQ_ASK
from inference_workers.substance.published import import_file as import_published_file
from inference_workers.substance.runner import NQ_MAX_NEW_TOKENS
from ratings.actions.studies import do_create_attention_checks, do_create_comparisons
from ratings.models import PairingDesign, Study, StudyMode, StudyStatus

VICUNA80_DIR = Path(settings.BASE_DIR) / "data" / "vicuna80"
PROMPT_SET_NAME = "vicuna-80"


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
    model = imported_model(
        name,
        display_name=entry.display_name,
        role=entry.role,
        base_model_name=entry.base_model_name,
        parameter_count=entry.parameter_count,
        imitation_data_source=entry.imitation_data_source,
        notes="Answers imported from data/vicuna80 (see its SOURCE.md).",
    )
    rows = read_jsonl(VICUNA80_DIR / "generations" / entry.file)
    answers = {str(r["question_id"]): r[entry.answer_field] for r in rows}
    return model, do_import_outputs(model, prompt_set, answers)


LIVE_STUDY_SLUG = "vicuna80-live-smollm2-vs-chatgpt"
# Published substance for the demo's models, each score with its source (data/published-substance/SOURCE.md):
# MMLU, HumanEval, and Gudibande et al.'s NQ figure for ChatGPT; rows about models the demo does not
# register (LLaMA bases, Gudibande's imitation models, the PaLM 2 proxy for Bard) are skipped.
PUBLISHED_SCORES = Path(settings.BASE_DIR) / "data" / "published-substance" / "scores.csv"
PUBLISHED_BENCHMARKS = {"mmlu", "humaneval", "nq_open", "truthfulqa_mc1"}
# The LLaMA-1 base models the demo's fine-tunes name: no answers, only published scores, so that the
# style-vs-substance chart can draw each base beside its fine-tunes (lineage).
LLAMA_BASES = {
    "LLaMA-7B": ("llama-7b", 7_000_000_000),
    "LLaMA-13B": ("llama-13b", 13_000_000_000),
    "LLaMA-33B": ("llama-33b", 33_000_000_000),
    "LLaMA-65B": ("llama-65b", 65_000_000_000),
}


def register_base_models() -> None:
    """Register the LLaMA bases and point every model whose base_model_name names one at it."""
    for display_name, (name, parameters) in LLAMA_BASES.items():
        base = imported_model(
            name,
            display_name=display_name,
            role=ModelRole.BASE,
            parameter_count=parameters,
            notes="A base model with published scores only (data/published-substance): no answers here.",
        )
        LanguageModel.objects.filter(base_model_name=display_name, fine_tuned_from__isnull=True).exclude(
            pk=base.pk
        ).update(fine_tuned_from=base)


@dataclass
class LiveSetup:
    study: Study
    job: GenerationJob | None
    new_comparisons: int = 0


# SmolLM2 on a laptop CPU: a batch decodes until its longest answer ends, so the live study asks for short
# answers and caps them where nearly all end by themselves (bench/demo_answer_length.py; README, "Two commands").
DEMO_SYSTEM_PROMPT = "Answer in two or three sentences."
DEMO_MAX_NEW_TOKENS = 96


def live_decoding_config(max_new_tokens: int):
    return decoding_config_for(
        temperature=0.7,
        top_p=0.9,
        max_new_tokens=max_new_tokens,
        seed=0,
        system_prompt=DEMO_SYSTEM_PROMPT,
        trim_to_sentence=True,  # an answer cut off at the cap ends at its last complete sentence
    )


def setup_live_study(max_new_tokens: int) -> LiveSetup:
    """SmolLM2-135M-Instruct (generated here by the worker) against ChatGPT's imported answers.

    Queues a generation job only for questions SmolLM2 has not answered yet, and only when no
    job for them is already queued or running; comparisons are added as answers arrive.
    """

    with transaction.atomic():
        prompt_set = load_vicuna80_prompts()
        reference, _ = load_vicuna80_model(prompt_set, "gpt35")
        smollm2 = register_packaged_smollm2()
        study, _ = Study.objects.get_or_create(
            slug=LIVE_STUDY_SLUG,
            defaults={
                "title": "Live: SmolLM2-135M-Instruct vs ChatGPT on the Vicuna-80 questions",
                "prompt_set": prompt_set,
                "reference_model": reference,
                "pairing": PairingDesign.VS_REFERENCE,
                "status": StudyStatus.OPEN,
                "votes_per_comparison": 3,
                "comparisons_per_rater": 10,
                "attention_check_rate": 0.1,
                "instructions": (
                    "You will see a question and two answers written by AI assistants. Read both and "
                    "choose the better answer. Judge what is said, not only how it looks."
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
        study.language_models.add(reference, smollm2)
    job = generation_for(smollm2, prompt_set, live_decoding_config(max_new_tokens))
    return LiveSetup(study=study, job=job, new_comparisons=add_live_comparisons(study))


def generation_for(model: LanguageModel, prompt_set: PromptSet, config) -> GenerationJob | None:
    """The model's latest job on the set; a new one is queued only when answers are missing and none is under way."""

    answered = Response.objects.filter(model=model, prompt__prompt_set=prompt_set, decoding_config=config)
    job = (
        GenerationJob.objects.filter(model=model, prompt_set=prompt_set, decoding_config=config).order_by("-pk").first()
    )
    missing = prompt_set.prompts.count() - answered.count()
    if missing and (job is None or job.status not in (JobStatus.QUEUED, JobStatus.RUNNING)):
        job = do_start_generation_job(model, prompt_set, config)
    return job


def add_live_comparisons(study: Study) -> int:
    """Comparisons for every question both models have answered, plus the study's attention checks."""

    added = do_create_comparisons(study)
    regular = study.comparisons.filter(is_gold=False).count()
    gold_wanted = round(regular * study.attention_check_rate)
    gold_have = study.comparisons.filter(is_gold=True).count()
    if gold_wanted > gold_have:
        do_create_attention_checks(study, gold_wanted - gold_have)
    return added


def setup_substance(nq_subset: int):
    """SmolLM2's NQ-open accuracy on a seeded subset (run by the worker once) and published scores."""

    register_base_models()
    import_published_file(PUBLISHED_SCORES, only_benchmarks=PUBLISHED_BENCHMARKS, only_known_models=True)
    smollm2 = LanguageModel.objects.get(name="smollm2-135m-instruct")
    run = (
        BenchmarkRun.objects.filter(model=smollm2, benchmark="nq_open", published=False, subset_size=nq_subset)
        .exclude(status__in=[JobStatus.FAILED, JobStatus.CANCELLED])
        .order_by("-pk")
        .first()
    )
    return run or do_start_benchmark_run(smollm2, "nq_open", subset_size=nq_subset, subset_seed=0)


FACT_CHECK_STUDY_SLUG = "nq-open-fact-check-smollm2-vs-efficientqa"
FACT_CHECK_PROMPT_SET = "nq-open-efficientqa-fact-check"
EFFICIENTQA_MODEL = "efficientqa-systems"


def fact_check_decoding_config():
    """SmolLM2 is asked as the NQ-open benchmark asks (greedy, 16 new tokens), the instruction as system prompt."""

    return decoding_config_for(
        temperature=0.0, top_p=1.0, max_new_tokens=NQ_MAX_NEW_TOKENS, seed=0, system_prompt=NQ_ASK
    )


def setup_fact_check_study(n_questions: int) -> LiveSetup:
    """A fact-check study: SmolLM2-135M-Instruct against answers of the EfficientQA 2020 competition systems.

    A seeded subset of the EfficientQA test questions that have human-rated system answers
    (data/nq-open); reference answers are the questions' NQ answers. The "EfficientQA systems"
    model is imported: for each question one answer drawn (seeded) from all the system answers
    that the EfficientQA annotators rated, whatever their rating. The worker generates SmolLM2's
    answers once; comparisons are added as they arrive.
    """
    import random

    chosen = seeded_subset([q for q in efficientqa_test_rated() if q.rated], n_questions, seed=0)
    draw = random.Random(0)  # noqa: S311 - a reproducible draw, not a secret
    answers = {q.item_id: draw.choice(q.rated)[0] for q in chosen}
    with transaction.atomic():
        prompt_set, _ = PromptSet.objects.get_or_create(
            name=FACT_CHECK_PROMPT_SET,
            defaults={
                "title": "NQ-open questions for fact checking (EfficientQA test)",
                "description": "Short factual questions with their Natural Questions answers as reference answers.",
                "source": "NQ-open EfficientQA test set, CC BY-SA 3.0; see data/nq-open/SOURCE.md.",
            },
        )
        do_import_prompts(
            prompt_set,
            (
                {"external_id": q.item_id, "text": f"{q.question}?", "reference_answers": list(q.answers)}
                for q in chosen
            ),
        )
        systems = imported_model(
            EFFICIENTQA_MODEL,
            display_name="EfficientQA 2020 systems (a human-rated answer per question)",
            notes="Not one model: for each question, one answer drawn (seed 0) from the answers that the "
            "EfficientQA 2020 competition systems gave and human annotators rated (Min et al. 2021; "
            "data/nq-open/SOURCE.md), whatever the rating.",
        )
        do_import_outputs(systems, prompt_set, answers)
        smollm2 = register_packaged_smollm2()
        study, _ = Study.objects.get_or_create(
            slug=FACT_CHECK_STUDY_SLUG,
            defaults={
                "title": "Fact check: SmolLM2-135M-Instruct and EfficientQA systems on NQ-open questions",
                "mode": StudyMode.FACT_CHECK,
                "prompt_set": prompt_set,
                "pairing": PairingDesign.ALL_PAIRS,
                "status": StudyStatus.OPEN,
                "votes_per_comparison": 3,
                "comparisons_per_rater": 10,
                "attention_check_rate": 0.1,
                "instructions": (
                    "You will see a short factual question, its reference answer, and two answers. Judge each "
                    "answer on its own: correct, partly correct or wrong."
                ),
                "consent_text": (
                    "This is a research study on how well AI systems answer factual questions. Your choices "
                    "are recorded anonymously. You may stop at any time."
                ),
            },
        )
        study.language_models.add(smollm2, systems)
    job = generation_for(smollm2, prompt_set, fact_check_decoding_config())
    return LiveSetup(study=study, job=job, new_comparisons=add_live_comparisons(study))


DEMO_ACCOUNTS = (("admin", True), ("researcher", False))


def ensure_demo_accounts(credentials_file: Path) -> dict[str, str | None]:
    """Create the demo's admin and researcher on first run; later runs reuse them.

    Passwords are random, kept only in ``credentials_file`` (mode 0600, outside git).
    Returns {username: password, or None when the account predates the file}.
    """
    from django.contrib.auth import get_user_model

    from webapp.roles import ensure_researcher_group

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
