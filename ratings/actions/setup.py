"""Setting a study up from the site: a draft made at the first step, each later step saved onto it,
prompts uploaded as a new prompt set, and a study cloned into a new draft.

Only a draft that is not launching can change here; an open or closed study is cloned instead. Each
function validates nothing the forms have not: callers (the set-up views) pass cleaned values, and
each step is written in one transaction, so a refused step writes nothing.
"""

import secrets
from collections.abc import Iterable

from django.db import transaction
from django.utils.text import slugify

from inference_workers.actions import decoding_config_for, do_import_prompts
from inference_workers.models import LanguageModel, PromptSet
from ratings.models import Study, StudyStatus, new_completion_code, new_token

# The fields a set-up step may write (the rest, such as status and token, change through their own actions).
SETUP_FIELDS = frozenset(
    {
        "title", "mode", "prompt_set", "reference_model", "pairing", "votes_per_comparison",
        "comparisons_per_rater", "attention_check_rate", "qualification_items", "follow_up_questions",
        "recruitment", "completion_redirect_url", "completion_code", "consent_text", "instructions",
        "decoding_config", "min_seconds_on_page", "lease_seconds",
    }
)  # fmt: skip


class SetupRefused(Exception):
    """A set-up change that cannot be made; the message is shown to the researcher."""


def unique_slug(title: str) -> str:
    """A slug from the title with a short random suffix, so two studies with one title never clash."""
    base = slugify(title)[:80].strip("-") or "study"
    return f"{base}-{secrets.token_hex(3)}"


def do_create_draft(title: str, mode: str, user=None) -> Study:
    """The first step: a draft study with its title and mode (everything else keeps its default)."""
    return Study.objects.create(
        slug=unique_slug(title), title=title, mode=mode, status=StudyStatus.DRAFT, created_by=user
    )


def _editable(study: Study) -> Study:
    """The study's row, locked, if it is a draft not being launched; else SetupRefused."""
    locked = Study.objects.select_for_update().get(pk=study.pk)
    if locked.status != StudyStatus.DRAFT:
        raise SetupRefused(f"This study is {locked.get_status_display().lower()}: clone it to set up a changed copy.")
    if locked.launch_requested_at is not None:
        raise SetupRefused("This study is being launched: wait until it opens (or its launch stops) to change it.")
    return locked


def do_save_setup_step(
    study: Study, fields: dict, models: Iterable[LanguageModel] | None = None, decoding: dict | None = None
) -> Study:
    """Write one step's cleaned values onto a draft: the study's fields, its models (the models step), and
    the decoding settings Launch generates answers with (the design step)."""
    unknown = set(fields) - SETUP_FIELDS
    if unknown:
        raise ValueError(f"not set-up fields: {sorted(unknown)}")
    with transaction.atomic():
        locked = _editable(study)
        if decoding is not None:
            fields = {**fields, "decoding_config": decoding_config_for(**decoding)}
        for name, value in fields.items():
            setattr(locked, name, value)
        locked.full_clean(exclude=["slug", "token"])
        locked.save()
        if models is not None:
            locked.language_models.set(models)
    return locked


def do_upload_prompts(study: Study, title: str, records: list[dict]) -> PromptSet:
    """A new prompt set from an uploaded file's validated records, chosen as the draft's prompts."""
    with transaction.atomic():
        locked = _editable(study)
        prompt_set = PromptSet.objects.create(
            name=unique_slug(f"{locked.slug[:60]}-prompts"),
            title=title[:200],
            source=f"Uploaded for the study {locked.title!r}.",
        )
        do_import_prompts(prompt_set, records)
        locked.prompt_set = prompt_set
        locked.save(update_fields=["prompt_set"])
    study.prompt_set = prompt_set
    return prompt_set


def do_clone_study(study: Study, user=None) -> Study:
    """A new draft with the study's settings, models and prompts; no comparisons, raters or votes, and a
    fresh rater token and completion code (a rater of the original cannot complete the copy)."""
    copy_fields = (SETUP_FIELDS - {"title", "completion_code"}) | {
        "exclude_after_failed_checks",
        "exclude_below_median_seconds",
    }
    with transaction.atomic():
        clone = Study.objects.create(
            slug=unique_slug(study.title),
            title=f"Copy of {study.title}"[:200],
            status=StudyStatus.DRAFT,
            token=new_token(),
            completion_code=new_completion_code(),
            created_by=user,
            **{name: getattr(study, name) for name in copy_fields},
        )
        clone.language_models.set(study.language_models.all())
    return clone
