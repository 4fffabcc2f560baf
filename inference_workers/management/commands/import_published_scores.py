"""manage.py import_published_scores FILE: published benchmark scores with their sources (all or nothing)."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from inference_workers.substance.published import COLUMNS, PublishedScoreError, import_file


class Command(BaseCommand):
    help = f"Import published substance scores from a CSV with the columns {', '.join(COLUMNS)}."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument(
            "--benchmarks", help="Comma-separated benchmarks to import; rows of others are skipped and counted."
        )
        parser.add_argument(
            "--known-models-only",
            action="store_true",
            help="Skip (and count) rows whose model is not registered instead of refusing the file.",
        )

    def handle(self, *args, file: Path, benchmarks: str | None, known_models_only: bool, **options):
        if not file.is_file():
            raise CommandError(f"{file}: no such file")
        only = {b.strip() for b in benchmarks.split(",") if b.strip()} if benchmarks else None
        try:
            report = import_file(file, only_benchmarks=only, only_known_models=known_models_only)
        except PublishedScoreError as exc:
            raise CommandError(f"{file}: {exc}; nothing was imported") from exc
        skipped = "".join(f"; skipped {n} ({why})" for why, n in sorted(report.skipped.items()))
        self.stdout.write(f"{report.created} published scores imported, {report.already_there} already there{skipped}")
