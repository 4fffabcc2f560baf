"""Export a study's LLM-judge verdicts: MT-bench pairwise JSONL, Arena battle JSONL, or PRD reviewer files."""

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from judges.actions import export_verdicts
from judges.formats import write_arena, write_mtbench, write_prd
from ratings.models import Study


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("out", help="A file (mtbench, arena; '-' for stdout) or, for prd, a folder.")
        parser.add_argument("--study", required=True, metavar="SLUG")
        parser.add_argument("--format", choices=("mtbench", "arena", "prd"), default="mtbench")
        parser.add_argument("--judge", action="append", help="Only this judge (repeatable).")

    def handle(self, *args, out: str, study: str, format: str, judge: list[str] | None, **options):
        found = Study.objects.filter(slug=study).first()
        if found is None:
            raise CommandError(f"no study {study!r}")
        verdicts = export_verdicts(found, judge)
        if not verdicts:
            raise CommandError(f"no judge verdicts on {study}" + (f" from {', '.join(judge)}" if judge else ""))
        if format == "prd":
            files = write_prd(verdicts, Path(out))
            self.stderr.write(f"{len(files)} files written under {out}")
            return
        write = write_mtbench if format == "mtbench" else write_arena
        if out == "-":
            n = write(verdicts, sys.stdout)
        else:
            with open(out, "w", encoding="utf-8") as fh:
                n = write(verdicts, fh)
        self.stderr.write(f"{n} records written")
