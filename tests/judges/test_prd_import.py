"""The real judges: PRD's five reviewers imported onto the Vicuna-80 human study reproduce the data's own counts,
and the leaderboard command, the API and the downloads carry each judge beside an unchanged human leaderboard."""

import json
import re
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from rest_framework.authtoken.models import Token

from judges.actions import verdict_counts
from judges.models import JudgeVerdict
from ratings.actions.snapshots import do_compute_snapshots
from ratings.demo.vicuna80_votes import load_vicuna80_votes
from ratings.models import Vote
from tests.analysis.conftest import remove_vicuna80_votes

DATA = Path(__file__).resolve().parents[2] / "data" / "vicuna80-llm-judges"


def source_counts() -> dict[str, dict]:
    """The "Counts" table of the data's SOURCE.md: judge -> files, verdicts, first, second, tie."""
    rows = {}
    for line in (DATA / "SOURCE.md").read_text().splitlines():
        cells = [c.strip().replace(",", "") for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and cells[1].isdigit():
            judge, files, verdicts, first, second, tie = cells
            rows[judge] = {"files": int(files), "verdicts": int(verdicts), "first": int(first), "second": int(second)}
            rows[judge]["tie"] = int(tie)
    return rows


@pytest.fixture(scope="module")
def study(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        study = load_vicuna80_votes().study
        yield study
        JudgeVerdict.objects.filter(study=study).delete()
        remove_vicuna80_votes()


def leaderboard_json(slug: str) -> dict:
    out = StringIO()
    call_command("leaderboard", "--study", slug, "--json", stdout=out)
    return json.loads(out.getvalue())


@pytest.mark.django_db
def test_prd_import_reproduces_source_counts_and_leaves_humans_alone(study, client, researcher):
    votes_before = Vote.objects.count()
    human_before = leaderboard_json(study.slug)
    assert "judges" not in human_before

    out = StringIO()
    call_command("import_judgements", str(DATA), "--study", study.slug, "--format", "prd", stdout=out)
    expected = source_counts()
    assert set(expected) == {"gpt4", "gpt35", "claude", "bard", "vicuna-13b"}
    counts = verdict_counts(study)
    for judge, row in expected.items():
        got = counts[judge]
        assert (sum(got.values()), got["first"], got["second"], got["tie"]) == (
            row["verdicts"],
            row["first"],
            row["second"],
            row["tie"],
        ), judge
        assert got["unparsed"] == 0
        assert len(list((DATA / f"ratings-{judge}").glob("*.jsonl.gz"))) == row["files"]
    assert re.search(r"gpt35: 1760 verdicts imported", out.getvalue())

    # Importing again adds nothing.
    again = StringIO()
    call_command("import_judgements", str(DATA), "--study", study.slug, "--no-snapshot", stdout=again)
    assert "8160 verdicts were already there" in again.getvalue()
    assert JudgeVerdict.objects.filter(study=study).count() == 8160

    # Judge verdicts never become votes; the human leaderboard is what it was.
    assert Vote.objects.count() == votes_before
    after = leaderboard_json(study.slug)
    judges = after.pop("judges")
    assert after == human_before

    by_name = {j["judge"]: j for j in judges["judges"]}
    for name in expected:
        j = by_name[name]
        assert {r["model"] for r in j["leaderboard"]["models"]} == {"gpt4", "gpt35", "claude", "bard", "vicuna-13b"}
        assert set(j["style_coefficients"]) >= {"length"} and set(j["style_coefficient_ci"]) >= {"length"}
        for key in ("with_ties", "without_ties"):
            a = j["agreement"][key]
            assert a["n"] > 0 and a["ci"][0] <= a["agreement"] <= a["ci"][1] and a["kappa"] is not None
        assert j["position_bias"]["decisive"] > 0 and len(j["position_bias"]["ci"]) == 2
    # Bard and Claude lean hard, in opposite directions; gpt35 judged the gpt35/gpt4 pair twice.
    assert by_name["bard"]["position_bias"]["ci"][0] > 0.7
    assert by_name["claude"]["position_bias"]["ci"][1] < 0.45
    assert by_name["gpt35"]["self_consistency"]["n"] == 160
    assert by_name["gpt35"]["self_consistency"]["share"] == pytest.approx(133 / 160)

    # The API and the downloads carry the same, beside the same human numbers.
    do_compute_snapshots(study)
    token = Token.objects.create(user=researcher)
    api = client.get(f"/api/studies/{study.slug}/leaderboard/", HTTP_AUTHORIZATION=f"Token {token.key}").json()
    assert api["models"] == human_before["models"]
    assert {j["judge"] for j in api["judges"]["judges"]} == set(expected)
    client.force_login(researcher)
    download = json.loads(client.get(f"/studies/{study.slug}/dashboard/download/leaderboard.json").content)
    assert {j["judge"] for j in download["judges"]["judges"]} == set(expected)
    assert download["judges"]["judges"][0]["agreement"]["with_ties"]["ci"]
    # Every per-judge figure (leaderboard, agreement with its intervals, position bias, style coefficients)
    # is the same in the three places, and so are the human numbers.
    assert api["judges"] == download["judges"] == judges
    assert download["models"] == human_before["models"]

    page = client.get(f"/studies/{study.slug}/dashboard/judges/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Position bias" in html and "Bard as judge" not in html  # imported by the command, not the demo
    assert "bard" in html and "<svg" in html
