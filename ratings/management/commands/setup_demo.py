"""Set up the demo: the Vicuna-80 human votes, a live SmolLM2 study, a fact-check study, substance scores, logins.

Idempotent: a second run finds everything and neither imports nor generates again. The worker
does the heavy parts (SmolLM2's answers, its NQ-open run, the analysis snapshots); with
``--wait`` this command shows their progress until they are done.
"""

import os
import sys
import time
from collections.abc import Callable

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from inference_workers.models import BenchmarkRun, GenerationJob, JobStatus
from inference_workers.substance.runner import planned_total
from ratings.demo.studies import (
    DEMO_MAX_NEW_TOKENS,
    add_live_comparisons,
    ensure_demo_accounts,
    setup_fact_check_study,
    setup_live_study,
    setup_substance,
)
from ratings.demo.vicuna80_votes import load_vicuna80_votes
from ratings.signals import vicuna80_votes_loaded
from ratings.tasks import compute_analysis_snapshots

FINISHED = {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED}


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


# Without a terminal, a progress line whose only change is the tokens so far is written at most this often.
TOKENS_LINE_EVERY_S = 10


def progress_bar(done: int, total: int, width: int = 30) -> str:
    filled = width * done // total if total else width
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total}"


def job_figures(job: GenerationJob) -> str:
    """What the job page shows beside the bar: tokens so far (those of the batch being decoded included),
    tok/s and time left; before the first token, what the worker is doing."""
    if not job.tokens_so_far:
        return "loading the model" if job.status == JobStatus.RUNNING else ""
    parts = [f"{job.tokens_so_far:,} token{'' if job.tokens_so_far == 1 else 's'}"]
    if job.tokens_per_second:
        parts.append(f"{job.tokens_per_second:.1f} tok/s")
    if job.eta_seconds is not None and job.status == JobStatus.RUNNING:
        parts.append(f"about {max(1, round(job.eta_seconds / 60))} min left")
    return ", ".join(parts)


