"""Issue 14, findings 6, 10, 11 and the rater-side parts of 12: the render memo under threads, NUL bytes
in rater input, attention-check positions, follow-up questions, seeds and CSV cells."""

import csv
import io
import random
import sys
import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import Client, override_settings
from django.urls import reverse

from ratings.analysis.exports import safe_cell, to_csv
from ratings.engine import assignment as engine
from ratings.engine import rendering
from ratings.models import Assignment, Rater, Recruitment, Study, Vote
from tests.ratings.rating_setup import rating_study, sibling_study

pytestmark = pytest.mark.django_db


def no_raise() -> Client:
    """A client that reports a server error as a 500 response instead of re-raising it."""
    return Client(raise_request_exception=False)


# --- Finding 10: a NUL byte in rater input --------------------------------------------------------------


def test_nul_in_any_token_or_platform_parameter_is_a_400_with_a_message():
    study = rating_study(n_prompts=2)
    prolific = sibling_study(study, recruitment=Recruitment.PROLIFIC)
    mturk = sibling_study(study, recruitment=Recruitment.MTURK)
    invite = sibling_study(study, recruitment=Recruitment.INVITE)
    page = Client().get(reverse("rater:enter", args=[study.token]), follow=True)
    rater = Rater.objects.get(study=study)
    assignment = Assignment.objects.get(rater=rater)
    enter = "/r/{}/".format
    urls = [
        ("get", f"/r/{study.token}%00/"),
        ("get", f"/r/w/{rater.token}%00/"),
        ("get", f"/r/w/%00{rater.token}/consent/"),
        ("post", f"/r/w/{rater.token}/vote/{assignment.token}%00/"),
        ("post", f"/r/w/{rater.token}%00/pause/"),
        ("get", f"/r/w/{rater.token}%00/paused/"),
        ("get", f"/r/w/{rater.token}%00/done/"),
        ("get", enter(prolific.token) + "?PROLIFIC_PID=p%001&STUDY_ID=s&SESSION_ID=x"),
        ("get", enter(prolific.token) + "?PROLIFIC_PID=p1&STUDY_ID=s%00&SESSION_ID=x"),
        ("get", enter(prolific.token) + "?PROLIFIC_PID=p1&STUDY_ID=s&SESSION_ID=x%00"),
        ("get", enter(mturk.token) + "?workerId=W%001&assignmentId=A1&hitId=h&turkSubmitTo=https://www.mturk.com"),
        ("get", enter(mturk.token) + "?workerId=W1&assignmentId=A%001&hitId=h&turkSubmitTo=https://www.mturk.com"),
        ("get", enter(mturk.token) + "?workerId=W1&assignmentId=A1&hitId=h%00&turkSubmitTo=https://www.mturk.com"),
        ("get", enter(invite.token) + "?invite=abc%00"),
    ]
    for method, url in urls:
        response = getattr(no_raise(), method)(url)
        assert response.status_code == 400, (url, response.status_code)
        assert "not allowed" in response.content.decode(), url
    assert Rater.objects.count() == 1
    form = page.content.decode().split('action="')[2].split('"')[0]
    for field in ({"choice": "left", "reason": "fine\x00"}, {"choice": "left\x00"}, {"choice": "left", "q_x\x00": "l"}):
        response = no_raise().post(form, field)
        assert response.status_code == 400, field
    assert not Vote.objects.exists()


# --- Finding 11: attention-check positions from a server-side secret -------------------------------------


def old_gold_offset(token: str, rate: float) -> float:
    """The formula of the reviewed code: a phase anyone can compute from the rater's own token."""
    return int.from_bytes(token.encode()[:8].ljust(8, b"\0"), "big") / 2**64 / rate


def gold_positions(study, rater, offset=None, n=40) -> list[int]:
    if offset is None:
        return [i for i in range(n) if engine.gold_is_due(study, rater, i)]
    rate = study.attention_check_rate
    return [i for i in range(n) if int((i + 1 + offset) * rate) > int((i + offset) * rate)]


def test_attention_check_positions_are_not_predictable_from_the_token():
    study = rating_study(n_prompts=2, attention_check_rate=0.2)
    raters = [Rater.objects.create(study=study) for _ in range(60)]
    guessed = sum(gold_positions(study, r) == gold_positions(study, r, old_gold_offset(r.token, 0.2)) for r in raters)
    # Five phases are possible at a rate of 1 in 5: a guess without the secret is right about 1 time in 5.
    assert guessed < 30, f"{guessed} of 60 raters' positions follow from their token"
    # Deterministic for a rater, spread over raters, and each rater still sees 1 in 5.
    for r in raters:
        positions = gold_positions(study, r)
        assert positions == gold_positions(study, Rater.objects.get(pk=r.pk))
        assert len(positions) == 8
    assert len({tuple(gold_positions(study, r)) for r in raters}) == 5
    # A different secret gives different positions: they come from the key, not the rater's rows.
    before = {r.pk: gold_positions(study, r) for r in raters}
    with override_settings(SECRET_KEY="another-secret-" + "y" * 40):
        changed = sum(before[r.pk] != gold_positions(study, r) for r in raters)
    assert changed > 20


