"""Import battles (Chatbot Arena clean-battle JSON array or JSONL, gzip or plain) into a study, all or nothing."""

import sys
import time

from django.core.management.base import BaseCommand, CommandError

from ratings.actions.battles import do_import_battles
from ratings.analysis.battles import BattleFormatError, read_battles
from ratings.demo.vicuna80_votes import VOTES_STUDY_SLUG, load_vicuna80_votes


class Command(BaseCommand):
    help = (
        "Import battles in the Chatbot Arena clean-battle convention (a JSON array or JSONL, gzip or plain, told "
        "from the content) into the study SLUG (created when missing), with their models, prompts, answers and "
        "judges (as the study's imported raters). A malformed record aborts the whole import. "
        "--vicuna80 loads the shipped Vicuna-80 human votes as a study instead."
    )

    def add_arguments(self, parser):
        parser.add_argument("--study", metavar="SLUG")
        parser.add_argument("file", nargs="?", metavar="FILE")
        parser.add_argument(
            "--vicuna80", action="store_true", help=f"Load data/vicuna80/votes.jsonl ({VOTES_STUDY_SLUG})."
        )

    def handle(self, *args, study: str | None, file: str | None, vicuna80: bool, **options):
        if vicuna80:
            loaded = load_vicuna80_votes()
            n = "already there" if loaded.imported is None else f"{loaded.imported.votes} votes imported"
            self.stdout.write(f"Study {loaded.study.slug}: {n}.")
            return
        if not study or not file:
            raise CommandError("give --study SLUG and FILE (or --vicuna80)")
        started = time.monotonic()
        try:
            result = do_import_battles(
                study, read_battles(file), progress=self._progress(started), checking=self._checking
            )
        except OSError as exc:
            raise CommandError(f"cannot read {file}: {exc.strerror}") from exc
        except BattleFormatError as exc:
            raise CommandError(f"{file}: {exc}; nothing was imported") from exc
        named = f" ({', '.join(result.new_models)})" if result.new_models else ""
        repeats = (
            f" {result.repeat_votes} repeat votes by a judge on answers it had already judged are kept without the"
            " rater link (one vote per rater and comparison)."
            if result.repeat_votes
            else ""
        )
        if result.repeat_votes == 1:
            repeats = repeats.replace("repeat votes", "repeat vote")
        self.stdout.write(
            f"Study {result.study.slug}: {result.votes} votes, {len(result.new_models)} new models{named}, "
            f"{result.new_prompts} new prompts, {result.new_responses} new answers, "
            f"{result.new_comparisons} new comparisons, {result.new_raters} judges (new imported raters)."
            f"{repeats} References checked {result.references}. {time.monotonic() - started:.1f} s."
        )

    def _checking(self, rows: int) -> None:
        end_of_progress_line = "\n" if sys.stderr.isatty() else ""
        sys.stderr.write(f"{end_of_progress_line}checking the references of {rows:,} new rows in bulk ...\n")
        sys.stderr.flush()

    def _progress(self, started: float):
        """A progress line: rewritten on a terminal, else one line each 100,000 votes (for logs)."""
        tty = sys.stderr.isatty()

        def report(done: int) -> None:
            if not tty and done % 100_000:
                return
            rate = done / max(time.monotonic() - started, 1e-9)
            line = f"stored {done:,} votes ({rate:,.0f}/s)"
            sys.stderr.write("\r" + line if tty else line + "\n")
            sys.stderr.flush()

        return report
