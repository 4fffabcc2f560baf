"""The demo's real LLM judges: five PRD reviewers (GPT-4, GPT-3.5, Claude, Bard, Vicuna-13B) on the answers
of the Vicuna-80 human-votes study (data/vicuna80-llm-judges, see its SOURCE.md), loaded once."""

from pathlib import Path

from django.conf import settings

from judges.actions import ImportResult, do_import_verdicts
from judges.formats import read_prd
from judges.models import Judge, JudgeVerdict
from ratings.models import Study

JUDGES_DIR = Path(settings.BASE_DIR) / "data" / "vicuna80-llm-judges"
DISPLAY_NAMES = {
    "gpt4": "GPT-4 as judge",
    "gpt35": "GPT-3.5 as judge",
    "claude": "Claude as judge",
    "bard": "Bard as judge",
    "vicuna-13b": "Vicuna-13B as judge",
}
SOURCE = (
    "PRD (Li, Patel, Du 2023, arXiv 2307.02762), data/vicuna80/ratings-<judge>/, snapshot 35fb99e5; MIT licence. "
    "Verdicts of the Vicuna three-class reviewer prompt; see data/vicuna80-llm-judges/SOURCE.md."
)


def load_vicuna80_judges(study: Study) -> ImportResult | None:
    """Import the five judges' 8,160 verdicts onto the study's answers; None when they are already there."""
    if JudgeVerdict.objects.filter(study=study, judge__name__in=DISPLAY_NAMES).exists():
        return None
    result = do_import_verdicts(study, read_prd(JUDGES_DIR), source=SOURCE)
    for name, display in DISPLAY_NAMES.items():
        Judge.objects.filter(name=name, display_name__in=("", name)).update(display_name=display)
    return result
