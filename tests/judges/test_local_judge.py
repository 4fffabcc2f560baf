"""The packaged SmolLM2-135M-Instruct as a local judge, through the real worker on the gpu queue: mechanics only
(both orders, the judge's text stored, every verdict parsed or counted unparsed), not the quality of its verdicts."""

import pytest

from inference_workers.actions import register_packaged_smollm2
from inference_workers.claims import CLOSED
from inference_workers.models import JobStatus
from judges.actions import do_create_judge, do_start_judging_job, ensure_builtin_prompts
from judges.models import JudgeVerdict, JudgingJob, Outcome
from judges.verdicts import parse
from ratings.actions.studies import do_create_comparisons
from tests import factories
from tests.waiting import wait_advancing

pytestmark = pytest.mark.django_db(transaction=True)


def test_smollm2_judges_a_few_comparisons_in_both_orders(worker):
    ps = factories.prompt_set()
    prompts = [factories.prompt(ps, text=q) for q in ("What is the capital of France?", "Name a primary colour.")]
    a, b = factories.model(name="terse"), factories.model(name="chatty")
    pairs = [("Paris.", "The capital of France is Paris."), ("Red.", "Red is one.")]
    for p, (short, long) in zip(prompts, pairs, strict=True):
        factories.response(a, p, short)
        factories.response(b, p, long)
    study = factories.study(ps, [a, b])
    do_create_comparisons(study)
    template = next(p for p in ensure_builtin_prompts() if p.name == "mt-bench-pairwise")
    judge = do_create_judge("smollm2-judge", register_packaged_smollm2(), template, max_new_tokens=24)
    job = do_start_judging_job(judge, study)

    # Progress is the job's status, verdicts and heartbeat (renewed about once a second while the model
    # decodes): on a loaded machine one batch can take minutes, but it never goes quiet that long.
    wait_advancing(
        lambda: JudgingJob.objects.filter(pk=job.pk).values_list("status", "done", "heartbeat_at").get(),
        lambda state: state[0] in CLOSED,
        "the local judging job",
    )

    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    verdicts = list(JudgeVerdict.objects.filter(job=job))
    assert len(verdicts) == job.total == job.done == 4
    orders = {(v.response_first_id, v.response_second_id) for v in verdicts}
    for c in study.comparisons.all():
        assert {(c.response_a_id, c.response_b_id), (c.response_b_id, c.response_a_id)} <= orders
    for v in verdicts:
        assert v.prompt_tokens > 50 and 0 < v.completion_tokens <= 24
        assert v.outcome == parse(template.parser, v.text)  # the stored text is the one parsed
    assert job.unparsed == sum(v.outcome == Outcome.UNPARSED for v in verdicts)
    assert job.cost_usd == 0
