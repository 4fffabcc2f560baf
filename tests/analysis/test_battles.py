"""Battles in the Chatbot Arena clean-battle convention: import, export, and the leaderboard command."""

import json

import pytest
from django.core.management import CommandError, call_command

from inference_workers.models import LanguageModel, Prompt, Response
from ratings.models import Study, Vote

pytestmark = pytest.mark.django_db


def battle(qid, a, b, winner, text_a="Short.", text_b="A **much** longer answer\n\n- one\n- two", **extra):
    question = {"role": "user", "content": f"Question {qid}?"}
    return {
        "question_id": qid,
        "model_a": a,
        "model_b": b,
        "winner": winner,
        "conversation_a": [question, {"role": "assistant", "content": text_a}],
        "conversation_b": [question, {"role": "assistant", "content": text_b}],
        **extra,
    }


def write(path, records):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


def test_import_creates_models_prompts_answers_and_imported_votes(tmp_path, capsys):
    path = write(
        tmp_path / "b.jsonl",
        [
            battle("q1", "alpha", "beta", "model_a", judge="j1", tstamp=1700000000.5),
            battle("q1", "alpha", "beta", "tie (bothbad)"),
            battle("q2", "beta", "gamma", "model_b"),
        ],
    )
    call_command("import_battles", "--study", "arena", str(path))
    assert "3 votes, 3 new models" in capsys.readouterr().out
    study = Study.objects.get(slug="arena")
    assert study.imported and set(study.language_models.values_list("name", flat=True)) == {"alpha", "beta", "gamma"}
    assert Prompt.objects.get(prompt_set=study.prompt_set, external_id="q1").text == "Question q1?"
    assert Response.objects.get(model__name="gamma", prompt__external_id="q2").text.startswith("A **much**")
    votes = Vote.objects.filter(comparison__study=study).order_by("pk")
    assert [v.winner for v in votes] == ["a", "both_bad", "b"]
    assert votes[0].judge == "j1" and votes[0].created_at.timestamp() == 1700000000.5
    assert {v.source for v in votes} == {"imported"}
    # The judge is the study's imported rater; a vote without a judge has none.
    assert votes[0].rater.platform == "imported" and votes[0].rater.external_id == "j1"
    assert votes[1].rater_id is None and votes[2].rater_id is None
    assert study.comparisons.count() == 2


@pytest.mark.parametrize(
    "bad_line, message",
    [
        ("{not json", "line 2: not JSON"),
        (json.dumps({"question_id": 1, "model_a": "x", "model_b": "y"}), "line 2: missing winner"),
        (json.dumps(battle(1, "x", "y", "model_c")), "line 2: winner must be one of"),
        (json.dumps(battle(1, "x", "x", "tie")), "line 2: a model cannot battle itself"),
        (json.dumps({**battle(1, "x", "y", "tie"), "conversation_a": "text"}), "line 2: conversation_a must be"),
    ],
)
def test_a_malformed_line_aborts_the_import_and_nothing_is_half_imported(tmp_path, bad_line, message):
    path = write(
        tmp_path / "b.jsonl", [battle("q1", "alpha", "beta", "model_a"), bad_line, battle("q3", "a2", "b2", "tie")]
    )
    with pytest.raises(CommandError, match=message):
        call_command("import_battles", "--study", "arena", str(path))
    assert not Study.objects.filter(slug="arena").exists()
    assert not LanguageModel.objects.filter(name__in=["alpha", "beta"]).exists()
    assert not Vote.objects.exists()


def test_export_then_import_round_trips_the_votes(tmp_path):
    records = [
        battle(f"q{i}", "alpha", "beta", w) for i, w in enumerate(["model_a", "model_b", "tie", "tie (bothbad)"])
    ]
    call_command("import_battles", "--study", "first", str(write(tmp_path / "in.jsonl", records)))
    out = tmp_path / "out.jsonl"
    call_command("export_battles", "--study", "first", str(out))
    exported = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(e["question_id"], e["model_a"], e["model_b"], e["winner"]) for e in exported] == [
        (r["question_id"], r["model_a"], r["model_b"], r["winner"]) for r in records
    ]
    assert exported[0]["conversation_b"][1]["content"] == records[0]["conversation_b"][1]["content"]
    call_command("import_battles", "--study", "second", str(out))
    assert Vote.objects.filter(comparison__study__slug="second").count() == 4


