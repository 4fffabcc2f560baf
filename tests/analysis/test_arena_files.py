"""Arena data as it is really distributed (issue 16): JSON arrays and JSONL, gzip or plain,
``conv_metadata`` without texts, turns, judges and categories, and honest intervals on tiny data.

One test per problem of the issue, each on a small file shaped like the real ones: FastChat's
``clean_battle_*.json`` (a JSON array with ``conv_metadata``), MT-bench's human judgments
(fixtures/mtbench_human_5.jsonl, real rows: turn 1 and turn 2 votes share a question id).
"""

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from inference_workers.models import Prompt, Response
from ratings.analysis import battle_files
from ratings.analysis.battle_files import read_battle_arrays
from ratings.analysis.payload import analyse, rater_reliability, trusted_subset
from ratings.analysis.votes import study_votes
from ratings.models import Rater, Recruitment, Study, Vote
from tests.analysis.test_battles import battle as text_battle

REPO = Path(__file__).resolve().parents[2]
MTBENCH = Path(__file__).parent / "fixtures" / "mtbench_human_5.jsonl"


def metadata(tokens_a, tokens_b, headers=(0, 0), lists=(0, 0), bold=(0, 0)) -> dict:
    """FastChat's conv_metadata: counts per side, the markdown ones as dicts (summed when read)."""
    return {
        "sum_assistant_a_tokens": tokens_a,
        "header_count_a": {"h1": headers[0], "h2": 0, "h3": 0, "h4": 0, "h5": 0, "h6": 0},
        "list_count_a": {"ordered": lists[0], "unordered": 0},
        "bold_count_a": {"**": bold[0], "__": 0},
        "context_a_tokens": 10,
        "sum_assistant_b_tokens": tokens_b,
        "header_count_b": {"h1": headers[1], "h2": 0, "h3": 0, "h4": 0, "h5": 0, "h6": 0},
        "list_count_b": {"ordered": 0, "unordered": lists[1]},
        "bold_count_b": {"**": 0, "__": bold[1]},
        "context_b_tokens": 10,
        "turns": 1,
    }


def fastchat_battles(n: int = 120, with_metadata: bool = True) -> list[dict]:
    """Records as FastChat's clean_battle_data writes them (no texts): long answers tend to win."""
    rng = np.random.default_rng(7)
    models = ["gpt-4-0613", "claude-2.1", "mixtral-8x7b-instruct-v0.1", "vicuna-13b"]
    out = []
    for i in range(n):
        a, b = rng.choice(4, 2, replace=False)
        tokens_a, tokens_b = int(rng.integers(20, 800)), int(rng.integers(20, 800))
        p = 1 / (1 + np.exp(-((b - a) * 0.4 + 2.0 * (tokens_a - tokens_b) / (tokens_a + tokens_b))))
        u = rng.random()
        winner = "tie" if u < 0.1 else ("model_a" if rng.random() < p else "model_b")
        record = {
            "question_id": f"{i:032x}",
            "model_a": models[a],
            "model_b": models[b],
            "winner": winner,
            "judge": f"arena_user_{i % 9}",
            "turn": 1,
            "anony": True,
            "language": "English",
            "tstamp": 1_700_000_000 + i,
            "category": "coding" if i % 3 == 0 else "writing",
        }
        if with_metadata:
            record["conv_metadata"] = metadata(tokens_a, tokens_b, lists=(i % 4, i % 3), bold=(i % 2, 0))
        out.append(record)
    return out


def write_jsonl(path: Path, records) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def board(capsys, *args) -> dict:
    call_command("leaderboard", *args, "--json")
    return json.loads(capsys.readouterr().out)


# 1. conv_metadata is used; 6. a JSON array is read; formats are told from the content.


