"""Compute analysis snapshots now, in this process (the worker does it on demand and periodically)."""

from django.core.management.base import BaseCommand, CommandError

from ratings.actions.snapshots import do_compute_snapshots
from ratings.analysis.snapshots import studies_needing_snapshots
from ratings.models import Study


class Command(BaseCommand):
    help = "Compute the analysis snapshots of one study (--study), or of every study whose votes changed."

    def add_arguments(self, parser):
        parser.add_argument("--study", metavar="SLUG")

    def handle(self, *args, study: str | None, **options):
        if study:
            found = Study.objects.filter(slug=study).first()
            if found is None:
                raise CommandError(f"no study {study!r}")
            studies = [found]
        else:
            studies = studies_needing_snapshots()
        for s in studies:
            snaps = do_compute_snapshots(s)
            seconds = sum(x.compute_seconds or 0 for x in snaps)
            self.stdout.write(
                f"{s.slug}: {', '.join(x.key for x in snaps)} on {snaps[0].n_votes} votes in {seconds:.2f} s"
            )
        if not studies:
            self.stdout.write("Every study's snapshots are up to date.")
