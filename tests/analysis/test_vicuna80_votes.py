"""The real votes: the Vicuna-80 human study reproduces the PRD notebook and the data's own counts."""

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from ratings.analysis.battles import battles_to_arrays, read_battles
from ratings.analysis.votes import study_votes
from ratings.demo.vicuna80_votes import load_vicuna80_votes
from ratings.models import Vote
from stats.win_rates import majority_battles, win_rates

VOTES_FILE = Path(__file__).resolve().parents[2] / "data" / "vicuna80" / "votes.jsonl"
# PRD repository, peer_rank/peer_ranking.ipynb, saved output of compute_winrates(human_reviews).
PRD_WIN_RATES = {"gpt4": 0.821875, "claude": 0.6890625, "vicuna-13b": 0.3890625, "gpt35": 0.3140625, "bard": 0.2859375}
# data/vicuna80 SOURCE.md, "our own sanity computation" over the 6,720 non-Claude votes.
NON_CLAUDE_WIN_RATES = {
    "gpt4": 0.7119,
    "guanaco-65b": 0.5182,
    "guanaco-33b": 0.5140,
    "guanaco-7b": 0.5051,
    "vicuna-13b": 0.4905,
    "guanaco-13b": 0.4705,
    "gpt35": 0.4015,
    "bard": 0.3884,
}

pytestmark = pytest.mark.django_db


def prd_win_rates(names, model_a, model_b, outcome, group) -> dict[str, float]:
    five = np.array(
        [names[a] in PRD_WIN_RATES and names[b] in PRD_WIN_RATES for a, b in zip(model_a, model_b, strict=True)]
    )
    a, b, y = majority_battles(np.asarray(group)[five], model_a[five], model_b[five], outcome[five])
    assert len(y) == 800
    rates = win_rates(a, b, y, len(names))
    return {name: float(rates[i]) for i, name in enumerate(names) if name in PRD_WIN_RATES}


def test_the_imported_study_reproduces_the_prd_notebooks_win_rates_exactly(vicuna80_study):
    table = study_votes(vicuna80_study)
    names = [m.name for m in table.models]
    # One comparison is one question and ordered pair of answers: the notebook's majority unit.
    assert prd_win_rates(names, table.model_a, table.model_b, table.outcome, table.comparison) == PRD_WIN_RATES


def test_the_battle_file_reproduces_them_too():
    with VOTES_FILE.open() as fh:
        arrays = battles_to_arrays(read_battles(fh))
    group = [
        f"{q}|{arrays.models[a]}|{arrays.models[b]}"
        for q, a, b in zip(arrays.question, arrays.model_a, arrays.model_b, strict=True)
    ]
    assert prd_win_rates(arrays.models, arrays.model_a, arrays.model_b, arrays.outcome, group) == PRD_WIN_RATES


def test_the_non_claude_votes_match_the_sources_sanity_figures(vicuna80_study):
    table = study_votes(vicuna80_study)
    names = [m.name for m in table.models]
    claude = names.index("claude")
    keep = (table.model_a != claude) & (table.model_b != claude)
    sub = table.subset(keep)
    assert sub.n_votes == 6720
    assert Counter(sub.winner) == {"a": 3010, "b": 2945, "tie": 765}
    decisive = [w for w in sub.winner if w != "tie"]
    assert len(decisive) == 5955 and decisive.count("a") / 5955 == pytest.approx(0.505, abs=5e-4)
    rates = win_rates(sub.model_a, sub.model_b, sub.outcome, len(names))
    votes = np.bincount(sub.model_a, minlength=len(names)) + np.bincount(sub.model_b, minlength=len(names))
    for name, expected in NON_CLAUDE_WIN_RATES.items():
        assert rates[names.index(name)] == pytest.approx(expected, abs=5e-5)
        assert votes[names.index(name)] == 1680
    # Unanimous triples: 725 of 2,240; two labels 1,289; three labels 226.
    labels_per_triple = Counter(len(set(ws)) for ws in _by_comparison(sub).values())
    assert labels_per_triple == {1: 725, 2: 1289, 3: 226}


def _by_comparison(table) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for c, w in zip(table.comparison, table.winner, strict=True):
        out.setdefault(int(c), []).append(w)
    return out


def test_loading_again_adds_nothing(vicuna80_study):
    assert Vote.objects.filter(comparison__study=vicuna80_study).count() == 7040
    again = load_vicuna80_votes()
    assert again.imported is None and again.study == vicuna80_study
    assert Vote.objects.filter(comparison__study=vicuna80_study).count() == 7040
    assert vicuna80_study.comparisons.count() == 28 * 80 + 4 * 80
    assert vicuna80_study.reference_model.name == "gpt35"


def test_the_commands_load_the_votes_once_and_compute_snapshots(vicuna80_study, capsys):
    from django.core.management import call_command

    call_command("import_battles", "--vicuna80")
    assert "vicuna80-human-votes: already there" in capsys.readouterr().out
    call_command("compute_snapshots", "--study", vicuna80_study.slug)
    assert "analysis, analysis:trusted on 7040 votes" in capsys.readouterr().out
    call_command("compute_snapshots")
    assert "up to date" in capsys.readouterr().out
