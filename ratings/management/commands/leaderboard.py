"""Print a leaderboard: Bradley-Terry ratings with intervals, raw and style-controlled.

For a fact-check study: human-judged accuracy per model beside the automatic one (ratings/analysis/fact_check.py).
"""

import json

from django.core.management.base import BaseCommand, CommandError

from ratings.analysis.battles import BattleFormatError, battles_to_arrays, read_battles
from ratings.analysis.fact_check import fact_check_results, payload_human_accuracy
from ratings.analysis.payload import (
    extension_results,
    leaderboard,
    leaderboard_json,
    payload_substance,
    substance_scores,
    trusted_subset,
)
from ratings.analysis.votes import ModelInfo, VoteTable, study_votes
from ratings.models import Study
from ratings.modes import mode_for


def table_from_battles(path: str) -> VoteTable:
    with open(path, encoding="utf-8") as fh:
        arrays = battles_to_arrays(read_battles(fh))
    return VoteTable(
        models=[ModelInfo(name, name) for name in arrays.models],
        model_a=arrays.model_a,
        model_b=arrays.model_b,
        outcome=arrays.outcome,
        style_a=arrays.style_a,
        style_b=arrays.style_b,
    )


class Command(BaseCommand):
    help = (
        "Bradley-Terry ratings on the Elo scale (mean 1000) with 95% bootstrap intervals, and style-controlled "
        "ratings when the answers' texts are known, from a study's votes or a clean-battle file."
    )

    def add_arguments(self, parser):
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--study", metavar="SLUG")
        source.add_argument("--battles", metavar="FILE")
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")
        parser.add_argument("--trusted", action="store_true", help="Only raters Dawid-Skene rates as reliable.")
        parser.add_argument("--rounds", type=int, default=100, help="Bootstrap rounds (default 100).")
        parser.add_argument("--pin", metavar="MODEL", help="Pin this model at 1000 instead of a mean of 1000.")
        parser.add_argument(
            "--style-bootstrap",
            action="store_true",
            help="Bootstrap intervals for style-controlled ratings too (default: sandwich, much faster).",
        )

    def handle(self, *args, study, battles, json: bool, trusted: bool, rounds: int, pin: str | None, **options):
        style_interval = "bootstrap" if options["style_bootstrap"] else "sandwich"
        if study:
            found = Study.objects.filter(slug=study).first()
            if found is None:
                raise CommandError(f"no study {study!r}")
            if mode_for(found).results_key == "fact_check":
                self._fact_check(found, json)
                return
            table = study_votes(found)
            if trusted:
                table = trusted_subset(table)
        else:
            try:
                table = table_from_battles(battles)
            except OSError as exc:
                raise CommandError(f"cannot read {battles}: {exc.strerror}") from exc
            except BattleFormatError as exc:
                raise CommandError(f"{battles}: {exc}") from exc
        names = [m.name for m in table.models]
        if pin is not None and pin not in names:
            raise CommandError(f"--pin {pin}: no votes for that model (models: {', '.join(names)})")
        reference = names.index(pin) if pin else None
        board = leaderboard(table, reference=reference, rounds=rounds, style_interval=style_interval)
        if json:
            extensions = extension_results(found) if study else {}  # other apps' results, e.g. LLM judges
            self.stdout.write(_dumps(leaderboard_json(board, substance_scores(names)) | extensions))
            return
        self.stdout.write(f"{board['n_votes']} votes")
        self.stdout.write(
            f"{'rank':>4}  {'model':<24} {'rating':>8} {'95% CI':>17} {'votes':>7} {'win rate':>8}  style-controlled"
        )
        for row in board["models"]:
            sc = row["style_controlled"]
            style = (
                f"{sc['rating']:.0f} [{sc['ci'][0]:.0f}, {sc['ci'][1]:.0f}] ({row['rank_change']:+d})" if sc else "-"
            )
            lo, hi = row["ci"]
            self.stdout.write(
                f"{row['rank']:>4}  {row['model']:<24} {row['rating']:>8.1f} [{lo:>6.1f}, {hi:>6.1f}]"
                f" {row['votes']:>7} {row['win_rate']:>8.3f}  {style}"
            )
        if board["style_coefficients"]:
            coefs = ", ".join(f"{k} {v:+.3f}" for k, v in board["style_coefficients"].items())
            self.stdout.write(f"style coefficients (log-odds per unit of normalised difference): {coefs}")

    def _fact_check(self, study: Study, as_json: bool) -> None:
        names = list(study.language_models.values_list("name", flat=True))
        payload = {"fact_check": fact_check_results(study, substance_scores(names))}
        if as_json:
            board = leaderboard(study_votes(study))
            self.stdout.write(
                _dumps(leaderboard_json(board, payload_substance(payload), payload_human_accuracy(payload)))
            )
            return
        results = payload["fact_check"]
        self.stdout.write(f"{results['n_votes']} fact-check votes, {results['n_verdicts']} verdicts")
        self.stdout.write(f"{'model':<28} {'human-judged':>12} {'95% CI':>16} {'answers':>7} {'automatic':>9}")
        for row in results["models"]:
            human, auto = row["human_accuracy"], row["automatic_accuracy"]
            if human is None:
                self.stdout.write(f"{row['model']:<28} {'-':>12}")
                continue
            lo, hi = human["ci"]
            self.stdout.write(
                f"{row['model']:<28} {human['accuracy']:>12.3f} [{lo:>6.3f}, {hi:>6.3f}] {human['n_items']:>7}"
                f" {auto['accuracy']:>9.3f}"
            )


def _dumps(value) -> str:
    return json.dumps(value, indent=2)
