"""A researcher runs a study through the site only, in headless Chromium: from an empty study to an open one
(upload 20 prompts, pick an imported-outputs model and SmolLM2, preview as a rater, Launch, watch the real
worker generate), then a Prolific rater rates, and the researcher downloads the approve list.

Screenshots for the README tour: tour-setup.png, tour-readiness.png, tour-preview.png."""

import json
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse
from playwright.sync_api import expect

from inference_workers.actions import do_validate_model, register_packaged_smollm2
from inference_workers.models import GenerationJob, LanguageModel, ModelKind, ModelRole, ModelStatus
from ratings.models import Assignment, Rater, Study, StudyStatus, Vote
from tests.browser.test_rating_in_chromium import PROLIFIC_COMPLETE, rate_as
from tests.chromium import CHROMIUM, SCREENSHOTS
from tests.webapp.test_main_command import wait_on_progress

N_PROMPTS = 20
TITLE = "Short answers: SmolLM2 against imported answers"
QUESTIONS = [f"In one sentence, what is {thing}?" for thing in (
    "a river", "a mountain", "rain", "a library", "a violin", "bread", "a bridge", "a comet", "a forest", "snow",
    "a lighthouse", "a volcano", "a desert", "an island", "a clock", "a kite", "a harbour", "a glacier", "a meadow",
    "a canyon",
)]  # fmt: skip


def imported_model() -> LanguageModel:
    """An imported-outputs model with an answer to each of the 20 prompts, registered and validated as an admin does."""
    model = LanguageModel.objects.create(
        name="reference-answers", display_name="Reference answers (imported)", kind=ModelKind.IMPORTED,
        role=ModelRole.PROPRIETARY, status=ModelStatus.PENDING,
    )  # fmt: skip
    lines = [json.dumps({"prompt_id": f"p{i + 1}", "answer": f"It is {q[16:-1]}, described briefly."})
             for i, q in enumerate(QUESTIONS)]  # fmt: skip
    model.checkpoint.save("answers.jsonl", ContentFile("\n".join(lines).encode()))
    assert do_validate_model(model.pk) == ModelStatus.READY
    return model


def save_and_continue(page) -> None:
    """Submit the set-up step and wait for the next page; the step must have no errors."""
    url = page.url
    # By keyboard: after a full-page screenshot Chromium's hit test can miss a button near the fold.
    page.focus("#save-next")
    page.keyboard.press("Enter")
    page.wait_for_url(lambda now: now != url)
    errors = page.locator(".errorlist")
    assert errors.count() == 0, errors.all_inner_texts()


def launch_progress(study: Study) -> tuple:
    """What advances while a launch runs: the jobs' answers and tokens, the comparisons, the status."""
    jobs = GenerationJob.objects.filter(prompt_set__studies=study).values_list(
        "status", "done", "completion_tokens", "tokens_in_flight", "heartbeat_at"
    )
    study.refresh_from_db()
    return (sorted(jobs, key=str), study.comparisons.count(), study.status, study.launch_error)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium")
