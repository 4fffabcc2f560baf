"""Print a leaderboard: Bradley-Terry ratings with intervals, raw and style-controlled.

For a fact-check study: human-judged accuracy per model beside the automatic one (ratings/analysis/fact_check.py).
"""

import argparse
import json
import sys

from django.core.management.base import BaseCommand, CommandError

from ratings.analysis.battles import BattleFormatError
from ratings.analysis.fact_check import fact_check_results, payload_human_accuracy
from ratings.analysis.payload import (
    extension_results,
    leaderboard,
    leaderboard_json,
    payload_substance,
    substance_scores,
    substance_scores_if_stored,
    trusted_subset,
)
from ratings.analysis.votes import file_votes, study_votes
from ratings.models import Study
from ratings.modes import mode_for


def _anchor(value: str) -> tuple[str, float]:
    model, _, rating = value.rpartition("=")
    try:
        if not model:
            raise ValueError
        return model, float(rating)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r}: give MODEL=RATING, e.g. gpt-4-0613=1163") from None


class Command(BaseCommand):
    help = (
        "Bradley-Terry ratings on the Elo scale (mean 1000) with 95% intervals, and style-controlled ratings "
        "where the answers' style features are known (texts or conv_metadata), from a study's votes or a battle "
        "file (JSON array or JSONL, gzip or plain; no database needed)."
    )

    def add_arguments(self, parser):
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--study", metavar="SLUG")
        source.add_argument("--battles", metavar="FILE")
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")
        parser.add_argument("--trusted", action="store_true", help="Only raters Dawid-Skene rates as reliable.")
        parser.add_argument("--rounds", type=int, default=100, help="Bootstrap rounds (default 100).")
        anchor = parser.add_mutually_exclusive_group()
        anchor.add_argument("--pin", metavar="MODEL", help="Pin this model at 1000 instead of a mean of 1000.")
        anchor.add_argument(
            "--anchor",
            metavar="MODEL=RATING",
            type=_anchor,
            help="Pin this model at a published rating (e.g. mixtral-8x7b-instruct-v0.1=1114), as the Arena does.",
        )
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
            if trusted:
                raise CommandError("--trusted needs --study (a battle file's judges have no reliability model)")
            try:
                table = file_votes(battles, progress=_progress if sys.stderr.isatty() else None)
            except OSError as exc:
                raise CommandError(f"cannot read {battles}: {exc.strerror}") from exc
            except BattleFormatError as exc:
                raise CommandError(f"{battles}: {exc}") from exc
        names = [m.name for m in table.models]
        anchor_model, anchor_rating = options["anchor"] or (pin, None)
        if anchor_model is not None and anchor_model not in names:
            flag = "--pin" if pin else "--anchor"
            raise CommandError(f"{flag} {anchor_model}: no votes for that model (models: {', '.join(names)})")
        reference = names.index(anchor_model) if anchor_model else None
        board = leaderboard(
            table,
            reference=reference,
            rounds=rounds,
            style_interval=style_interval,
            anchor_rating=anchor_rating,
        )
        if json:
            # A battle file needs no database: substance scores only where one is there.
            substance = substance_scores(names) if study else substance_scores_if_stored(names)
            extensions = extension_results(found) if study else {}  # other apps' results, e.g. LLM judges
            self.stdout.write(_dumps(leaderboard_json(board, substance) | extensions))
            return
        self._text(board)

    def _text(self, board: dict) -> None:
        self.stdout.write(f"{board['n_votes']} votes")
        if not board["models"]:
            return
        self.stdout.write(
            f"{'rank':>4}  {'model':<24} {'rating':>8} {'95% CI':>17} {'votes':>7} {'win rate':>8}  "
            "style-controlled (style rank, rank change)"
        )
        for row in board["models"]:
            sc = row["style_controlled"]
            style = (
                f"{sc['rating']:.0f} [{_end(sc['ci'][0], 0, True)}, {_end(sc['ci'][1], 0, False)}] "
                f"(#{row['style_rank']}, {row['rank_change']:+d})"
                if sc
                else "-"
            )
            lo, hi = row["ci"]
            note = f"  * {row['interval_note']}" if row["interval_note"] else ""
            self.stdout.write(
                f"{row['rank']:>4}  {row['model']:<24} {row['rating']:>8.1f} "
                f"[{_end(lo, 1, True):>6}, {_end(hi, 1, False):>6}]"
                f" {row['votes']:>7} {row['win_rate']:>8.3f}  {style}{note}"
            )
        self.stdout.write(f"intervals: raw: {board['interval']['raw']}")
        if board["interval"]["style_controlled"]:
            self.stdout.write(f"intervals: style-controlled: {board['interval']['style_controlled']}")
        self.stdout.write(f"interval rule: {board['interval_rule']}; an unbounded end shows as inf")
        if board["anchor"]:
            self.stdout.write(f"anchor: {board['anchor']['model']} pinned at {board['anchor']['rating']:g}")
        style = board["style"]
        sources = style["sources"]
        if sources:
            self.stdout.write(
                f"style features: {sources['texts']} battles from answer texts, {sources['conv_metadata']} from "
                f"conv_metadata, {sources['missing']} without (texts win where a battle has both)"
            )
        if style["note"]:
            self.stdout.write(f"style control: {style['note']}")
        if board["style_coefficients"]:
            ci = board["style_coefficient_ci"]
            coefs = ", ".join(
                f"{k} {v:+.3f} [{_end(ci[k][0], 3, True)}, {_end(ci[k][1], 3, False)}]"
                for k, v in board["style_coefficients"].items()
            )
            self.stdout.write(f"style coefficients (log-odds per unit of normalised difference, 95% CI): {coefs}")

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


def _end(value: float | None, places: int, lower: bool) -> str:
    """An interval end; None is an end the data cannot bound."""
    if value is None:
        return "-inf" if lower else "inf"
    return f"{value:.{places}f}"


def _progress(done: int) -> None:
    sys.stderr.write(f"\rread {done:,} battles")
    sys.stderr.flush()
