"""Recruitment kits: Prolific's study URL, completion URL and its check; MTurk's ExternalQuestion and HIT
settings; and after the study, approve / reject files from the quality rules, with each rejection's reason."""

import csv
import io
import xml.etree.ElementTree as ET
from html import unescape

import pytest
from django.urls import reverse
from django.utils import timezone

from ratings.actions.quality import do_exclude_rater, do_reinstate_rater
from ratings.models import AssignmentStatus, Recruitment, Vote
from ratings.platforms import mturk, prolific
from tests import factories
from tests.ratings.rating_setup import rating_study

pytestmark = pytest.mark.django_db

COMPLETE = "https://app.prolific.com/submissions/complete"


def test_prolific_study_url_and_completion_check():
    url = prolific.study_url("https://eval.example.org/r/TOKEN/")
    assert url == (
        "https://eval.example.org/r/TOKEN/?PROLIFIC_PID={{%PROLIFIC_PID%}}"
        "&STUDY_ID={{%STUDY_ID%}}&SESSION_ID={{%SESSION_ID%}}"
    )
    assert prolific.completion_url("C0DE42") == f"{COMPLETE}?cc=C0DE42"
    assert prolific.completion_problem(f"{COMPLETE}?cc=C0DE42", "C0DE42") == ""
    assert prolific.completion_problem(COMPLETE, "C0DE42") == ""  # the code is added on the way back
    assert "needs its completion URL" in prolific.completion_problem("", "C0DE42")
    assert "not Prolific's" in prolific.completion_problem("https://evil.example/submissions/complete", "C0DE42")
    assert "not Prolific's" in prolific.completion_problem("http://app.prolific.com/submissions/complete", "X")
    assert "(WRONG) is not this study's completion code (C0DE42)" in prolific.completion_problem(
        f"{COMPLETE}?cc=WRONG", "C0DE42"
    )


def test_mturk_external_question_speaks_the_schema_and_escapes_the_url():
    xml = mturk.external_question("https://eval.example.org/r/TOKEN/?a=1&b=2")
    root = ET.fromstring(xml.encode())  # noqa: S314 - our own document
    ns = {"q": mturk.EXTERNAL_QUESTION_SCHEMA}
    assert root.tag == f"{{{mturk.EXTERNAL_QUESTION_SCHEMA}}}ExternalQuestion"
    assert mturk.EXTERNAL_QUESTION_SCHEMA.endswith("/2006-07-14/ExternalQuestion.xsd")
    assert root.find("q:ExternalURL", ns).text == "https://eval.example.org/r/TOKEN/?a=1&b=2"
    assert "&amp;b=2" in xml
    assert int(root.find("q:FrameHeight", ns).text) > 0


def test_the_kit_page_shows_what_to_paste(researcher_client):
    study = rating_study(
        n_prompts=4, recruitment=Recruitment.MTURK, votes_per_comparison=3, comparisons_per_rater=5, lease_seconds=600
    )
    html = unescape(researcher_client.get(reverse("ratings:study-recruitment", args=[study.slug])).content.decode())
    assert "ExternalQuestion xmlns=" in html and f"/r/{study.token}/" in html
    # 4 comparisons x 3 votes / 5 per worker = 2.4: 3 assignments.
    assert '"MaxAssignments": 3' in html and '"AssignmentDurationInSeconds": 3600' in html
    study.recruitment = Recruitment.PROLIFIC
    study.completion_redirect_url = f"{COMPLETE}?cc={study.completion_code}"
    study.save()
    html = researcher_client.get(reverse("ratings:study-recruitment", args=[study.slug])).content.decode()
    assert "PROLIFIC_PID={{%PROLIFIC_PID%}}" in html and f"cc={study.completion_code}" in html
    assert "Checked: the study's completion redirect is Prolific's" in unescape(html)


def finished_rater(study, external_id, winners, **fields):
    """A rater who voted ``winners`` on the study's comparisons in order (gold ones first) and finished."""
    rater = factories.rater(study, platform=study.recruitment, external_id=external_id, **fields)
    comparisons = list(study.comparisons.order_by("-is_gold", "pk"))
    for comparison, winner in zip(comparisons, winners, strict=False):
        a = factories.assignment(comparison, rater, status=AssignmentStatus.VOTED)
        Vote.objects.create(comparison=comparison, assignment=a, rater=rater, winner=winner, seconds_on_page=12)
    rater.completed_at = timezone.now()
    rater.save()
    return rater