@pytest.mark.django_db
def test_a_fastchat_json_array_with_conv_metadata_and_no_texts_gets_style_control(tmp_path, capsys):
    records = fastchat_battles()
    path = tmp_path / "clean_battle_20240101.json"
    path.write_text(json.dumps(records, indent=1))
    result = board(capsys, "--battles", str(path))
    assert result["n_votes"] == 120
    assert result["style"]["used"] and result["style"]["sources"] == {"texts": 0, "conv_metadata": 120, "missing": 0}
    assert set(result["style_coefficients"]) == {"length", "headers", "lists", "bold"}
    # Long answers were made to win: the length coefficient is positive and its interval says so.
    assert result["style_coefficients"]["length"] > 0 and result["style_coefficient_ci"]["length"][0] > 0
    assert all(m["style_controlled"] is not None for m in result["models"])
    call_command("leaderboard", "--battles", str(path))
    text = capsys.readouterr().out
    assert "0 battles from answer texts, 120 from conv_metadata, 0 without" in text


def test_the_same_battles_read_alike_as_array_jsonl_and_gzip_whatever_the_name(tmp_path):
    records = fastchat_battles(30)
    array = tmp_path / "battles.json"
    array.write_text(json.dumps(records))
    jsonl = write_jsonl(tmp_path / "battles.jsonl", records)
    gz = tmp_path / "battles.data"  # gzip, told by its magic bytes, not its name
    gz.write_bytes(gzip.compress(json.dumps(records).encode()))
    gz_lines = tmp_path / "battles.jsonl.gz"
    gz_lines.write_bytes(gzip.compress(jsonl.read_bytes()))
    reads = [read_battle_arrays(p) for p in (array, jsonl, gz, gz_lines)]
    for other in reads[1:]:
        assert other.models == reads[0].models
        assert np.array_equal(other.model_a, reads[0].model_a) and np.array_equal(other.outcome, reads[0].outcome)
        assert np.array_equal(other.style_a, reads[0].style_a)
    # header dict summed, list dict summed, bold dict summed: FastChat's own reading.
    first = records[0]["conv_metadata"]
    assert list(reads[0].style_a[0]) == [first["sum_assistant_a_tokens"], 0, 0 % 4, 0 % 2]


def test_a_malformed_array_record_is_named_by_its_number(tmp_path):
    path = tmp_path / "b.json"
    path.write_text(json.dumps([text_battle(1, "x", "y", "tie"), {"question_id": 2, "model_a": "x"}]))
    with pytest.raises(battle_files.BattleFormatError, match="record 2: missing model_b"):
        read_battle_arrays(path)
    path.write_text('[{"question_id": 1, "model_a": "x", "model_b": "y", "winner": "tie"}, {"question_id": ')
    with pytest.raises(battle_files.BattleFormatError, match="record 2: not JSON"):
        read_battle_arrays(path)
    path.write_text(json.dumps([text_battle(1, "x", "y", "tie", judge="j" * 201)]))
    with pytest.raises(battle_files.BattleFormatError, match="record 1: judge is longer than 200 characters"):
        read_battle_arrays(path)
    path.write_text("model_a,model_b\nx,y\n")
    with pytest.raises(battle_files.BattleFormatError, match="not a battle file"):
        read_battle_arrays(path)


def test_large_files_are_read_by_worker_processes_with_the_same_result(tmp_path, monkeypatch):
    records = [
        text_battle(i, "x", "y", "model_a" if i % 3 else "model_b", "word " * (i % 7), "# h\n\n- a\n- b")
        for i in range(50)
    ]
    records[17]["conversation_b"] = None  # one battle without texts
    path = write_jsonl(tmp_path / "b.jsonl", [{k: v for k, v in r.items() if v is not None} for r in records])
    serial = read_battle_arrays(path, workers=1)
    monkeypatch.setattr(battle_files, "CHUNK_RECORDS", 7)
    parallel = read_battle_arrays(path, workers=2)
    assert parallel.style_sources == serial.style_sources == {"texts": 49, "conv_metadata": 0, "missing": 1}
    assert np.array_equal(parallel.style_a, serial.style_a, equal_nan=True)
    assert np.array_equal(parallel.outcome, serial.outcome)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(path.read_text() + '{"question_id": 1, "model_a": "x", "model_b": "x", "winner": "tie"}\n')
    with pytest.raises(battle_files.BattleFormatError, match="line 51: a model cannot battle itself"):
        read_battle_arrays(bad, workers=2)


# 2. One battle without texts leaves only that battle out of the style fit; coverage rule.


