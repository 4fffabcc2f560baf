"""From a set-up draft to an open study: what is missing, one Launch, and closing and reopening.

``readiness(study)`` lists what stands between the study and its raters, in the researcher's words
("1 of 2 models have answered all 20 prompts; job 12 is 45% done"). Some gaps only the researcher can
fill (no prompts, one model, a model that failed validation, a Prolific study without its completion
URL): they block Launch. The rest Launch fills itself:

1. ``do_launch_study`` queues a generation job (``inference_workers.actions.do_start_generation_job``)
   for every model that has not answered every prompt and has no job under way, marks the study as
   launching, and sends ``advance_launch``;
2. ``do_advance_launch`` (in the worker, again every few seconds while jobs run, and from beat every
   minute in case a message was lost) waits for the jobs; when all have finished it creates the
   comparisons and attention checks (the same actions as the admin's) and opens the study, or stops the
   launch with the reason when a job failed.
"""

import logging
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from inference_workers.actions import JobRefused, decoding_config_for, do_start_generation_job
from inference_workers.models import DecodingConfig, GenerationJob, JobStatus, LanguageModel, ModelStatus
from ratings.actions.studies import do_add_attention_checks_at_rate, do_create_comparisons
from ratings.engine.assignment import release_leases
from ratings.engine.locks import lock_assignments
from ratings.models import Assignment, AssignmentStatus, PairingDesign, Recruitment, Study, StudyStatus
from ratings.modes import mode_for
from ratings.platforms.prolific import completion_problem

logger = logging.getLogger(__name__)

# Sent by name after the commit (ratings/tasks.py wires it); actions never import tasks.
ADVANCE_LAUNCH_TASK = "ratings.tasks.advance_launch"
# How often a launch looks at its jobs again while they run.
LAUNCH_POLL_SECONDS = 3
# Answers for a launch whose study names no decoding settings.
DEFAULT_DECODING = {"temperature": 0.7, "top_p": 0.9, "max_new_tokens": 512, "seed": 0}


class LaunchRefused(Exception):
    """A launch, close or reopen that cannot happen; the message is shown to the researcher."""


@dataclass
class ModelProgress:
    model: LanguageModel
    n_answered: int
    job: GenerationJob | None  # the newest job of this model on the study's prompt set

    @property
    def job_percent(self) -> int:
        return round(100 * self.job.done / self.job.total) if self.job and self.job.total else 0


@dataclass
class Readiness:
    """What a study lacks before it can open. ``blockers`` must be fixed by the researcher; ``steps`` are
    the lines of the study page's list, each (done, text)."""

    blockers: list[str] = field(default_factory=list)
    steps: list[tuple[bool, str]] = field(default_factory=list)
    models: list[ModelProgress] = field(default_factory=list)
    n_prompts: int = 0
    n_comparisons: int = 0

    @property
    def missing_answers(self) -> list[ModelProgress]:
        return [m for m in self.models if m.n_answered < self.n_prompts]

    @property
    def jobs_running(self) -> list[GenerationJob]:
        return [m.job for m in self.missing_answers if m.job is not None and not m.job.is_finished]


def _model_progress(study: Study, models: list[LanguageModel]) -> list[ModelProgress]:
    if study.prompt_set_id is None:
        return [ModelProgress(m, 0, None) for m in models]
    answered = dict(
        study.prompt_set.prompts.filter(responses__model__in=models)
        .values("responses__model")
        .annotate(n=Count("pk", distinct=True))
        .values_list("responses__model", "n")
    )
    newest = {}
    for job in GenerationJob.objects.filter(prompt_set=study.prompt_set, model__in=models).order_by("created_at"):
        newest[job.model_id] = job
    return [ModelProgress(m, answered.get(m.pk, 0), newest.get(m.pk)) for m in models]


def readiness(study: Study) -> Readiness:
    """The study's list of what is done and what is missing (see the module docstring)."""
    r = Readiness()
    models = list(study.language_models.order_by("pk"))
    r.n_prompts = study.prompt_set.prompts.count() if study.prompt_set_id else 0
    if not r.n_prompts:
        r.blockers.append("Choose a prompt set or upload prompts.")
    r.steps.append((bool(r.n_prompts), f"Prompts: {r.n_prompts}" if r.n_prompts else "No prompts yet."))
    if len(models) < 2:
        r.blockers.append(f"Choose at least two models (chosen: {len(models)}).")
    if study.pairing == PairingDesign.VS_REFERENCE and study.reference_model_id not in {m.pk for m in models}:
        r.blockers.append("Each model is compared with the reference: choose a reference among the study's models.")
    for m in models:
        if m.status != ModelStatus.READY:
            why = f": {m.status_message}" if m.status_message else ""
            r.blockers.append(f"{m} cannot answer: it is {m.get_status_display().lower()}{why}")
    r.steps.append((len(models) >= 2, f"Models: {', '.join(str(m) for m in models) or 'none yet'}."))
    if r.n_prompts:
        problem = mode_for(study).opening_problem(study)
        if problem:
            r.blockers.append(problem)
    if study.recruitment == Recruitment.PROLIFIC:
        problem = completion_problem(study.completion_redirect_url, study.completion_code)
        if problem:
            r.blockers.append(problem)
    r.models = _model_progress(study, models)
    if models and r.n_prompts:
        complete = len(models) - len(r.missing_answers)
        text = f"{complete} of {len(models)} models have answered all {r.n_prompts} prompts"
        running = [
            f"job {j.pk} ({j.model}) is {round(100 * j.done / j.total) if j.total else 0}% done" for j in r.jobs_running
        ]
        r.steps.append((not r.missing_answers, "; ".join([text, *running]) + "."))
    r.n_comparisons = study.comparisons.count()
    r.steps.append(
        (
            bool(r.n_comparisons),
            f"Comparisons: {r.n_comparisons}." if r.n_comparisons else "Comparisons not yet created.",
        )
    )
    return r


