"""HumanEval scoring with known-good and known-bad completions, run in the sandbox."""

import os

import pytest

from inference_workers.substance import humaneval, sandbox
from inference_workers.substance.humaneval import Problem, check_completion, program_for, score, truncate_completion
from stats.pass_at_k import pass_at_k
from tests.inference_workers.chat_server import ChatServer
from tests.inference_workers.conftest import TEST_API_KEY_ENV
from tests.substance.conftest import wait_until_finished

needs_sandbox = pytest.mark.skipif(
    not os.environ.get("CI") and sandbox.sandbox_problem() is not None,
    reason="bubblewrap is not usable on this developer machine (CI installs it and runs these)",
)


def by_id(task_id: str) -> Problem:
    return next(p for p in humaneval.problems() if p.task_id == task_id)


def test_the_dataset_is_whole():
    problems = humaneval.problems()
    assert len(problems) == 164
    assert [p.task_id for p in problems] == [f"HumanEval/{i}" for i in range(164)]


def test_a_continuation_is_cut_at_the_first_top_level_stop_sequence():
    text = "    return a + b\n\n\ndef helper():\n    pass\n"
    assert truncate_completion(text) == "    return a + b\n\n"
    assert truncate_completion("    return 1\n# trailing comment\nprint(1)") == "    return 1"
    assert truncate_completion("    x = 1\n    if x:\n        return x\n") == "    x = 1\n    if x:\n        return x\n"


def test_a_fenced_whole_function_from_a_chat_model_redefines_the_prompt_function():
    problem = by_id("HumanEval/0")
    answer = "Here it is:\n```python\ndef has_close_elements(numbers, threshold):\n    return False\n```\nDone."
    program = program_for(problem, answer)
    assert program.startswith(problem.prompt)
    assert "\ndef has_close_elements(numbers, threshold):\n    return False\n" in program
    assert "Here it is" not in program and "Done." not in program
    assert program.rstrip().endswith("check(has_close_elements)")


@needs_sandbox
@pytest.mark.parametrize("task_id", ["HumanEval/0", "HumanEval/10", "HumanEval/38", "HumanEval/53", "HumanEval/163"])
def test_the_canonical_solution_passes(task_id):
    problem = by_id(task_id)
    outcome = check_completion(problem, problem.canonical_solution)
    assert outcome.passed, outcome.output


@needs_sandbox
def test_known_bad_completions_fail_with_their_error():
    problem = by_id("HumanEval/53")  # add(x, y)
    wrong = check_completion(problem, "    return x - y\n")
    assert not wrong.passed and wrong.status == "failed"
    assert wrong.reason.startswith("AssertionError")
    broken = check_completion(problem, "    return x +\n")
    assert not broken.passed and broken.reason.startswith("SyntaxError")
    slow = check_completion(problem, "    while True:\n        pass\n", sandbox.Limits(wall_seconds=20, cpu_seconds=1))
    assert not slow.passed and slow.status == "cpu_limit"


def test_pass_at_k_matches_hand_computed_values():
    # n=5 samples, c=2 correct: pass@1 = 2/5; pass@2 = 1 - C(3,2)/C(5,2) = 1 - 3/10 = 0.7
    assert pass_at_k(5, 2, 1) == pytest.approx(0.4)
    assert pass_at_k(5, 2, 2) == pytest.approx(0.7)
    assert pass_at_k(5, 4, 2) == 1.0  # n - c < k: every draw of 2 holds a correct one
    assert pass_at_k(5, 0, 3) == 0.0
    with pytest.raises(ValueError):
        pass_at_k(3, 1, 4)


def test_score_gives_pass_at_1_with_a_wilson_interval_and_pass_at_k_where_defined():
    one_each = score({"a": [True], "b": [False], "c": [True], "d": [False]})
    assert one_each.pass_at_1 == pytest.approx(0.5)
    assert one_each.problems == 4 and one_each.samples == 4
    low, high = one_each.interval
    assert low < 0.5 < high
    assert one_each.pass_at_k == {}
    many = score({"a": [True, False, False, False, True], "b": [False] * 5}, ks=(1, 2, 10))
    assert many.pass_at_1 == pytest.approx((0.4 + 0.0) / 2)
    assert many.pass_at_k == {2: pytest.approx((0.7 + 0.0) / 2)}