# --- Finding 12: follow-up questions, seeds, CSV cells --------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [5, "five", [5], [{"key": "x"}], [{"text": "What?"}], [{"key": "has space", "text": "Q"}],
     {"key": "x", "text": "y"}, [{"key": "x", "text": "A"}, {"key": "x", "text": "B"}], [{"key": "x", "text": 3}]],
)  # fmt: skip
def test_follow_up_questions_the_page_cannot_show_are_refused(bad):
    study = rating_study(n_prompts=1)
    study.follow_up_questions = bad
    with pytest.raises(ValidationError) as refused:
        study.full_clean()
    assert "follow_up_questions" in refused.value.message_dict


def test_follow_up_questions_of_the_right_shape_pass():
    study = rating_study(n_prompts=1)
    study.follow_up_questions = [
        {"key": "factual", "text": "Which is more accurate?"},
        {"key": "tone_2", "text": "Tone?"},
    ]
    study.full_clean()


def test_admin_form_refuses_follow_up_questions_5(admin_client):
    study = rating_study(n_prompts=1)
    url = reverse("admin:ratings_study_change", args=[study.pk])
    page = admin_client.get(url)
    form = page.context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None and not isinstance(v, list | dict)}
    data.update(
        {
            "follow_up_questions": "5",
            "language_models": [m.pk for m in study.language_models.all()],
            "prompt_set": study.prompt_set_id,
        }
    )
    response = admin_client.post(url, data)
    assert response.status_code == 200
    assert "follow_up_questions" in response.context["adminform"].form.errors
    study.refresh_from_db()
    assert study.follow_up_questions == []


def test_a_stored_bad_follow_up_value_does_not_break_the_rating_page():
    study = rating_study(n_prompts=2)
    Study.objects.filter(pk=study.pk).update(follow_up_questions=5)
    page = no_raise().get(reverse("rater:enter", args=[study.token]), follow=True)
    assert page.status_code == 200
    html = page.content.decode()
    form = html.split('action="')[2].split('"')[0]
    assert no_raise().post(form, {"choice": "left"}).status_code == 302
    assert Vote.objects.count() == 1


def test_a_seed_beyond_bigint_is_a_form_error_not_a_500():
    from inference_workers.forms import StartJobsForm
    from inference_workers.substance.forms import StartBenchmarkForm

    form = StartJobsForm(data={"seed": str(2**63), "temperature": "0.7", "top_p": "0.9", "max_new_tokens": "8"})
    assert not form.is_valid() and "seed" in form.errors
    form = StartJobsForm(data={"seed": str(2**63 - 1)})
    assert "seed" not in form.errors
    form = StartBenchmarkForm(data={"subset_seed": str(-(2**63) - 1)})
    assert not form.is_valid() and "subset_seed" in form.errors
    from django.core.management import CommandError, call_command

    from tests import factories

    factories.model(name="seedless")
    with pytest.raises(CommandError, match="64-bit"):
        call_command("run_benchmark", "seedless", "--seed", str(2**64))


@pytest.mark.parametrize("cell", ["=1+1", "+1", "-1", "@SUM(A1)", "\tcmd", "\r=1"])
def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised(cell):
    assert safe_cell(cell).startswith("'")
    (read,) = csv.reader(io.StringIO(to_csv([[cell]]), newline=""))
    assert read == ["'" + cell]


def test_csv_plain_cells_pass_unchanged():
    for cell in ["plain", "a=b", "1.5", 3, None]:
        assert safe_cell(cell) == cell


def test_verdict_export_defuses_a_reason_starting_with_a_tab(admin_client):
    from ratings.models import Verdict

    study = rating_study(n_prompts=2, mode="fact_check", references=lambda i: [f"ref {i}"])
    Client().get(reverse("rater:enter", args=[study.token]), follow=True)
    assignment = Assignment.objects.get()
    Vote.objects.create(
        comparison=assignment.comparison, assignment=assignment, rater=assignment.rater,
        verdict_a=Verdict.CORRECT, verdict_b=Verdict.WRONG, reason="\t=HYPERLINK(\"x\")",
    )  # fmt: skip
    from ratings.analysis.exports import verdict_rows

    body = "".join(verdict_rows(study))
    assert "'\t=HYPERLINK" in body


# --- Finding 6: the render memo under threads ------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_render_memo_survives_threads_evicting_each_others_entries(monkeypatch):
    """gunicorn runs 4 threads per process; past the memo's size they evicted each other's entries between
    the check and the read (KeyError). Several threads rendering more texts than the memo holds."""
    monkeypatch.setattr(rendering, "MEMO_SIZE", 6)
    rendering._MEMO.clear()
    texts = [f"Text **{i}** with a list:\n\n- one\n- two" for i in range(40)]
    rendering.prepare_texts(texts)  # in the shared table: threads read it, no thread renders
    errors: list[BaseException] = []
    done = threading.Barrier(6)

    def work(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(300):
                batch = rng.sample(texts, 3)
                out = rendering.render_model_texts(batch)
                assert [str(x) for x in out] == [rendering._render(t) for t in batch]
        except BaseException as exc:  # noqa: BLE001 - collected and reported
            errors.append(exc)
        finally:
            connection.close()
            done.wait()

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=work, args=(i,)) for i in range(5)]
        for t in threads:
            t.start()
        done.wait()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
        rendering._MEMO.clear()
    assert not errors, f"{len(errors)} of 5 threads died: {errors[0]!r}"
