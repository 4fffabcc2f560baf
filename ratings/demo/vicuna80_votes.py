"""The Vicuna-80 human votes (data/vicuna80/votes.jsonl, see its SOURCE.md) as a finished, imported study.

7,040 votes: 6,720 from the QLoRA human study (8 models, every pair, 3 votes per question and
pair) and 320 Claude votes added by PRD (1 per question, provenance undocumented). Each vote is
turned into a clean battle with both answers attached and stored through ratings.actions.battles, the
one import path. ``model_a`` is the answer shown first, as in the source files.
"""

from dataclasses import dataclass

from django.db import transaction

from inference_workers.actions import do_compute_style_features
from inference_workers.models import ModelRole, Response
from ratings.actions.battles import ImportResult, do_import_battles
from ratings.analysis.battles import Battle
from ratings.demo.studies import VICUNA80_DIR, VICUNA80_MODELS, CatalogueEntry, load_vicuna80_prompts, read_jsonl
from ratings.models import PairingDesign, Study, StudyStatus

VOTES_STUDY_SLUG = "vicuna80-human-votes"
# Claude's answers ship in data/vicuna80 (from PRD) but the demo catalogue does not list them.
CLAUDE = CatalogueEntry("answer_claude.jsonl", "text", "Claude (v1)", ModelRole.PROPRIETARY)
CATALOGUE = {**VICUNA80_MODELS, "claude": CLAUDE}


def _answers(entry: CatalogueEntry) -> dict[str, str]:
    rows = read_jsonl(VICUNA80_DIR / "generations" / entry.file)
    return {str(r["question_id"]): r[entry.answer_field] for r in rows}


def vicuna80_battles() -> list[Battle]:
    """Every vote in votes.jsonl as a battle, with the question and both answers."""
    questions = {str(r["question_id"]): r["text"] for r in read_jsonl(VICUNA80_DIR / "vicuna_questions.jsonl")}
    answers = {name: _answers(entry) for name, entry in CATALOGUE.items()}
    return [
        Battle(
            question_id=str(v["question_id"]),
            model_a=v["model_a"],
            model_b=v["model_b"],
            winner=v["winner"],
            judge=f"human (PRD {v['source_file'].rsplit('/', 1)[-1]}, vote {v['vote_index']})",
            question=questions[str(v["question_id"])],
            answer_a=answers[v["model_a"]][str(v["question_id"])],
            answer_b=answers[v["model_b"]][str(v["question_id"])],
        )
        for v in read_jsonl(VICUNA80_DIR / "votes.jsonl")
    ]


def _model_defaults() -> dict[str, dict]:
    return {
        name: {
            "display_name": e.display_name,
            "role": e.role,
            "base_model_name": e.base_model_name,
            "parameter_count": e.parameter_count,
            "imitation_data_source": e.imitation_data_source,
            "notes": "Answers imported from data/vicuna80 (see its SOURCE.md).",
        }
        for name, e in CATALOGUE.items()
    }


@dataclass(frozen=True)
class VotesStudy:
    study: Study
    imported: ImportResult | None


@transaction.atomic
def load_vicuna80_votes() -> VotesStudy:
    """Create the study and import its votes once; a second call finds them and adds nothing."""
    prompt_set = load_vicuna80_prompts()
    study, _ = Study.objects.get_or_create(
        slug=VOTES_STUDY_SLUG,
        defaults={
            "title": "Vicuna-80 human votes (QLoRA study, with PRD's Claude votes)",
            "prompt_set": prompt_set,
            "status": StudyStatus.CLOSED,
            "pairing": PairingDesign.ALL_PAIRS,
            "votes_per_comparison": 3,
            "imported": True,
            "instructions": "Imported: human pairwise votes from Dettmers et al. 2023 (QLoRA) as released by PRD.",
        },
    )
    if study.comparisons.filter(votes__isnull=False).exists():
        return VotesStudy(study, None)
    result = do_import_battles(VOTES_STUDY_SLUG, vicuna80_battles(), model_defaults=_model_defaults())
    study.reference_model = study.language_models.get(name="gpt35")
    study.save(update_fields=["reference_model"])
    missing = Response.objects.filter(
        prompt__prompt_set=prompt_set, model__in=study.language_models.all(), style_computed_at__isnull=True
    ).values_list("pk", flat=True)
    do_compute_style_features(list(missing))
    return VotesStudy(study, result)
