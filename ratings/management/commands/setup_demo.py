"""Set up the demo study and its staff accounts; the worker computes style features."""

import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from inference_workers.models import Response
from inference_workers.tasks import compute_style_features
from ratings.demo import ensure_demo_accounts, setup_demo_study


def progress_bar(done: int, total: int, width: int = 30) -> str:
    filled = width * done // total if total else width
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total}"


class Command(BaseCommand):
    help = "Load the Vicuna-80 demo study (idempotent) and create the demo admin and researcher."

    def add_arguments(self, parser):
        parser.add_argument(
            "--wait",
            type=float,
            default=0,
            metavar="SECONDS",
            help="Wait up to SECONDS for the worker to compute style features, showing progress.",
        )

    def handle(self, *args, wait: float, **options):
        demo = setup_demo_study()
        study = demo.study
        self.stdout.write(
            f"Demo study '{study.title}': {study.comparisons.count()} comparisons "
            f"({demo.new_comparisons} new), {len(demo.new_response_ids)} answers imported now."
        )
        answers = Response.objects.filter(prompt__prompt_set=study.prompt_set, model__in=study.language_models.all())
        missing = list(answers.filter(style_computed_at__isnull=True).values_list("pk", flat=True))
        if missing:
            result = compute_style_features.delay(missing, only_missing=True)
            self.stdout.write(f"Sent {len(missing)} answers to the worker for style features (task {result.id}).")
        else:
            self.stdout.write("Style features: all answers done already.")
        self._wait_for_style(answers, wait)

        accounts = ensure_demo_accounts(settings.VAR_DIR / "credentials.json")
        for username, password in accounts.items():
            shown = password or "(set before; see manage.py changepassword)"
            self.stdout.write(f"Login: {username} / {shown}")

    def _wait_for_style(self, answers, wait: float):
        if wait <= 0:
            return
        total = answers.count()
        deadline = time.monotonic() + wait
        tty = sys.stdout.isatty()
        last = -1
        while True:
            done = answers.filter(style_computed_at__isnull=False).count()
            if done != last:
                line = f"Worker: style features {progress_bar(done, total)}"
                self.stdout.write(f"\r{line}" if tty else line, ending="" if tty else "\n")
                last = done
            if done >= total:
                break
            if time.monotonic() > deadline:
                raise CommandError(
                    f"The worker did not finish style features in {wait:.0f} s ({done}/{total}). "
                    "Is the Celery worker running? See var/log/worker.log."
                )
            time.sleep(0.5)
        if tty:
            self.stdout.write("")