def _leaderboard(capsys, *args) -> dict:
    call_command("leaderboard", *args, "--json")
    return json.loads(capsys.readouterr().out)


def test_leaderboard_json_has_the_fixed_shape_from_a_file_and_from_the_study(tmp_path, capsys):
    records = []
    for i in range(60):
        # gamma beats everyone; alpha's long answers beat beta's short ones.
        records.append(battle(f"g{i}", "gamma", "alpha", "model_a" if i % 4 else "tie", "Ok.", "Long " * 30))
        records.append(battle(f"a{i}", "alpha", "beta", "model_a" if i % 3 else "model_b", "Long " * 30, "Short."))
        records.append(battle(f"b{i}", "beta", "gamma", "model_b" if i % 5 else "model_a", "Short.", "Ok."))
    path = write(tmp_path / "b.jsonl", records)
    from_file = _leaderboard(capsys, "--battles", str(path))
    assert set(from_file) == {
        "n_votes",
        "models",
        "style_coefficients",
        "style_coefficient_ci",
        "interval",
        "interval_rule",
        "reference",
        "anchor",
        "style",
    }
    assert from_file["n_votes"] == 180
    assert [m["model"] for m in from_file["models"]] == ["gamma", "alpha", "beta"]
    top = from_file["models"][0]
    assert set(top) == {
        "model",
        "rating",
        "ci",
        "votes",
        "win_rate",
        "style_controlled",
        "substance",
        "rank",
        "style_rank",
        "rank_change",
        "interval_note",
    }
    assert top["substance"] is None
    assert top["ci"][0] < top["rating"] < top["ci"][1] and top["votes"] == 120
    assert set(top["style_controlled"]) == {"rating", "ci"}
    assert set(from_file["style_coefficients"]) == {"length", "headers", "lists", "bold"}
    assert sum(m["rating"] for m in from_file["models"]) / 3 == pytest.approx(1000, abs=0.01)

    call_command("import_battles", "--study", "arena", str(path))
    capsys.readouterr()
    assert _leaderboard(capsys, "--study", "arena") == from_file

    booted = _leaderboard(capsys, "--battles", str(path), "--style-bootstrap")
    for plain, boot in zip(from_file["models"], booted["models"], strict=True):
        assert boot["style_controlled"]["rating"] == plain["style_controlled"]["rating"]
        assert boot["style_controlled"]["ci"] != plain["style_controlled"]["ci"]


def test_leaderboard_without_answer_texts_has_no_style_control(tmp_path, capsys):
    records = [
        {"question_id": i, "model_a": "x", "model_b": "y", "winner": "model_a" if i % 3 else "tie"} for i in range(9)
    ]
    board = _leaderboard(capsys, "--battles", str(write(tmp_path / "b.jsonl", records)))
    assert board["style_coefficients"] is None
    assert all(m["style_controlled"] is None for m in board["models"])
    # 6 wins and 3 ties out of 9 for x: win rate 7.5 / 9.
    assert board["models"][0]["win_rate"] == pytest.approx(7.5 / 9, abs=1e-6)


def test_a_pinned_model_sits_at_1000_and_the_gaps_stay(tmp_path, capsys):
    records = [battle(f"q{i}", "x", "y", "model_a" if i % 4 else "model_b") for i in range(40)]
    path = str(write(tmp_path / "b.jsonl", records))
    free = {m["model"]: m["rating"] for m in _leaderboard(capsys, "--battles", path)["models"]}
    pinned = {m["model"]: m for m in _leaderboard(capsys, "--battles", path, "--pin", "y")["models"]}
    assert pinned["y"]["rating"] == 1000
    assert pinned["x"]["rating"] - 1000 == pytest.approx(free["x"] - free["y"], abs=0.02)
    with pytest.raises(CommandError, match="no votes for that model"):
        call_command("leaderboard", "--battles", path, "--pin", "zeta")