def study_with_raters(recruitment):
    study = rating_study(n_prompts=6, n_gold=2, recruitment=recruitment, exclude_after_failed_checks=2)
    good = finished_rater(study, "A1GOOD", ["a", "a", "a", "b"], platform_study_id="HIT1", platform_session_id="ASG1")
    careless = finished_rater(study, "A2FAIL", ["b", "b", "a"], platform_study_id="HIT1", platform_session_id="ASG2")
    excluded = finished_rater(study, "A3MANUAL", ["a", "a"], platform_study_id="HIT1", platform_session_id="ASG3")
    do_exclude_rater(excluded, "Copied the same reason on every item.")
    reinstated = finished_rater(study, "A4BACK", ["b", "b"], platform_study_id="HIT1", platform_session_id="ASG4")
    do_reinstate_rater(reinstated)
    factories.rater(study, platform=recruitment, external_id="A5GONE")  # never finished
    return study, (good, careless, excluded, reinstated)


def test_prolific_approve_and_reject_lists_follow_the_quality_rules(researcher_client):
    study, _ = study_with_raters(Recruitment.PROLIFIC)
    url = reverse("ratings:study-approvals", args=[study.slug, "prolific-approve.txt"])
    approve = researcher_client.get(url)
    assert approve["Content-Disposition"] == f'attachment; filename="{study.slug}-prolific-approve.txt"'
    assert approve.content.decode().splitlines() == ["A1GOOD", "A4BACK"]
    reject = researcher_client.get(reverse("ratings:study-approvals", args=[study.slug, "prolific-reject.csv"]))
    rows = list(csv.reader(io.StringIO(reject.content.decode())))
    assert rows == [
        ["participant_id", "reason"],
        ["A2FAIL", "Failed 2 attention checks (rule: 2)."],
        ["A3MANUAL", "Copied the same reason on every item."],
    ]
    # Reading the lists excluded nobody: exclusions change only through the quality actions.
    assert not study.raters.get(external_id="A2FAIL").excluded


def test_mturk_batch_results_have_approve_or_reject_filled(researcher_client):
    study, _ = study_with_raters(Recruitment.MTURK)
    body = researcher_client.get(reverse("ratings:study-approvals", args=[study.slug, "mturk-batch-results.csv"]))
    rows = list(csv.DictReader(io.StringIO(body.content.decode())))
    assert [r["AssignmentId"] for r in rows] == ["ASG1", "ASG2", "ASG3", "ASG4"]
    assert all(r["HITId"] == "HIT1" for r in rows)
    decided = {r["WorkerId"]: (r["Approve"], r["Reject"]) for r in rows}
    assert decided == {
        "A1GOOD": ("x", ""),
        "A2FAIL": ("", "Failed 2 attention checks (rule: 2)."),
        "A3MANUAL": ("", "Copied the same reason on every item."),
        "A4BACK": ("x", ""),
    }
    assert researcher_client.get(reverse("ratings:study-approvals", args=[study.slug, "other.csv"])).status_code == 404


def test_kits_and_lists_are_for_researchers_only(client):
    study = rating_study(n_prompts=1)
    for url in (
        reverse("ratings:study-recruitment", args=[study.slug]),
        reverse("ratings:study-approvals", args=[study.slug, "prolific-approve.txt"]),
    ):
        assert client.get(url)["Location"].startswith("/admin/login/")


def test_invite_links_are_made_from_the_kit_page(researcher_client):
    study = rating_study(n_prompts=1, recruitment=Recruitment.INVITE)
    kit = reverse("ratings:study-recruitment", args=[study.slug])
    assert researcher_client.get(kit).status_code == 200
    researcher_client.post(reverse("ratings:study-invites", args=[study.slug]))
    html = researcher_client.get(kit).content.decode()
    tokens = list(study.raters.values_list("token", flat=True))
    assert len(tokens) == 10 and all(f"/r/{study.token}/?invite={t}" in html for t in tokens)
    # An invite link lets its rater in.
    entered = researcher_client.get(f"/r/{study.token}/?invite={tokens[0]}", follow=True)
    assert "Answer A" in entered.content.decode()
    assert f"?invite={tokens[0]}" not in researcher_client.get(kit).content.decode()  # used now