@pytest.mark.django_db
def test_one_battle_without_texts_is_left_out_of_the_style_fit_only(tmp_path, capsys):
    records = [
        text_battle(f"q{i}", "x", "y", "model_a" if i % 3 else "model_b", "Long " * (5 + i % 20), "Short.")
        for i in range(40)
    ]
    records.append({"question_id": "bare", "model_a": "x", "model_b": "y", "winner": "model_b"})
    result = board(capsys, "--battles", str(write_jsonl(tmp_path / "b.jsonl", records)))
    assert result["n_votes"] == 41 and result["style"]["used"]
    assert result["style"]["left_out"] == 1 and result["style"]["votes_with_features"] == 40
    assert "1 of 41 votes have no style features" in result["style"]["note"]
    assert sum(m["votes"] for m in result["models"]) == 2 * 41  # the raw ratings keep it


@pytest.mark.django_db
def test_style_control_is_refused_below_the_stated_coverage_and_says_so(tmp_path, capsys):
    records = [text_battle(f"q{i}", "x", "y", "model_a" if i % 2 else "model_b") for i in range(4)]
    records += [
        {"question_id": f"n{i}", "model_a": "x", "model_b": "y", "winner": "model_a" if i % 3 else "tie"}
        for i in range(6)
    ]
    result = board(capsys, "--battles", str(write_jsonl(tmp_path / "b.jsonl", records)))
    assert not result["style"]["used"] and result["style_coefficients"] is None
    assert result["style"]["min_coverage"] == 0.5
    assert "Only 4 of 10 votes (40%) have style features, below the 50% needed" in result["style"]["note"]


# 3. An empty answer is zero-length, not missing, in an imported study and from a file alike.


@pytest.mark.django_db
def test_an_empty_answer_keeps_style_control_for_the_imported_study(tmp_path, capsys):
    records = [
        text_battle(f"q{i}", "x", "y", "model_a" if i % 3 else "model_b", "Long " * (5 + i % 20), "Short.")
        for i in range(40)
    ]
    records[5] = text_battle("q5", "x", "y", "model_a", "Some answer", "")
    path = write_jsonl(tmp_path / "b.jsonl", records)
    from_file = board(capsys, "--battles", str(path))
    call_command("import_battles", "--study", "arena", str(path))
    capsys.readouterr()
    table = study_votes(Study.objects.get(slug="arena"))
    empty = Response.objects.get(model__name="y", prompt__external_id="q5")
    assert empty.text == "" and empty.text_digest.startswith("t")
    assert not np.isnan(table.style_b).any() and list(table.style_b[5]) == [0, 0, 0, 0]
    from_study = board(capsys, "--study", "arena")
    assert from_study["style"]["used"] and from_file["style"]["used"]
    assert from_study["style_coefficients"] == from_file["style_coefficients"]


# 4. An answer is keyed by (model, question, turn, text): no merging; turns kept.


@pytest.mark.django_db
def test_different_answers_to_one_question_stay_different_and_export_shows_each(tmp_path):
    records = [
        text_battle("q1", "x", "y", "model_a", "First answer by x.", "Answer by y."),
        text_battle("q1", "x", "y", "model_b", "Second, different answer by x.", "Answer by y."),
    ]
    call_command("import_battles", "--study", "arena", str(write_jsonl(tmp_path / "b.jsonl", records)))
    assert Response.objects.filter(model__name="x", prompt__external_id="q1").count() == 2
    assert Response.objects.filter(model__name="y", prompt__external_id="q1").count() == 1
    out = tmp_path / "out.jsonl"
    call_command("export_battles", "--study", "arena", str(out))
    exported = [json.loads(line) for line in out.read_text().splitlines()]
    assert [e["conversation_a"][1]["content"] for e in exported] == [
        "First answer by x.",
        "Second, different answer by x.",
    ]
    # Importing the export again reuses the stored answers.
    call_command("import_battles", "--study", "arena", str(out))
    assert Response.objects.filter(model__name="x", prompt__external_id="q1").count() == 2


