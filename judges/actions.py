"""State changes for judges: templates, judge configurations, judging jobs, imported verdicts.

Views, the admin, tasks and commands call these. Bad input raises ``JudgeRefused`` with a message for the
researcher, and writes nothing.
"""

import json
import uuid
from dataclasses import dataclass
from pathlib import Path

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import Count

from inference_workers.backends.registry import backend_for
from inference_workers.claims import reoffer_lapsed_shards, reopen, request_cancel, requeue_stalled
from inference_workers.models import LanguageModel, ModelStatus, Response
from inference_workers.shards import tasks_for
from judges.formats import ImportedVerdict
from judges.models import Judge, JudgePrompt, JudgeVerdict, JudgingJob, JudgingShard, Outcome, VerdictSource
from judges.verdicts import VerdictParser, template_problem
from ratings.models import Comparison, Study

JUDGING_TASK = "judges.tasks.run_judging_job"
SNAPSHOT_TASK = "ratings.tasks.compute_analysis_snapshots"
TEMPLATES_FILE = Path(settings.BASE_DIR) / "data" / "judges" / "templates.json"


class JudgeRefused(Exception):
    """Input that cannot be used; the message says why, in words the researcher can act on."""


# --- Templates and judges -----------------------------------------------------------------------


def do_create_prompt(name: str, title: str, system: str, user: str, parser: str, source: str = "") -> JudgePrompt:
    """A new prompt template; refused (nothing written) when it lacks a slot or names an unknown parser."""
    problem = template_problem(system, user)
    if problem:
        raise JudgeRefused(problem)
    if parser not in VerdictParser.values:
        raise JudgeRefused(f"Unknown verdict parser {parser!r}: use one of {', '.join(VerdictParser.values)}.")
    return JudgePrompt.objects.create(name=name, title=title, system=system, user=user, parser=parser, source=source)


def ensure_builtin_prompts(**kwargs) -> list[JudgePrompt]:
    """The shipped templates (data/judges/templates.json), created once; an edited one is left as it is."""
    out = []
    for t in json.loads(TEMPLATES_FILE.read_text(encoding="utf-8")):
        found = JudgePrompt.objects.filter(name=t["name"]).first()
        out.append(found or do_create_prompt(t["name"], t["title"], t["system"], t["user"], t["parser"], t["source"]))
    return out


def do_create_judge(name: str, model: LanguageModel, prompt: JudgePrompt, **decoding) -> Judge:
    """A judge that runs ``model`` with ``prompt``; decoding: temperature, top_p, max_new_tokens, seed."""
    problem = template_problem(prompt.system, prompt.user)
    if problem:
        raise JudgeRefused(f"The template {prompt.name} cannot be used: {problem}")
    display_name = decoding.pop("display_name", "")
    return Judge.objects.create(name=name, display_name=display_name, model=model, prompt=prompt, **decoding)


def imported_judge(name: str, source: str = "") -> Judge:
    judge, _ = Judge.objects.get_or_create(
        name=name, defaults={"display_name": name, "imported": True, "source": source}
    )
    return judge


# --- Judging jobs -------------------------------------------------------------------------------


def check_runnable(judge: Judge) -> None:
    if judge.imported or judge.model_id is None or judge.prompt_id is None:
        raise JudgeRefused(f"The judge {judge} holds imported verdicts only; it has no model to run.")
    if judge.model.status != ModelStatus.READY:
        raise JudgeRefused(
            f"The judge {judge} cannot run: its model {judge.model} is not ready "
            f"({judge.model.get_status_display().lower()})."
        )
    problem = template_problem(judge.prompt.system, judge.prompt.user)
    if problem:
        raise JudgeRefused(f"The judge {judge} cannot run: {problem}")
    try:
        backend = backend_for(judge.model)
    except LookupError as exc:
        raise JudgeRefused(str(exc)) from exc
    if backend.imported:
        raise JudgeRefused(f"The judge {judge} cannot run: {judge.model} holds imported answers and cannot judge.")


