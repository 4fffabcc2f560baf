"""Import LLM judges' verdicts onto a study's answers: PRD reviewer files, FastChat MT-bench pairwise
judgments, or Arena battle JSONL whose records name a judge. All or nothing: a malformed file (its line is
named), a model the study does not have, or a question without an answer writes nothing."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from judges.actions import JudgeRefused, do_import_verdicts, verdict_counts
from judges.formats import JudgementFormatError, read_arena, read_mtbench, read_prd
from ratings.actions.snapshots import do_compute_snapshots
from ratings.models import Study

FORMATS = ("prd", "mtbench", "arena")


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("path", help="A file, or for PRD a ratings-<judge>/ folder or a folder of them.")
        parser.add_argument("--study", required=True, metavar="SLUG")
        parser.add_argument("--format", choices=FORMATS, default="prd")
        parser.add_argument("--judge", help="The judge's name (default: from the file or the folder name).")
        parser.add_argument("--no-snapshot", action="store_true", help="Do not recompute the study's analysis.")

    def handle(self, *args, path: str, study: str, format: str, judge: str | None, **options):
        found = Study.objects.filter(slug=study).first()
        if found is None:
            raise CommandError(f"no study {study!r}")
        source = Path(path)
        skipped = 0
        try:
            if format == "prd":
                verdicts = read_prd(source, judge)
            else:
                if not source.is_file():
                    raise CommandError(f"{path}: no such file")
                with source.open(encoding="utf-8") as fh:
                    if format == "mtbench":
                        verdicts, skipped = read_mtbench(fh, source.name, judge)
                    else:
                        verdicts = read_arena(fh, source.name, judge)
            result = do_import_verdicts(found, verdicts, source=f"{format} file {source.name}")
        except (JudgementFormatError, JudgeRefused) as exc:
            raise CommandError(f"{exc} Nothing was imported.") from exc
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}. Nothing was imported.") from exc
        for name, n in sorted(result.created.items()):
            self.stdout.write(f"{name}: {n} verdicts imported")
        if result.already_there:
            self.stdout.write(f"{result.already_there} verdicts were already there and were left as they were.")
        if skipped:
            self.stdout.write(f"{skipped} records of other turns skipped (single-turn studies read turn 1 only).")
        counts = verdict_counts(found)
        for name in sorted(result.created):
            c = counts.get(name, {})
            self.stdout.write(
                f"{name} on {found.slug}: first shown {c.get('first', 0)}, second {c.get('second', 0)}, "
                f"tie {c.get('tie', 0)}, unparsed {c.get('unparsed', 0)}"
            )
        if not options["no_snapshot"]:
            do_compute_snapshots(found)
            self.stdout.write("Analysis snapshot recomputed.")