@pytest.mark.django_db
def test_mt_bench_turns_one_and_two_stay_apart_and_keep_their_turns(tmp_path, capsys):
    call_command("import_battles", "--study", "mtbench", str(MTBENCH))
    assert "5 votes" in capsys.readouterr().out
    study = Study.objects.get(slug="mtbench")
    prompts = {p.external_id: p for p in Prompt.objects.filter(prompt_set=study.prompt_set)}
    assert set(prompts) == {"112", "112#turn2", "126", "126#turn2"}
    assert prompts["112#turn2"].turns and len(prompts["112#turn2"].turns) == 2
    turn1 = Response.objects.get(model__name="llama-13b", prompt=prompts["112"])
    turn2 = Response.objects.get(model__name="llama-13b", prompt=prompts["112#turn2"])
    assert turn1.turns is None and len(turn2.turns) == 2 and turn2.turns[0] == turn1.text
    # Two judges voted on turn 2 of question 112: one comparison, two votes.
    assert study.comparisons.filter(prompt=prompts["112#turn2"]).count() == 1
    assert Vote.objects.filter(comparison__prompt=prompts["112#turn2"]).count() == 2
    out = tmp_path / "out.jsonl"
    call_command("export_battles", "--study", "mtbench", str(out))
    exported = [json.loads(line) for line in out.read_text().splitlines()]
    source = [json.loads(line) for line in MTBENCH.read_text().splitlines()]
    for e, s in zip(exported, source, strict=True):
        assert (e["question_id"], e["turn"], e["winner"]) == (str(s["question_id"]), s["turn"], s["winner"])
        judged = s["conversation_a"][: 2 * s["turn"]]
        assert [(t["role"], t["content"]) for t in e["conversation_a"]] == [(t["role"], t["content"]) for t in judged]


# 5. leaderboard --battles needs no database.


