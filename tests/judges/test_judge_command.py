"""``judge_study``: a judge made from a registered model judges a study in both orders, progress in the terminal."""

import re
from io import StringIO

import pytest
from django.core.management import call_command

from judges.models import JudgeVerdict
from tests.judges.test_judging_job import KEY, api_judge, planted_study

from .judge_server import JudgeServer

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_command_runs_a_judge_and_prints_progress():
    study = planted_study(n_prompts=6, garbled_every=3)
    out = StringIO()
    with JudgeServer(KEY, delay_s=0.05) as server:
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