def do_queue_judging_job(job: JudgingJob) -> None:
    """Send the job to the judge model's queue (after commit): one delivery per shard, so every worker on the
    queue can take its shards (inference_workers/shards.py), under a fresh dispatch id (``celery_task_id``):
    deliveries of an older dispatch then step aside."""
    task_id = str(uuid.uuid4())
    JudgingJob.objects.filter(pk=job.pk).update(celery_task_id=task_id)
    job.celery_task_id = task_id
    queue = job.queue or backend_for(job.judge.model).queue
    copies = tasks_for(max(job.total - job.done, 1), settings.STYLEGAP_SHARD_JUDGING_ITEMS)

    def send() -> None:
        current_app.send_task(JUDGING_TASK, (job.pk, task_id), task_id=task_id, queue=queue)
        for _ in range(copies - 1):
            current_app.send_task(JUDGING_TASK, (job.pk, task_id), queue=queue)

    transaction.on_commit(send)


def do_start_judging_job(
    judge: Judge, study: Study, *, sample_size: int | None = None, sample_seed: int = 0, user=None, queue: str = ""
) -> JudgingJob:
    """Judge the study's comparisons (or a seeded sample), each in both orders; refused when the judge cannot run."""
    check_runnable(judge)
    n = study.comparisons.filter(is_gold=False).count()
    if n == 0:
        raise JudgeRefused(f"The study {study.slug} has no comparisons to judge.")
    if sample_size is not None and sample_size < 1:
        raise JudgeRefused("A sample needs at least one comparison.")
    with transaction.atomic():
        job = JudgingJob.objects.create(
            judge=judge,
            study=study,
            sample_size=sample_size,
            sample_seed=sample_seed,
            total=2 * min(n, sample_size or n),
            created_by=user,
            queue=queue,
        )
        do_queue_judging_job(job)
    return job


def do_cancel_judging_job(job: JudgingJob) -> None:
    """Ask the worker to stop at its next batch; a job still queued is cancelled at once."""
    request_cancel(JudgingJob.objects.all(), job.pk)


def do_retry_judging_job(job: JudgingJob) -> JudgingJob:
    """Queue a failed or cancelled job again; it asks only for the verdicts still missing."""
    reopened = reopen(JudgingJob.objects.select_related("judge__model"), job.pk, do_queue_judging_job, JudgingShard)
    if reopened is None:
        raise JudgeRefused("Only a failed or cancelled judging job can be retried.")
    return reopened


def do_resume_stalled_judging_jobs(stale_after_s: float) -> list[int]:
    """Queue again every running judging job whose worker died (it resumes with the missing verdicts)."""
    rows = JudgingJob.objects.select_related("judge__model")
    return requeue_stalled(rows, stale_after_s, do_queue_judging_job, JudgingShard)


def do_reoffer_lapsed_judging_shards() -> list[int]:
    """Shards whose worker stopped renewing its lease, open again, with a delivery of their job queued."""
    return reoffer_lapsed_shards(
        JudgingShard.objects, JudgingJob.objects.select_related("judge__model"), do_queue_judging_job
    )


def queue_snapshot(study_id: int) -> None:
    """New judge verdicts: the study's analysis snapshot is recomputed by the worker."""
    transaction.on_commit(lambda: current_app.send_task(SNAPSHOT_TASK, (study_id,)))


# --- Imported verdicts --------------------------------------------------------------------------


def study_responses(study: Study) -> dict[tuple[str, str], int]:
    """(model name, question id) -> the study's answer; answers its comparisons use come first."""
    in_comparisons = set()
    for a, b in Comparison.objects.filter(study=study).values_list("response_a_id", "response_b_id"):
        in_comparisons.update((a, b))
    rows = Response.objects.filter(
        model__in=study.language_models.all(), prompt__prompt_set_id=study.prompt_set_id
    ).values_list("pk", "model__name", "prompt__external_id")
    found: dict[tuple[str, str], int] = {}
    for pk, model, qid in sorted(rows, key=lambda r: (r[0] not in in_comparisons, r[0])):
        found.setdefault((model, qid), pk)
    return found