def launch_decoding_config(study: Study) -> DecodingConfig:
    """The decoding settings Launch generates answers with: the study's, else the defaults."""
    return study.decoding_config or decoding_config_for(**DEFAULT_DECODING)


def _send_advance(study_id: int, countdown: float = 0) -> None:
    from celery import current_app

    try:
        current_app.send_task(ADVANCE_LAUNCH_TASK, (study_id,), countdown=countdown)
    except Exception:
        # Beat's advance_launches picks the study up within a minute.
        logger.exception("could not send advance_launch for study %s", study_id)


def do_launch_study(study: Study, user=None) -> list[GenerationJob]:
    """Queue the missing answers and mark the study launching; the worker opens it when the answers are in.

    Refused, writing nothing, while the researcher still has something to fix. Returns the jobs queued.
    """
    with transaction.atomic():
        locked = Study.objects.select_for_update().get(pk=study.pk)
        if locked.status != StudyStatus.DRAFT:
            raise LaunchRefused(f"This study is {locked.get_status_display().lower()} already.")
        if locked.launch_requested_at is not None:
            raise LaunchRefused("This study is being launched already.")
        state = readiness(locked)
        if state.blockers:
            raise LaunchRefused("Not launched: " + " ".join(state.blockers))
        config = launch_decoding_config(locked)
        jobs = []
        for progress in state.missing_answers:
            if progress.job is not None and not progress.job.is_finished:
                continue  # already under way
            try:
                jobs.append(do_start_generation_job(progress.model, locked.prompt_set, config, user=user))
            except JobRefused as exc:
                raise LaunchRefused(f"Not launched: {exc}") from exc
        locked.launch_requested_at, locked.launch_error = timezone.now(), ""
        locked.save(update_fields=["launch_requested_at", "launch_error"])
        transaction.on_commit(lambda: _send_advance(locked.pk))
    study.launch_requested_at, study.launch_error = locked.launch_requested_at, ""
    return jobs


def _stop_launch(study: Study, reason: str) -> str:
    Study.objects.filter(pk=study.pk).update(launch_requested_at=None, launch_error=reason[:2000])
    return "stopped"


def do_advance_launch(study_id: int) -> str:
    """One look at a launching study: "waiting" (jobs still run), "opened", "stopped" (with the reason
    stored in ``launch_error``), or "idle" (not launching, or deleted since)."""
    study = Study.objects.select_related("prompt_set").filter(pk=study_id).first()
    if study is None or study.launch_requested_at is None or study.status != StudyStatus.DRAFT:
        return "idle"
    state = readiness(study)
    if state.jobs_running:
        return "waiting"
    if state.blockers:
        return _stop_launch(study, "Launch stopped: " + " ".join(state.blockers))
    for progress in state.missing_answers:
        job = progress.job
        if job is not None and job.status in (JobStatus.FAILED, JobStatus.CANCELLED):
            why = f": {job.error}" if job.error else ""
            return _stop_launch(
                study, f"Launch stopped: job {job.pk} ({job.model}) {job.get_status_display().lower()}{why}"
            )
    with transaction.atomic():
        locked = Study.objects.select_for_update().get(pk=study_id)
        if locked.launch_requested_at is None or locked.status != StudyStatus.DRAFT:
            return "idle"
        do_create_comparisons(locked)
        if not locked.comparisons.filter(is_gold=False).exists():
            return _stop_launch(locked, "Launch stopped: no prompt was answered by two of the study's models.")
        do_add_attention_checks_at_rate(locked)
        locked.status = StudyStatus.OPEN
        problem = locked.opening_problem()
        if problem:
            return _stop_launch(locked, f"Launch stopped: {problem}")
        locked.launch_requested_at = None
        locked.save(update_fields=["status", "launch_requested_at"])
    return "opened"


def do_advance_launches() -> dict[int, str]:
    """Every launching study looked at once (beat, every minute): a lost message never strands a launch."""
    ids = Study.objects.filter(launch_requested_at__isnull=False).values_list("pk", flat=True)
    return {pk: do_advance_launch(pk) for pk in ids}


def schedule_next_look(study_id: int) -> None:
    """The launch looks at its jobs again in a few seconds (the task calls this while it is "waiting")."""
    _send_advance(study_id, countdown=LAUNCH_POLL_SECONDS)


def do_close_study(study: Study) -> int:
    """Close an open study: raters see "not open", votes sent from now on are refused, and the items they
    held go back to the pool. Returns how many leases were released."""
    with transaction.atomic():
        updated = Study.objects.filter(pk=study.pk, status=StudyStatus.OPEN).update(status=StudyStatus.CLOSED)
        if not updated:
            raise LaunchRefused("Only an open study can be closed.")
        held = lock_assignments(Assignment.objects.filter(comparison__study=study, status=AssignmentStatus.LEASED))
        released = release_leases(held)
    study.status = StudyStatus.CLOSED
    return released


def do_reopen_study(study: Study) -> None:
    """Open a closed study again: raters resume where they stopped, under the same rules."""
    with transaction.atomic():
        locked = Study.objects.select_for_update().get(pk=study.pk)
        if locked.status != StudyStatus.CLOSED:
            raise LaunchRefused("Only a closed study can be reopened.")
        locked.status = StudyStatus.OPEN
        problem = locked.opening_problem()
        if problem:
            raise LaunchRefused(problem)
        locked.save(update_fields=["status"])
    study.status = StudyStatus.OPEN
