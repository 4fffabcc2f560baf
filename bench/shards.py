"""Benchmark: one SmolLM2 generation job on 1 worker against the same job on 2 workers, in the same run.

Each worker is a real ``celery worker`` process (concurrency 1, one torch thread: two of them share a
2-core machine) on Postgres and Redis, taking shards of the job (inference_workers/shards.py). Before
each round every worker loads the model with a one-prompt warm-up job on a queue of its own (load time
is left out); the timed job then goes to the queue they share, under a fresh decoding seed so that no
answer of an earlier round is reused (greedy: the answers are the same).

throughput = prompts answered / wall seconds from queueing the job to its end (as read from its row);
ratio = throughput with 2 workers / throughput with 1 worker. The load (as ``uptime``) is printed before and after.

    createdb -h 127.0.0.1 -U postgres stylegap_bench   # a database of its own, migrated here
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/stylegap_bench CELERY_BROKER_URL=redis://127.0.0.1:6379/14 \\
        .venv/bin/python bench/shards.py [--prompts 64] [--max-new-tokens 48] [--shard 8] [--batch-size 4]
"""

import argparse
import json
import os
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402

from inference_workers.actions import decoding_config_for, do_start_generation_job  # noqa: E402
from inference_workers.backends import local  # noqa: E402
from inference_workers.models import (  # noqa: E402
    GenerationJob,
    JobStatus,
    LanguageModel,
    ModelKind,
    ModelRole,
    ModelStatus,
    Prompt,
    PromptSet,
    Response,
)
from tests.conftest import WorkerProcess, database_url  # noqa: E402


def questions(n: int) -> list[str]:
    lines = (REPO / "data" / "vicuna80" / "vicuna_questions.jsonl").read_text().splitlines()
    texts = [json.loads(line)["text"] for line in lines if line.strip()]
    return [f"{texts[i % len(texts)]} ({i})" for i in range(n)]


def prompt_set(name: str, texts: list[str]) -> PromptSet:
    ps, _ = PromptSet.objects.get_or_create(name=name, defaults={"title": name})
    Prompt.objects.bulk_create(
        [Prompt(prompt_set=ps, external_id=str(i), text=t) for i, t in enumerate(texts)], ignore_conflicts=True
    )
    return ps


def wait_for(job: GenerationJob) -> GenerationJob:
    while True:
        job.refresh_from_db()
        if job.is_finished:
            if job.status != JobStatus.SUCCEEDED:
                raise SystemExit(f"job {job.pk} ended {job.status}: {job.error}")
            return job
        time.sleep(0.2)


def uptime() -> str:
    """As ``uptime`` prints it: load averages over 1, 5 and 15 minutes, and the cores."""
    one, five, fifteen = os.getloadavg()
    return f"load average: {one:.2f}, {five:.2f}, {fifteen:.2f} on {os.cpu_count()} cores"


def round_with(n_workers: int, model, jobs_set, warm_set, args, seed: int) -> tuple[float, int]:
    """Seconds for the job on ``n_workers`` workers, and the completion tokens it generated."""
    run = uuid.uuid4().hex[:6]
    shared = f"bench-shards-{run}"
    env = {
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "STYLEGAP_TORCH_THREADS": "1",
        "STYLEGAP_SHARD_PROMPTS": str(args.shard),
        "STYLEGAP_GENERATION_BATCH_SIZE": str(args.batch_size),
        "LOG_LEVEL": "WARNING",
    }
    db_url = database_url(settings.DATABASES["default"])
    workers = [WorkerProcess(db_url, queues=f"{shared},{shared}-own{i}", env=env) for i in range(n_workers)]
    try:
        for worker in workers:
            worker.start()
        # Each worker loads the model before the clock starts.
        for i, _ in enumerate(workers):
            warm = decoding_config_for(temperature=0, top_p=1, max_new_tokens=2, seed=1000 * seed + i)
            wait_for(do_start_generation_job(model, warm_set, warm, queue=f"{shared}-own{i}"))
        config = decoding_config_for(temperature=0, top_p=1, max_new_tokens=args.max_new_tokens, seed=seed)
        started = time.perf_counter()
        job = wait_for(do_start_generation_job(model, jobs_set, config, queue=shared))
        seconds = time.perf_counter() - started
    finally:
        for worker in workers:
            worker.stop()
    tokens = sum(Response.objects.filter(job=job).values_list("completion_tokens", flat=True))
    who = sorted({s.worker.split("/")[0] for s in job.shards.all()})
    print(
        f"  {n_workers} worker(s): {job.done}/{job.total} prompts in {seconds:.1f} s "
        f"({job.done / seconds:.2f} prompts/s, {tokens / seconds:.1f} tok/s); shards by {len(who)} worker(s)"
    )
    return seconds, tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--shard", type=int, default=8, help="prompts per shard (STYLEGAP_SHARD_PROMPTS)")
    parser.add_argument("--batch-size", type=int, default=4, help="prompts per batch in each worker")
    args = parser.parse_args()
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        raise SystemExit("bench/shards.py needs Postgres and Redis: set DATABASE_URL and CELERY_BROKER_URL")
    settings.STYLEGAP_SHARD_PROMPTS = args.shard  # deliveries queued per job: one per shard, as the workers cut them
    call_command("migrate", verbosity=0)

    model, _ = LanguageModel.objects.get_or_create(
        name="smollm2-bench-shards",
        defaults={
            "kind": ModelKind.GGUF,
            "role": ModelRole.BASE,
            "status": ModelStatus.READY,
            "server_path": str(local.smollm2_folder()),
            "gguf_file": local.SMOLLM2_GGUF,
        },
    )
    jobs_set = prompt_set(f"bench-shards-{args.prompts}", questions(args.prompts))
    warm_set = prompt_set("bench-shards-warm-up", ["Hello."])
    print(f"before: {uptime()}")
    print(
        f"{args.prompts} prompts, {args.max_new_tokens} new tokens, shards of {args.shard}, batches of "
        f"{args.batch_size}, one torch thread per worker"
    )
    base = int(time.time())  # fresh seeds: no answer of an earlier run of this script is reused
    one_s, one_tokens = round_with(1, model, jobs_set, warm_set, args, seed=base)
    two_s, two_tokens = round_with(2, model, jobs_set, warm_set, args, seed=base + 1)
    print(f"after: {uptime()}")
    one, two = args.prompts / one_s, args.prompts / two_s
    print(f"1 worker : {one:.3f} prompts/s ({one_tokens / one_s:.1f} tok/s)")
    print(f"2 workers: {two:.3f} prompts/s ({two_tokens / two_s:.1f} tok/s)")
    print(f"ratio    : {two / one:.2f}x")


if __name__ == "__main__":
    main()