class CodeServer(ChatServer):
    """An OpenAI-protocol model that writes the canonical solution for even-numbered problems
    and a wrong one (or hostile code) for odd ones, as a chat model would: in a fenced block."""

    def answer(self, body: dict) -> str:
        asked = body["messages"][-1]["content"]
        problem = next(p for p in humaneval.problems() if p.prompt in asked)
        number = int(problem.task_id.split("/")[1])
        if number % 2 == 0:
            return f"Sure:\n```python\n{problem.prompt}{problem.canonical_solution}```"
        if number % 3 == 0:
            return "```python\nimport socket\nsocket.create_connection(('127.0.0.1', 5432), timeout=2)\n```"
        return f"```python\ndef {problem.entry_point}(*args, **kwargs):\n    return None\n```"


@needs_sandbox
@pytest.mark.django_db(transaction=True)
def test_a_humaneval_run_through_the_worker_scores_each_completion_in_the_sandbox(worker, researcher_client):
    from django.urls import reverse

    from inference_workers.models import Benchmark, BenchmarkItem, JobStatus
    from inference_workers.substance.actions import do_start_benchmark_run
    from inference_workers.substance.datasets import seeded_subset
    from tests.inference_workers.test_api_models import api_model

    with CodeServer(os.environ[TEST_API_KEY_ENV], delay_s=0) as server:
        model = api_model(server)
        run = do_start_benchmark_run(model, Benchmark.HUMANEVAL, subset_size=8, subset_seed=1)
        run = wait_until_finished(run, stall_s=600)
    assert run.status == JobStatus.SUCCEEDED, run.error
    chosen = seeded_subset(humaneval.problems(), 8, 1)
    even = {p.task_id for p in chosen if int(p.task_id.split("/")[1]) % 2 == 0}
    items = {i.item_id: i for i in BenchmarkItem.objects.filter(run=run)}
    assert set(items) == {p.task_id for p in chosen}
    assert {k for k, i in items.items() if i.correct} == even
    assert run.n_correct == len(even) and run.accuracy == len(even) / 8
    for task_id, item in items.items():
        if task_id in even:
            assert item.detail == ""
        else:
            assert item.detail.startswith("failed: "), item.detail  # e.g. "failed: AssertionError" / "...Refused"
    wrong = researcher_client.get(reverse("substance:wrong-answers", args=[run.pk])).content.decode()
    assert "Why it failed" in wrong and f"{8 - len(even)} wrong of 8" in wrong
    assert "sandbox" in run.prompting


@needs_sandbox
@pytest.mark.django_db(transaction=True)
def test_sandbox_checks_that_outlast_the_shard_lease_keep_the_shard(settings, monkeypatch):
    """Checking a batch's completions (up to the sandbox's 10 s each: a model that writes endless loops) used to
    renew no lease, so beat reopened the live worker's shard and the worker lost it at its next write; after
    three such losses the shard, and the run, failed. Here the leases' clock moves on by almost half a lease
    at each check, and beat looks after every one."""
    import types
    from datetime import timedelta

    from django.utils import timezone

    from inference_workers import claims
    from inference_workers.models import Benchmark, BenchmarkShard, JobStatus
    from inference_workers.substance import runner
    from inference_workers.substance.actions import do_create_benchmark_run
    from tests.inference_workers.test_api_models import api_model

    lease_s, moved = settings.STYLEGAP_SHARD_LEASE_SECONDS, [0.0]
    monkeypatch.setattr(
        claims, "timezone", types.SimpleNamespace(now=lambda: timezone.now() + timedelta(seconds=moved[0]))
    )
    real_check, checked = humaneval.check_completion, []

    def slow_check(problem, text):
        outcome = real_check(problem, text)
        moved[0] += 0.45 * lease_s  # as if this check took almost half a lease
        checked.append(problem.task_id)
        claims.reopen_lapsed_shards(BenchmarkShard.objects.all())  # beat, which runs every 30 s, looks now
        return outcome

    monkeypatch.setattr(humaneval, "check_completion", slow_check)
    with CodeServer(os.environ[TEST_API_KEY_ENV], delay_s=0) as server:
        run = do_create_benchmark_run(api_model(server), Benchmark.HUMANEVAL, subset_size=6, subset_seed=1)
        status = runner.run_benchmark(run.pk)
    run.refresh_from_db()
    assert status == JobStatus.SUCCEEDED, run.error
    (shard,) = run.shards.all()
    assert (shard.attempts, shard.previous_worker) == (1, ""), "the live worker lost its shard"
    assert sorted(checked) == sorted(set(checked)) and len(checked) == 6, "each completion checked once"
    assert run.n_items == 6
