"""``judge_study``: a judge made from a registered model judges a study in both orders, progress and cost in the
terminal, backing off when the API refuses a request."""

import re
from io import StringIO

import pytest
from django.core.management import call_command

from judges.jobs import read_job_items
from judges.models import JudgeVerdict, JudgingJob
from tests.judges.test_judging_job import KEY, api_judge, planted_study

from .judge_server import JudgeServer

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_command_runs_a_judge_and_prints_progress():
    study = planted_study(n_prompts=6, garbled_every=3)
    out = StringIO()
    # The first two requests are refused (rate limit, then overload): the backend backs off and asks again.
    with JudgeServer(KEY, failures=[429, 503], delay_s=0.05) as server:
        judge = api_judge(server)
        call_command(
            "judge_study", "--study", study.slug, "--judge", judge.name, "--in-process", "--every", "0.2", stdout=out
        )
    text = out.getvalue()
    total = 2 * study.comparisons.count()
    assert f"{total} verdicts (both orders)" in text
    assert re.search(rf"\[#+\] {total}/{total} verdicts, 12 unparsed", text), text
    assert text.rstrip().endswith("Succeeded.")
    assert JudgeVerdict.objects.filter(judge=judge).count() == total
    # The judge's model is priced: the last progress line shows what the job cost.
    job = JudgingJob.objects.get(judge=judge)
    assert job.cost_usd > 0
    assert job.api_retries == 2 and job.api_requests == total + 2 == len(server.requests)
    assert server.statuses.count(200) == total
    last = [line for line in text.splitlines() if f"{total}/{total} verdicts" in line][-1]
    assert last.endswith(f", ${job.cost_usd}"), last


def test_a_seeded_sample_is_judged_in_both_orders_and_drawn_the_same_way_again():
    study = planted_study(n_prompts=6, garbled_every=100)
    out = StringIO()
    with JudgeServer(KEY, delay_s=0.01) as server:
        judge = api_judge(server, name="sampling-judge")
        call_command(
            "judge_study",
            "--study",
            study.slug,
            "--judge",
            judge.name,
            "--sample",
            "5",
            "--seed",
            "7",
            "--in-process",
            stdout=out,
        )
    job = JudgingJob.objects.get(judge=judge)
    assert (job.sample_size, job.sample_seed, job.total, job.done) == (5, 7, 10, 10)
    assert len(server.requests) == 10
    assert "10 verdicts (both orders)" in out.getvalue()
    orders = set(JudgeVerdict.objects.filter(job=job).values_list("response_first_id", "response_second_id"))
    judged = [c for c in study.comparisons.all() if (c.response_a_id, c.response_b_id) in orders]
    assert len(judged) == 5 < study.comparisons.count()
    assert all((c.response_b_id, c.response_a_id) in orders for c in judged)
    # The same seed draws the same comparisons.
    again = {(i.first.pk, i.second.pk) for i in read_job_items(JudgingJob.objects.get(pk=job.pk))}
    assert again == orders
