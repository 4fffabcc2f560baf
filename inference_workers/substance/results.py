"""What a benchmark run's page shows: accuracy with its Wilson interval, the baseline, progress."""

from dataclasses import dataclass

from inference_workers.models import Benchmark, BenchmarkRun, JobStatus
from inference_workers.shards import shard_progress
from inference_workers.substance import datasets, mmlu, runner, scoring
from stats.intervals import wilson_interval


@dataclass(frozen=True)
class RunSummary:
    run: BenchmarkRun
    accuracy: float | None
    ci: tuple[float, float] | None
    random_guess: float | None
    exact_accuracy: float | None
    total: int | None

    @property
    def percent(self) -> float | None:
        return None if self.accuracy is None else 100 * self.accuracy

    @property
    def ci_percent(self) -> tuple[float, float] | None:
        return None if self.ci is None else (100 * self.ci[0], 100 * self.ci[1])

    @property
    def random_guess_percent(self) -> float | None:
        return None if self.random_guess is None else 100 * self.random_guess

    @property
    def exact_percent(self) -> float | None:
        return None if self.exact_accuracy is None else 100 * self.exact_accuracy


def random_guess_for(run: BenchmarkRun) -> float | None:
    """MC1's chance level over the run's own items (the full set for a published MC1 score); MMLU's 1/4."""
    if run.benchmark == Benchmark.MMLU:
        return 0.25
    if run.benchmark != Benchmark.TRUTHFULQA_MC1:
        return None
    return datasets.random_guess_accuracy(runner.benchmark_items(run.benchmark, run.subset_size, run.subset_seed))


def exact_match_accuracy(run: BenchmarkRun) -> float | None:
    """NQ-open's stricter ``exact`` convention, recomputed from the stored predictions and gold answers."""
    if run.benchmark != Benchmark.NQ_OPEN or run.published or not run.n_items:
        return None
    hits = sum(scoring.exact_match(p, g) for p, g in run.items.values_list("prediction", "gold"))
    return hits / run.n_items


def summarize(run: BenchmarkRun, *, with_exact: bool = False) -> RunSummary:
    ci = None
    if run.accuracy is not None and run.n_items:
        ci = wilson_interval(run.n_correct, run.n_items)
    return RunSummary(
        run=run,
        accuracy=run.accuracy,
        ci=ci,
        random_guess=random_guess_for(run),
        exact_accuracy=exact_match_accuracy(run) if with_exact and run.status == JobStatus.SUCCEEDED else None,
        total=None if run.published else runner.planned_total(run),
    )


def progress_dict(run: BenchmarkRun) -> dict:
    total = runner.planned_total(run)
    finished = run.status in {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED}
    return {
        "status": run.status,
        "status_display": run.get_status_display(),
        "done": run.n_items,
        "total": total,
        "correct": run.n_correct,
        "accuracy": run.accuracy,
        "ci": list(wilson_interval(run.n_correct, run.n_items)) if run.accuracy is not None else None,
        "finished": finished,
        "error": run.error,
        **shard_progress(run.shards.all()),
    }


def mmlu_breakdown(run: BenchmarkRun) -> dict | None:
    """Per-category and per-subject accuracy with Wilson intervals, for a measured MMLU run."""
    if run.benchmark != Benchmark.MMLU or run.published or not run.n_items:
        return None
    return mmlu.breakdown(list(run.items.values_list("item_id", "correct")))
