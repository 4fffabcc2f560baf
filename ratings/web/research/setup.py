"""Setting up a study in the site, step by step, and running it: Launch, close, reopen, clone.

Each step's form is validated whole before its action writes (``ratings/actions/setup.py``), and each
step's POST saves the draft, so a researcher may stop after any step and come back. Launch, close and
reopen are ``ratings/actions/launch.py``'s; close and reopen ask for a confirmation first.
"""

from dataclasses import dataclass

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from ratings.actions.launch import LaunchRefused, do_close_study, do_launch_study, do_reopen_study
from ratings.actions.setup import SetupRefused, do_clone_study, do_create_draft, do_save_setup_step, do_upload_prompts
from ratings.models import PairingDesign, Study, StudyStatus
from ratings.web.research import setup_forms as f
from webapp.roles import researcher_required


@dataclass(frozen=True)
class Step:
    key: str
    title: str
    form: type


STEPS = [
    Step("basics", "Title and mode", f.BasicsForm),
    Step("models", "Models", f.ModelsForm),
    Step("prompts", "Prompts", f.PromptsForm),
    Step("design", "Design", f.DesignForm),
    Step("recruitment", "Recruitment", f.RecruitmentForm),
    Step("texts", "Consent and instructions", f.TextsForm),
]
STEP = {s.key: s for s in STEPS}


def initial(study: Study, step: str) -> dict:
    """The step's form filled from the study as saved."""
    if step == "basics":
        return {"title": study.title, "mode": study.mode}
    if step == "models":
        return {"models": list(study.language_models.all()), "reference_model": study.reference_model}
    if step == "prompts":
        return {"prompt_set": study.prompt_set}
    if step == "design":
        config = study.decoding_config
        generation = {
            "max_new_tokens": config.max_new_tokens if config else 512,
            "temperature": config.temperature if config else 0.7,
            "top_p": config.top_p if config else 0.9,
            "seed": config.seed if config else 0,
            "system_prompt": config.system_prompt if config else "",
        }
        fields = ("pairing", "votes_per_comparison", "comparisons_per_rater", "attention_check_rate")
        return {
            **{k: getattr(study, k) for k in fields},
            "qualification_items": study.qualification_items,
            "min_seconds_on_page": study.min_seconds_on_page,
            "follow_up_questions": f.follow_ups_text(study.questions()),
            **generation,
        }
    if step == "recruitment":
        return {k: getattr(study, k) for k in ("recruitment", "completion_code", "completion_redirect_url")}
    return {"consent_text": study.consent_text, "instructions": study.instructions}


def save(request, study: Study, step: str, form) -> None:
    """The step's action; raises SetupRefused or ValidationError, writing nothing."""
    data = form.cleaned_data
    if step == "models":
        do_save_setup_step(study, {"reference_model": data["reference_model"]}, models=data["models"])
    elif step == "prompts" and data.get("records"):
        upload = data["file"]
        do_upload_prompts(study, upload.name, data["records"])
        messages.info(request, f"{len(data['records'])} prompts read from {upload.name}.")
    elif step == "prompts":
        do_save_setup_step(study, {"prompt_set": data["prompt_set"]})
    elif step == "design":
        if data["pairing"] == PairingDesign.VS_REFERENCE and study.reference_model_id is None:
            raise ValidationError("Each model against the reference needs a reference: choose one on the Models step.")
        do_save_setup_step(study, form.study_fields(), decoding=form.decoding_values())
    else:
        do_save_setup_step(study, data)


def setup_page(request, study: Study | None, step: Step, form):
    return render(
        request,
        "ratings/setup.html",
        {"study": study, "step": step, "steps": STEPS, "form": form, "multipart": step.key == "prompts"},
    )


@researcher_required
def study_new(request):
    """The first step: title and mode make the draft; the later steps fill it in."""
    form = f.BasicsForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        study = do_create_draft(form.cleaned_data["title"], form.cleaned_data["mode"], user=request.user)
        messages.info(request, "Draft saved. Next: the models to compare.")
        return redirect("ratings:study-setup", slug=study.slug, step="models")
    return setup_page(request, None, STEPS[0], form)


@researcher_required
def study_setup(request, slug, step):
    study = get_object_or_404(Study.objects.select_related("prompt_set", "decoding_config"), slug=slug)
    if step not in STEP:
        return redirect("ratings:study-setup", slug=slug, step=STEPS[0].key)
    current = STEP[step]
    if study.status != StudyStatus.DRAFT:
        messages.warning(request, "Only a draft is set up here: clone this study to change a copy.")
        return redirect("ratings:study-detail", slug=slug)
    if request.method != "POST":
        return setup_page(request, study, current, current.form(initial=initial(study, step)))
    form = current.form(request.POST, request.FILES)
    if form.is_valid():
        try:
            save(request, study, step, form)
        except (SetupRefused, ValidationError) as exc:
            form.add_error(None, exc.messages if isinstance(exc, ValidationError) else str(exc))
        else:
            index = STEPS.index(current)
            if request.POST.get("then") == "stay":
                messages.info(request, "Draft saved.")
                return redirect("ratings:study-setup", slug=slug, step=step)
            if index + 1 < len(STEPS):
                return redirect("ratings:study-setup", slug=slug, step=STEPS[index + 1].key)
            messages.info(request, "Set-up saved. The list below says what is missing before the study can open.")
            return redirect("ratings:study-detail", slug=slug)
    return setup_page(request, study, current, form)


@require_POST
@researcher_required
def study_clone(request, slug):
    study = get_object_or_404(Study, slug=slug)
    clone = do_clone_study(study, user=request.user)
    messages.info(request, f"Cloned into a new draft: {clone.title}.")
    return redirect("ratings:study-setup", slug=clone.slug, step="basics")


@require_POST
@researcher_required
def study_launch(request, slug):
    study = get_object_or_404(Study, slug=slug)
    try:
        jobs = do_launch_study(study, user=request.user)
    except LaunchRefused as exc:
        messages.error(request, str(exc))
    else:
        queued = f"{len(jobs)} generation job{'s' if len(jobs) != 1 else ''} queued; " if jobs else ""
        messages.info(request, f"Launching: {queued}the study opens when every model has answered.")
    return redirect("ratings:study-detail", slug=slug)


CONFIRM = {
    "close": (
        "Close this study?",
        "Raters who open the link, or the next page, see that the study is not open; votes sent from now on are "
        "refused, and the items raters hold go back to the pool. Raters who finished keep their completion codes. "
        "Votes so far stay, and the dashboards go on showing them. You can reopen it later.",
        do_close_study,
    ),
    "reopen": (
        "Reopen this study?",
        "Raters can enter again and go on where they stopped, under the same quota and rules.",
        do_reopen_study,
    ),
}


def _confirmed_change(request, slug, change):
    study = get_object_or_404(Study, slug=slug)
    heading, meaning, action = CONFIRM[change]
    if request.method == "POST" and request.POST.get("confirm") == "yes":
        try:
            action(study)
            messages.info(request, f"Study {'closed' if change == 'close' else 'reopened'}.")
        except LaunchRefused as exc:
            messages.error(request, str(exc))
        return redirect("ratings:study-detail", slug=slug)
    context = {"study": study, "heading": heading, "meaning": meaning, "change": change}
    return render(request, "ratings/confirm.html", context)


@researcher_required
def study_close(request, slug):
    return _confirmed_change(request, slug, "close")


@researcher_required
def study_reopen(request, slug):
    return _confirmed_change(request, slug, "reopen")