@pytest.mark.parametrize("database", ["postgres-missing", "sqlite-empty"])
def test_leaderboard_from_a_file_needs_no_database(tmp_path, database):
    path = tmp_path / "b.json"
    path.write_text(json.dumps(fastchat_battles(60)))
    if database == "sqlite-empty":
        (tmp_path / "empty.sqlite3").write_bytes(b"")
        url = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    else:
        url = "postgres://postgres@127.0.0.1:5432/sg_no_such_database_for_this_test"
    env = {**os.environ, "DATABASE_URL": url, "STYLEGAP_VAR_DIR": str(tmp_path / "var")}
    done = subprocess.run(
        [sys.executable, "manage.py", "leaderboard", "--battles", str(path), "--json"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["n_votes"] == 60 and all(m["substance"] is None for m in result["models"])


# 7. Judges become the study's imported raters; categories give per-category boards.


@pytest.mark.django_db
def test_judges_become_imported_raters_with_reliability_agreement_and_categories(tmp_path, capsys):
    records = fastchat_battles(90)
    for r in records[:30]:  # arena_user_0..8 vote; one extra judge always picks model_a
        records.append({**r, "judge": "always_a", "winner": "model_a"})
    path = tmp_path / "b.json"
    path.write_text(json.dumps(records))
    call_command("import_battles", "--study", "arena", str(path))
    assert "10 judges (new imported raters)" in capsys.readouterr().out
    study = Study.objects.get(slug="arena")
    raters = Rater.objects.filter(study=study)
    assert raters.count() == 10 and set(raters.values_list("platform", flat=True)) == {Recruitment.IMPORTED}
    assert not Vote.objects.filter(comparison__study=study, rater__isnull=True).exists()
    table = study_votes(study)
    quality = rater_reliability(table)
    assert {row["rater"] for row in quality["raters"]} == set(raters.values_list("pk", flat=True))
    assert trusted_subset(table).n_votes <= table.n_votes
    payload = analyse(table)
    assert payload["agreement"]["choice"]["units"] == 30  # the 30 battles two judges saw
    assert {c["category"] for c in payload["categories"]} == {"coding", "writing"}
    coding = next(c for c in payload["categories"] if c["category"] == "coding")
    assert coding["n_votes"] == sum(1 for r in records if r["category"] == "coding")
    # A rater of an imported study cannot be reached by a link.
    from ratings.platforms import platform_for

    assert platform_for(study).arrival({}).message


@pytest.mark.django_db
def test_a_judge_voting_twice_on_the_same_answers_keeps_both_votes(tmp_path, capsys):
    same = text_battle("q1", "x", "y", "model_a", judge="j1")
    path = write_jsonl(tmp_path / "b.jsonl", [same, {**same, "winner": "model_b"}])
    call_command("import_battles", "--study", "arena", str(path))
    assert "1 repeat vote" in capsys.readouterr().out
    votes = Vote.objects.filter(comparison__study__slug="arena").order_by("pk")
    assert [v.winner for v in votes] == ["a", "b"]
    assert votes[0].rater_id is not None and votes[1].rater_id is None and votes[1].judge == "j1"


# 8. --json carries what the text output shows.


@pytest.mark.django_db
def test_json_carries_ranks_rank_changes_interval_methods_and_coefficient_intervals(tmp_path, capsys):
    path = tmp_path / "b.json"
    path.write_text(json.dumps(fastchat_battles(200)))
    result = board(capsys, "--battles", str(path))
    for row in result["models"]:
        assert {"rank", "style_rank", "rank_change", "interval_note"} <= set(row)
        assert row["rank_change"] == row["rank"] - row["style_rank"]
    assert result["interval"]["raw"].startswith("bootstrap over votes, 100 rounds")
    assert result["interval"]["style_controlled"] == "sandwich (Hessian-based)"
    assert "profile-likelihood interval" in result["interval_rule"]
    for name, (lo, hi) in result["style_coefficient_ci"].items():
        assert lo <= result["style_coefficients"][name] <= hi
    call_command("leaderboard", "--battles", str(path))
    text = capsys.readouterr().out
    top = result["models"][0]
    assert f"(#{top['style_rank']}, {top['rank_change']:+d})" in text
    assert "intervals: style-controlled: sandwich" in text


# 9. Honest intervals on tiny or separated data.


@pytest.mark.django_db
def test_two_votes_get_unbounded_profile_intervals_and_no_rank_change(tmp_path, capsys):
    records = [
        text_battle("q1", "x", "y", "model_a", "A long answer with **bold** words", "Short."),
        text_battle("q2", "x", "y", "model_a", "- a list\n- of items", "No."),
    ]
    path = str(write_jsonl(tmp_path / "b.jsonl", records))
    result = board(capsys, "--battles", path)
    x, y = result["models"]
    assert (x["model"], y["model"]) == ("x", "y")
    assert x["ci"][1] is None and y["ci"][0] is None  # no upper bound for x, no lower bound for y
    assert x["ci"][0] < y["ci"][1]  # the intervals overlap: the data cannot order them
    assert x["rank"] == y["rank"] == 1 and x["rank_change"] == y["rank_change"] == 0
    assert "won every one of its 2 votes" in x["interval_note"] and "lost every" in y["interval_note"]
    assert "profile likelihood for x, y" in result["interval"]["raw"]
    call_command("leaderboard", "--battles", path)
    text = capsys.readouterr().out
    assert "inf]" in text and "[  -inf," in text


def test_per_category_boards_follow_the_same_interval_rule(tmp_path):
    """A category's board fitted the sandwich whatever its data: the demo's live study, one vote in its one
    category, showed 1989 [1832, 2145] against 11 [-145, 168]. A category with few votes for a model, or a model
    that won or lost all of them, gets the profile likelihood and says so, as the main leaderboard does."""
    from ratings.analysis.payload import MIN_VOTES_FOR_SANDWICH, categories
    from ratings.analysis.votes import ModelInfo, VoteTable

    rng = np.random.default_rng(5)
    n = 400
    a = rng.integers(0, 2, n)
    outcome = (rng.random(n) < 0.6).astype(float)
    table = VoteTable(
        models=[ModelInfo("x", "x"), ModelInfo("y", "y")],
        model_a=np.concatenate([a, [0, 0]]),
        model_b=np.concatenate([1 - a, [1, 1]]),
        outcome=np.concatenate([outcome, [1.0, 1.0]]),  # in "coding", x beats y twice
        category=["writing"] * n + ["coding"] * 2,
    )
    boards = {c["category"]: c for c in categories(table)}
    coding = {r["model"]: r for r in boards["coding"]["models"]}
    assert coding["x"]["ci"][1] is None and coding["y"]["ci"][0] is None  # the data bound neither
    assert coding["x"]["ci"][0] < coding["y"]["ci"][1]  # overlapping: two votes cannot order them
    assert "won every one of its 2 votes" in coding["x"]["interval_note"]
    assert "lost every one of its 2 votes" in coding["y"]["interval_note"]
    assert boards["coding"]["interval"] == "sandwich; profile likelihood for x, y"
    writing = {r["model"]: r for r in boards["writing"]["models"]}
    assert all(r["votes"] >= MIN_VOTES_FOR_SANDWICH and r["interval_note"] == "" for r in writing.values())
    assert boards["writing"]["interval"] == "sandwich"
    lo, hi = writing["x"]["ci"]
    assert lo < writing["x"]["rating"] < hi and hi - lo < 150


def test_profile_intervals_match_the_sandwich_on_plentiful_data():
    from stats.bradley_terry import bradley_terry

    rng = np.random.default_rng(3)
    k, n = 5, 4000
    a = rng.integers(0, k, n)
    b = (a + rng.integers(1, k, n)) % k
    strength = np.linspace(-1, 1, k)
    y = (rng.random(n) < 1 / (1 + np.exp(-(strength[a] - strength[b])))).astype(float)
    profile = bradley_terry(a, b, y, k, interval="profile")
    sandwich = bradley_terry(a, b, y, k, interval="sandwich")
    width = profile.upper - profile.lower
    assert np.allclose(width, sandwich.upper - sandwich.lower, rtol=0.05)


# 10. --anchor MODEL=RATING; --pin keeps working.


@pytest.mark.django_db
def test_anchor_pins_a_baseline_at_a_published_rating(tmp_path, capsys):
    path = tmp_path / "b.json"
    path.write_text(json.dumps(fastchat_battles(200)))
    free = {m["model"]: m for m in board(capsys, "--battles", str(path))["models"]}
    anchored = board(capsys, "--battles", str(path), "--anchor", "mixtral-8x7b-instruct-v0.1=1114")
    rows = {m["model"]: m for m in anchored["models"]}
    assert rows["mixtral-8x7b-instruct-v0.1"]["rating"] == 1114
    assert anchored["anchor"] == {"model": "mixtral-8x7b-instruct-v0.1", "rating": 1114.0}
    gap = free["gpt-4-0613"]["rating"] - free["mixtral-8x7b-instruct-v0.1"]["rating"]
    assert rows["gpt-4-0613"]["rating"] - 1114 == pytest.approx(gap, abs=0.05)
    assert rows["gpt-4-0613"]["style_controlled"]["rating"] > 0
    pinned = {m["model"]: m for m in board(capsys, "--battles", str(path), "--pin", "vicuna-13b")["models"]}
    assert pinned["vicuna-13b"]["rating"] == 1000
    with pytest.raises(CommandError, match="--anchor nobody: no votes for that model"):
        call_command("leaderboard", "--battles", str(path), "--anchor", "nobody=1000")
    with pytest.raises(CommandError, match="MODEL=RATING"):
        call_command("leaderboard", "--battles", str(path), "--anchor", "nobody")


def test_import_on_the_sqlite_default_takes_the_bulk_create_path(tmp_path):
    """Without Postgres there is no COPY: the same import goes through bulk_create, all or nothing."""
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "STYLEGAP_VAR_DIR": str(tmp_path / "var"),
    }

    def manage(*args):
        return subprocess.run(
            [sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
        )

    assert manage("migrate", "-v0").returncode == 0
    done = manage("import_battles", "--study", "mtbench", str(MTBENCH))
    assert done.returncode == 0, done.stderr
    assert "5 votes, 2 new models" in done.stdout and "4 new prompts, 8 new answers" in done.stdout
    exported = manage("export_battles", "--study", "mtbench", "-")
    assert [json.loads(line)["turn"] for line in exported.stdout.splitlines()] == [2, 2, 1, 2, 1]
