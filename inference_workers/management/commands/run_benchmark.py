"""Run a substance benchmark for one model: in this process with progress (default), or on its worker queue."""

import time

from django.core.management.base import BaseCommand, CommandError

from inference_workers.actions import SMOLLM2_NAME, register_packaged_smollm2
from inference_workers.backends.registry import backend_for
from inference_workers.models import Benchmark, BenchmarkRun, LanguageModel
from inference_workers.substance import actions, datasets, runner
from stats.intervals import wilson_interval


class Command(BaseCommand):
    help = "Score a model on a substance benchmark (full set, or a seeded subset) and print its accuracy."

    def add_arguments(self, parser):
        parser.add_argument("model", help="the model's name, e.g. smollm2-135m-instruct")
        parser.add_argument("--benchmark", choices=[b.value for b in Benchmark], default=Benchmark.NQ_OPEN)
        parser.add_argument("--subset", type=int, metavar="N", help="a seeded subset of N items (default: all)")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--resume", type=int, metavar="RUN_ID", help="continue an unfinished run")
        parser.add_argument("--queue", action="store_true", help="send it to the model's worker queue and return")
        parser.add_argument(
            "--register-smollm2", action="store_true", help="register the packaged SmolLM2 GGUF first if missing"
        )

    def handle(self, *args, model, benchmark, subset, seed, resume, queue, register_smollm2: bool, **options):
        if register_smollm2 and model == SMOLLM2_NAME:
            register_packaged_smollm2()
        found = LanguageModel.objects.filter(name=model).first()
        if found is None:
            raise CommandError(f"no model {model!r}")
        if not -(2**63) <= seed < 2**63:
            raise CommandError(f"--seed must fit a 64-bit integer, not {seed}")
        try:
            if resume:
                run = BenchmarkRun.objects.get(pk=resume, model=found)
            elif queue:
                run = actions.do_start_benchmark_run(found, benchmark, subset_size=subset, subset_seed=seed)
                self.stdout.write(f"run {run.pk} queued on {backend_for(found).queue}")
                return
            else:
                run = actions.do_create_benchmark_run(found, benchmark, subset_size=subset, subset_seed=seed)
        except (actions.BenchmarkRequestRefused, BenchmarkRun.DoesNotExist) as exc:
            raise CommandError(str(exc)) from exc

        total = runner.planned_total(run)
        started = time.perf_counter()

        def progress(done: int, correct: int) -> None:
            elapsed = time.perf_counter() - started
            self.stderr.write(f"\rrun {run.pk}: {done}/{total} items, {correct} correct, {elapsed:.0f} s", ending="")
            self.stderr.flush()

        status = runner.run_benchmark(run.pk, progress)
        self.stderr.write("")
        run.refresh_from_db()
        if run.error:
            raise CommandError(f"run {run.pk} {status}: {run.error}")
        low, high = wilson_interval(run.n_correct, run.n_items)
        line = (
            f"run {run.pk} {run.benchmark} {found.name}: {run.n_correct}/{run.n_items} = {run.accuracy:.4f} "
            f"(95% Wilson {low:.4f}-{high:.4f}) in {time.perf_counter() - started:.0f} s"
        )
        if run.benchmark == Benchmark.TRUTHFULQA_MC1:
            items = runner.benchmark_items(run.benchmark, run.subset_size, run.subset_seed)
            line += f"; random guess {datasets.random_guess_accuracy(items):.4f}"
        self.stdout.write(line)
