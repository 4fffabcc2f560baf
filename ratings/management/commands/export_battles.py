"""Export a study's votes as battles (Chatbot Arena clean-battle JSONL)."""

import sys

from django.core.management.base import BaseCommand, CommandError

from ratings.analysis.battles import export_battles
from ratings.models import Study


class Command(BaseCommand):
    help = "Write the study's votes as clean-battle JSONL (with both conversations) to FILE, or - for stdout."

    def add_arguments(self, parser):
        parser.add_argument("--study", metavar="SLUG", required=True)
        parser.add_argument("file", metavar="FILE")
        parser.add_argument("--no-conversations", action="store_true", help="Leave out the question and answers.")

    def handle(self, *args, study: str, file: str, no_conversations: bool, **options):
        found = Study.objects.filter(slug=study).first()
        if found is None:
            raise CommandError(f"no study {study!r}")
        if file == "-":
            n = export_battles(found, sys.stdout, with_conversations=not no_conversations)
        else:
            with open(file, "w", encoding="utf-8") as fh:
                n = export_battles(found, fh, with_conversations=not no_conversations)
            self.stderr.write(f"Wrote {n} battles to {file}.")