@dataclass(frozen=True)
class ImportResult:
    created: dict[str, int]  # judge name -> verdicts stored
    already_there: int


def do_import_verdicts(study: Study, verdicts: list[ImportedVerdict], source: str = "") -> ImportResult:
    """Store imported verdicts on the study's answers, all or nothing.

    Refused (nothing written) when a verdict names a model the study does not have, or a question the study's
    prompt set lacks or that model has no answer to. A verdict already stored (same judge, order and repeat)
    is left as it was, so importing a file twice adds nothing.
    """
    if not verdicts:
        raise JudgeRefused("The file holds no verdicts.")
    models = set(study.language_models.values_list("name", flat=True))
    named = {v.model_first for v in verdicts} | {v.model_second for v in verdicts}
    unknown = sorted(named - models)
    if unknown:
        raise JudgeRefused(
            f"The judge file names models the study {study.slug} does not have: {', '.join(unknown)} "
            f"(its models: {', '.join(sorted(models))})."
        )
    prompts = dict(study.prompt_set.prompts.values_list("external_id", "pk"))
    answers = study_responses(study)
    missing = sorted(
        {(m, v.question_id) for v in verdicts for m in (v.model_first, v.model_second)} - set(answers),
        key=str,
    )
    if missing:
        shown = ", ".join(f"{m} on question {q}" for m, q in missing[:5])
        raise JudgeRefused(f"No answer in the study {study.slug} for {len(missing)} verdict side(s): {shown}.")
    with transaction.atomic():
        judges = {name: imported_judge(name, source) for name in sorted({v.judge for v in verdicts})}
        rows = [
            JudgeVerdict(
                judge=judges[v.judge],
                study=study,
                prompt_id=prompts[v.question_id],
                response_first_id=answers[(v.model_first, v.question_id)],
                response_second_id=answers[(v.model_second, v.question_id)],
                repeat=v.repeat,
                outcome=v.outcome,
                text=v.text,
                source=VerdictSource.IMPORTED,
                external_id=v.external_id,
            )
            for v in verdicts
        ]
        before = per_judge_counts(study, judges.values())
        JudgeVerdict.objects.bulk_create(rows, ignore_conflicts=True)
        after = per_judge_counts(study, judges.values())
    created = {name: after.get(name, 0) - before.get(name, 0) for name in judges}
    return ImportResult(created=created, already_there=len(rows) - sum(created.values()))


def per_judge_counts(study: Study, judges) -> dict[str, int]:
    return dict(
        JudgeVerdict.objects.filter(study=study, judge__in=list(judges))
        .values("judge__name")
        .annotate(n=Count("pk"))
        .values_list("judge__name", "n")
    )


def export_verdicts(study: Study, judge_names: list[str] | None = None) -> list[ImportedVerdict]:
    """The study's judge verdicts (all judges, or those named) in the files' terms."""
    rows = JudgeVerdict.objects.filter(study=study)
    if judge_names:
        rows = rows.filter(judge__name__in=judge_names)
    rows = rows.order_by("judge__name", "pk").values_list(
        "judge__name",
        "prompt__external_id",
        "response_first__model__name",
        "response_second__model__name",
        "outcome",
        "text",
        "external_id",
        "repeat",
    )
    return [ImportedVerdict(*row) for row in rows]


def verdict_counts(study: Study) -> dict[str, dict[str, int]]:
    """judge name -> {outcome: count} for the study (what an import produced)."""
    out: dict[str, dict[str, int]] = {}
    for name, outcome in JudgeVerdict.objects.filter(study=study).values_list("judge__name", "outcome"):
        out.setdefault(name, {o: 0 for o in Outcome.values})[outcome] += 1
    return out
