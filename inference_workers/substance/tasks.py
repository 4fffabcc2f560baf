"""Celery wiring for substance benchmarks; the work lives in runner.py.

Queued by name on the model's backend's queue (actions.py): ``gpu`` for local models, ``api`` for API models.
"""

from celery import shared_task

from inference_workers.substance import runner


@shared_task(name="inference_workers.substance.tasks.run_benchmark")
def run_benchmark(run_id: int, dispatch: str | None = None) -> str:
    """One of the run's deliveries (one per shard): takes its shards beside the other workers."""
    return runner.run_benchmark(run_id, in_process=False, dispatch=dispatch)