class Command(BaseCommand):
    help = "Load the demo studies and staff logins (idempotent); the worker generates and scores."

    def add_arguments(self, parser):
        parser.add_argument(
            "--wait",
            type=float,
            default=0,
            metavar="SECONDS",
            help="Wait up to SECONDS for the worker's generation and benchmark, showing progress.",
        )
        parser.add_argument(
            "--max-new-tokens",
            type=int,
            default=int(os.environ.get("STYLEGAP_DEMO_MAX_NEW_TOKENS", DEMO_MAX_NEW_TOKENS)),
            help="Longest SmolLM2 answer in the live study "
            f"(env STYLEGAP_DEMO_MAX_NEW_TOKENS; default {DEMO_MAX_NEW_TOKENS}, measured: README).",
        )
        parser.add_argument(
            "--nq-subset",
            type=int,
            default=int(os.environ.get("STYLEGAP_DEMO_NQ_SUBSET", 200)),
            help="Seeded NQ-open subset for SmolLM2's accuracy (env STYLEGAP_DEMO_NQ_SUBSET; default 200).",
        )
        parser.add_argument(
            "--fact-check-questions",
            type=int,
            default=int(os.environ.get("STYLEGAP_DEMO_FACT_CHECK_QUESTIONS", 40)),
            help="NQ-open questions in the fact-check study (env STYLEGAP_DEMO_FACT_CHECK_QUESTIONS; default 40).",
        )
        parser.add_argument("--base-url", default="http://127.0.0.1:8000", help="Where the site is served.")

    def handle(
        self,
        *args,
        wait: float,
        max_new_tokens: int,
        nq_subset: int,
        fact_check_questions: int,
        base_url: str,
        **options,
    ):
        base_url = base_url.rstrip("/")
        votes = load_vicuna80_votes()
        human = votes.study
        vicuna80_votes_loaded.send(sender=self.__class__, study=human)  # e.g. the real LLM judges' verdicts
        n_votes = sum(c.votes.count() for c in human.comparisons.all())
        self.stdout.write(
            f"Study '{human.title}': {human.language_models.count()} models, {n_votes} human votes"
            + (" (imported now)." if votes.imported else " (already there).")
        )

        # One CPU-heavy job at a time on the worker's gpu queue, in this order: the live study's answers
        # first, then SmolLM2's NQ-open run (the live study's substance point), then the fact-check answers.
        live = setup_live_study(max_new_tokens)
        job = live.job
        self._say_generation(live, base_url)
        run = setup_substance(nq_subset)
        compute_analysis_snapshots.delay(human.pk)  # after the published scores (MMLU etc.) are in
        self.stdout.write(
            f"Substance: SmolLM2 on a seeded {nq_subset}-question NQ-open subset "
            + ("(done)." if run.status == JobStatus.SUCCEEDED else f"(run {run.pk}, queued for the worker).")
        )
        fact_check = setup_fact_check_study(fact_check_questions)
        fc_job = fact_check.job
        self._say_generation(fact_check, base_url)

        # Everything a visitor needs comes before the long waits: the Vicuna-80 study is readable now.
        accounts = ensure_demo_accounts(settings.VAR_DIR / "credentials.json")
        for username, password in accounts.items():
            shown = password or "(set before; see manage.py changepassword)"
            self.stdout.write(f"Login: {username} / {shown}")
        self.stdout.write(f"Rater link (live study): {base_url}/r/{live.study.token}/")
        self.stdout.write(f"Rater link (fact-check study): {base_url}/r/{fact_check.study.token}/")
        for study in (human, live.study, fact_check.study):
            self.stdout.write(f"Dashboard: {base_url}/studies/{study.slug}/dashboard/")
        pending = self._pending(job, run, fc_job, nq_subset)
        if pending:
            self.stdout.write(
                f"Open {base_url}/studies/ now: the Vicuna-80 study is ready. Still being generated: "
                + "; then ".join(pending)
                + f". Watch it at {base_url}/models/ (log: {settings.VAR_DIR}/log/worker.log)."
            )

        if wait > 0:
            deadline = time.monotonic() + wait
            # Only work still in progress is waited for: a second run shows no bars.
            if job is not None and job.status not in FINISHED:
                self._wait("SmolLM2 answers", lambda: self._job_progress(job.pk), deadline)
                ended = GenerationJob.objects.get(pk=job.pk)
                if ended.status != JobStatus.SUCCEEDED:
                    raise CommandError(f"SmolLM2's generation job ended {ended.status}: {ended.error}")
            self._add_comparisons("Live study", live.study, base_url)
            if run.status not in FINISHED:
                self._wait("NQ-open run", lambda: self._run_progress(run.pk), deadline)
                compute_analysis_snapshots.delay(live.study.pk)  # its substance point
            if fc_job is not None and fc_job.status not in FINISHED:
                self._wait("SmolLM2 fact-check answers", lambda: self._job_progress(fc_job.pk), deadline)
            self._add_comparisons("Fact-check study", fact_check.study, base_url)
        else:
            self._add_comparisons("Live study", live.study, base_url)
            self._add_comparisons("Fact-check study", fact_check.study, base_url)

    def _add_comparisons(self, label: str, study, base_url: str) -> None:
        added = add_live_comparisons(study)
        if added:
            n = plural(added, "comparison")
            self.stdout.write(f"{label}: {n} ready for raters at {base_url}/r/{study.token}/.")
        compute_analysis_snapshots.delay(study.pk)

    @staticmethod
    def _pending(job, run, fc_job, nq_subset: int) -> list[str]:
        pending = []
        if job is not None and job.status not in FINISHED:
            pending.append(f"SmolLM2's {job.total} answers for the live study")
        if run.status not in FINISHED:
            pending.append(f"its NQ-open accuracy ({nq_subset} questions)")
        if fc_job is not None and fc_job.status not in FINISHED:
            pending.append(f"its {fc_job.total} fact-check answers")
        return pending

    def _say_generation(self, setup, base_url: str) -> None:
        job = setup.job
        if job is None or job.status == JobStatus.SUCCEEDED:
            self.stdout.write(f"Study '{setup.study.title}': SmolLM2's answers are all there.")
        else:
            self.stdout.write(
                f"Study '{setup.study.title}': the worker is generating SmolLM2's {job.total} answers "
                f"(job {job.pk}; live progress at {base_url}/models/jobs/{job.pk}/)."
            )

    @staticmethod
    def _job_progress(job_id: int) -> tuple[int, int, bool, str]:
        job = GenerationJob.objects.get(pk=job_id)
        return job.done, job.total, job.status in FINISHED, job_figures(job)

    @staticmethod
    def _run_progress(run_id: int) -> tuple[int, int, bool, str]:
        run = BenchmarkRun.objects.get(pk=run_id)
        return run.n_items, planned_total(run), run.status in FINISHED, ""

    def _wait(self, label: str, progress: Callable[[], tuple[int, int, bool, str]], deadline: float) -> None:
        """A progress line: rewritten in place each second on a terminal; otherwise a new line when the count
        moves, and every TOKENS_LINE_EVERY_S while only the tokens of the running batch do."""
        tty = sys.stdout.isatty()
        shown, shown_count, shown_at = "", None, -float("inf")
        while True:
            done, total, finished, figures = progress()
            line = f"Worker: {label} {progress_bar(done, total)}" + (f", {figures}" if figures else "")
            now = time.monotonic()
            if line != shown and (tty or (done, total) != shown_count or now - shown_at >= TOKENS_LINE_EVERY_S):
                self.stdout.write(f"\r{line}\033[K" if tty else line, ending="" if tty else "\n")
                shown, shown_count, shown_at = line, (done, total), now
            if finished:
                break
            if time.monotonic() > deadline:
                raise CommandError(
                    f"The worker did not finish '{label}' in time ({done}/{total}). "
                    "Is the Celery worker running? See var/log/worker.log."
                )
            time.sleep(1)
        if tty:
            self.stdout.write("")