def test_a_researcher_takes_a_study_from_empty_to_open_through_the_site(
    chromium, live_server, researcher_client, worker, tmp_path
):
    base = live_server.url
    imported, smollm2 = imported_model(), register_packaged_smollm2()
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"id": f"p{i + 1}", "text": q}) + "\n" for i, q in enumerate(QUESTIONS)))
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    context.add_cookies([{"name": "sessionid", "value": researcher_client.cookies["sessionid"].value, "url": base}])
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with context:
        page = context.new_page()
        page.goto(base + reverse("ratings:study-list"))
        page.click("#new-study")
        page.fill("#id_title", TITLE)
        save_and_continue(page)
        study = Study.objects.get(title=TITLE)
        assert study.status == StudyStatus.DRAFT and page.url.endswith(f"/studies/{study.slug}/setup/models/")
        # Models: the ready ones, with their role.
        page.get_by_label(f"{smollm2} · Base").check()
        page.get_by_label(f"{imported} · Proprietary").check()
        save_and_continue(page)
        page.set_input_files("#id_file", str(prompts))
        save_and_continue(page)
        assert f"{N_PROMPTS} prompts read from prompts.jsonl." in page.inner_text("main")
        page.fill("#id_votes_per_comparison", "1")
        page.fill("#id_comparisons_per_rater", "3")
        page.fill("#id_attention_check_rate", "0")
        page.fill("#id_max_new_tokens", "8")  # a short answer each: SmolLM2 is quick on a CPU
        page.fill("#id_temperature", "0")
        page.screenshot(path=str(SCREENSHOTS / "tour-setup.png"), full_page=True)
        save_and_continue(page)
        page.select_option("#id_recruitment", "prolific")
        code = page.input_value("#id_completion_code")
        page.fill("#id_completion_redirect_url", f"{PROLIFIC_COMPLETE}?cc={code}")
        save_and_continue(page)
        page.fill("#id_consent_text", "This is a research study. You may stop at any time.")
        save_and_continue(page)
        # The study page: what is missing before it can open.
        assert page.url == base + reverse("ratings:study-detail", args=[study.slug])
        readiness = page.inner_text("#readiness")
        assert f"0 of 2 models have answered all {N_PROMPTS} prompts." in readiness
        assert "Comparisons not yet created." in readiness
        page.screenshot(path=str(SCREENSHOTS / "tour-readiness.png"), full_page=True)
        # Preview as a rater: the rating page with a banner, no model named, nothing leased.
        page.click("#preview-link")
        assert "Preview as a rater" in page.inner_text("#preview-banner")
        assert page.locator(".answer").count() == 2 and QUESTIONS[0] in page.inner_text(".prompt")
        html = page.content()
        for secret in (smollm2.name, str(smollm2), imported.name, str(imported), "smollm2", "SmolLM2"):
            assert secret not in html
        page.screenshot(path=str(SCREENSHOTS / "tour-preview.png"), full_page=True)
        with page.expect_navigation():
            page.keyboard.press("a")
        assert "Preview: not recorded." in page.inner_text("main")
        assert (Rater.objects.count(), Assignment.objects.count(), Vote.objects.count()) == (0, 0, 0)
        # Launch, and watch the real worker answer until the study opens.
        page.goto(base + reverse("ratings:study-detail", args=[study.slug]))
        page.click("#launch")
        assert "Launching" in page.inner_text("main")
        wait_on_progress(
            lambda: launch_progress(study)[2] == StudyStatus.OPEN or bool(launch_progress(study)[3]),
            lambda: launch_progress(study),
            "launch",
        )
        assert study.launch_error == ""
        # The launching page refreshes itself every 3 s (a meta refresh), so the test does not navigate
        # over it (a goto can be cut short by a refresh firing at that moment): the page's own next
        # refresh shows the open study and stops refreshing. The ceiling only stops a hang.
        expect(page.locator("#study-status")).to_have_text("Open", timeout=120_000)
        assert page.locator("#launching").count() == 0
        assert page.locator("meta[http-equiv=refresh]").count() == 0
        assert study.comparisons.count() == N_PROMPTS
        assert smollm2.responses.filter(prompt__prompt_set=study.prompt_set).count() == N_PROMPTS
        assert GenerationJob.objects.get(model=smollm2).decoding_config.max_new_tokens == 8
        # A Prolific participant rates three pairs and goes back to Prolific with the code.
        study.refresh_from_db()
        rate_as(chromium, base, study, "e2e-participant")
        assert Rater.objects.get(external_id="e2e-participant").votes.count() == 3
        # After the study: the approve list, downloaded from the recruitment page.
        page.goto(base + reverse("ratings:study-recruitment", args=[study.slug]))
        with page.expect_download() as download:
            page.click("#download-approve")
        assert download.value.suggested_filename == f"{study.slug}-prolific-approve.txt"
        assert Path(download.value.path()).read_text().splitlines() == ["e2e-participant"]
    for name in ("setup", "readiness", "preview"):
        assert (SCREENSHOTS / f"tour-{name}.png").stat().st_size > 10_000
