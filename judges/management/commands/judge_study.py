"""Judge a study's comparisons in both orders with an LLM judge, with progress in the terminal.

The judge is an existing one (``--judge NAME``) or one made here from a registered model and a template
(``--model NAME [--template mt-bench-pairwise] [--name JUDGE]``). By default the job goes to the judge
model's worker queue and the command follows its progress; ``--in-process`` runs it here instead.
"""

import threading
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from inference_workers.models import LanguageModel
from judges.actions import JudgeRefused, do_create_judge, do_start_judging_job, ensure_builtin_prompts
from judges.jobs import run_judging_job
from judges.models import Judge, JudgingJob
from ratings.models import Study


def progress_line(job: JudgingJob) -> str:
    width = 30
    filled = width * job.done // job.total if job.total else 0
    rate = f", {job.verdicts_per_second:.1f}/s" if job.verdicts_per_second else ""
    eta = f", {job.eta_seconds:.0f} s left" if job.eta_seconds else ""
    return (
        f"[{'#' * filled}{'.' * (width - filled)}] {job.done}/{job.total} verdicts, {job.unparsed} unparsed"
        f"{rate}{eta}, ${job.cost_usd}"
    )


def run_and_close(job_id: int) -> None:
    try:
        run_judging_job(job_id)
    finally:
        connection.close()  # this thread's own


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--study", required=True, metavar="SLUG")
        parser.add_argument("--judge", metavar="NAME", help="An existing judge.")
        parser.add_argument("--model", metavar="NAME", help="Make a judge of this registered model.")
        parser.add_argument("--template", default="mt-bench-pairwise", help="Its prompt template (with --model).")
        parser.add_argument("--name", help="The new judge's name (default: <model>-judge).")
        parser.add_argument("--max-new-tokens", type=int, default=512)
        parser.add_argument("--sample", type=int, help="Judge a seeded sample of this many comparisons.")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--in-process", action="store_true", help="Run here rather than on the worker.")
        parser.add_argument("--every", type=float, default=2.0, help="Seconds between progress lines.")

    def handle(self, *args, **o):
        study = Study.objects.filter(slug=o["study"]).first()
        if study is None:
            raise CommandError(f"no study {o['study']!r}")
        try:
            judge = self._judge(o)
            job = do_start_judging_job(judge, study, sample_size=o["sample"], sample_seed=o["seed"])
        except JudgeRefused as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Judging job {job.pk}: {judge} on {study.slug}, {job.total} verdicts (both orders).")
        if o["in_process"]:
            runner = threading.Thread(target=run_and_close, args=(job.pk,), daemon=True)
            runner.start()
        while True:
            job.refresh_from_db()
            self.stdout.write(progress_line(job))
            if job.is_finished:
                break
            time.sleep(o["every"])
        if o["in_process"]:
            runner.join()
        self.stdout.write(f"{job.get_status_display()}." + (f" {job.error}" if job.error else ""))

    def _judge(self, o) -> Judge:
        if o["judge"]:
            judge = Judge.objects.select_related("model", "prompt").filter(name=o["judge"]).first()
            if judge is None:
                raise CommandError(f"no judge {o['judge']!r}")
            return judge
        if not o["model"]:
            raise CommandError("name a judge (--judge) or a model to make one of (--model)")
        model = LanguageModel.objects.filter(name=o["model"]).first()
        if model is None:
            raise CommandError(f"no model {o['model']!r}")
        template = next((p for p in ensure_builtin_prompts() if p.name == o["template"]), None)
        if template is None:
            raise CommandError(f"no template {o['template']!r}")
        name = o["name"] or f"{model.name}-judge"
        found = Judge.objects.filter(name=name).first()
        return found or do_create_judge(name, model, template, max_new_tokens=o["max_new_tokens"])
