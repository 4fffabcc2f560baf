"""Celery wiring for substance benchmarks; the work lives in runner.py.

Queued by name on the model's backend's queue (actions.py): ``gpu`` for local models, ``api`` for API models.
"""

from celery import shared_task

from inference_workers.substance import runner


@shared_task(bind=True, name="inference_workers.substance.tasks.run_benchmark")
def run_benchmark(self, run_id: int) -> str:
    return runner.run_benchmark(run_id, task_id=self.request.id)
