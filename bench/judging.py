"""Benchmark: a judging job against one call at a time, both against a local OpenAI-protocol judge server.

The judge server (tests/judges/judge_server.py, real HTTP on 127.0.0.1) answers every call after
``--latency`` seconds (default 0.2), preferring the longer answer. A study of ``--comparisons``
comparisons (default 1,000: two models' answers to as many questions) is judged in both orders, so
2 x comparisons calls, twice in the same run, each time by a fresh judge on the same model:

- ours: ``judges.jobs.run_judging_job`` in this process with ``STYLEGAP_API_CONCURRENCY`` (default 16)
  requests in flight (the API backend's chunks of 2 x concurrency, back-off on 429/5xx), storing each
  chunk's verdicts in a throwaway SQLite database;
- one at a time: the same job with ``STYLEGAP_API_CONCURRENCY=1``.

verdicts/s = verdicts stored / wall seconds of the job (claim, requests, parsing and storing included).

    .venv/bin/python bench/judging.py [--comparisons 1000] [--latency 0.2] [--concurrency 16]
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# A throwaway embedded database and queue: the benchmark never touches a real deployment.
_VAR = tempfile.mkdtemp(prefix="stylegap-bench-")
for name in ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL"):
    os.environ.pop(name, None)
os.environ["STYLEGAP_VAR_DIR"] = _VAR
os.environ["STYLEGAP_API_LOCAL_HOSTS"] = "127.0.0.1"
os.environ["STYLEGAP_API_KEY_BENCH"] = "sk-bench-not-a-real-key"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402

from inference_workers.actions import do_import_outputs, do_import_prompts  # noqa: E402
from inference_workers.models import (  # noqa: E402
    JobStatus,
    LanguageModel,
    ModelKind,
    ModelRole,
    ModelStatus,
    PromptSet,  # noqa: E402
)
from judges.actions import do_create_judge, do_start_judging_job, ensure_builtin_prompts  # noqa: E402
from judges.jobs import run_judging_job  # noqa: E402
from judges.models import JudgeVerdict, JudgingJob  # noqa: E402
from ratings.actions.studies import do_create_comparisons  # noqa: E402
from ratings.models import PairingDesign, Study  # noqa: E402
from tests.judges.judge_server import JudgeServer  # noqa: E402

KEY_ENV = "STYLEGAP_API_KEY_BENCH"


def build_study(n: int) -> Study:
    ps = PromptSet.objects.create(name="bench-judging", title="Judging benchmark")
    do_import_prompts(ps, [{"external_id": str(i), "text": f"How does thing {i} work?"} for i in range(n)])
    models = []
    for name, words in (("short", 20), ("long", 40)):
        m = LanguageModel.objects.create(name=name, kind=ModelKind.IMPORTED, role=ModelRole.BASE, status="ready")
        do_import_outputs(m, ps, {str(i): " ".join(["word"] * (words + i % 7)) for i in range(n)})
        models.append(m)
    study = Study.objects.create(slug="bench", title="Judging", prompt_set=ps, pairing=PairingDesign.ALL_PAIRS)
    study.language_models.add(*models)
    do_create_comparisons(study)
    return study


def run(study: Study, server: JudgeServer, name: str, concurrency: int) -> dict:
    model = LanguageModel.objects.create(
        name=f"{name}-model",
        kind=ModelKind.OPENAI_API,
        role=ModelRole.PROPRIETARY,
        status=ModelStatus.READY,
        api_base_url=server.base_url,
        api_model_id="judge-bench",
        api_key_env=KEY_ENV,
    )
    template = next(p for p in ensure_builtin_prompts() if p.name == "mt-bench-pairwise")
    judge = do_create_judge(name, model, template, max_new_tokens=64)
    settings.STYLEGAP_API_CONCURRENCY = concurrency
    job = do_start_judging_job(judge, study)  # queues nothing: the broker send waits for a commit outside atomic
    server.max_in_flight = 0
    started = time.perf_counter()
    status = run_judging_job(job.pk, None)
    seconds = time.perf_counter() - started
    job = JudgingJob.objects.get(pk=job.pk)
    verdicts = JudgeVerdict.objects.filter(job=job).count()
    assert status == JobStatus.SUCCEEDED and verdicts == job.total, (status, job.error)
    return {
        "concurrency": concurrency,
        "verdicts": verdicts,
        "seconds": round(seconds, 2),
        "verdicts_per_second": round(verdicts / seconds, 2),
        "max_in_flight": server.max_in_flight,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--comparisons", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    study = build_study(args.comparisons)
    with JudgeServer(os.environ[KEY_ENV], delay_s=args.latency) as server:
        ours = run(study, server, "judge-concurrent", args.concurrency)
        one = run(study, server, "judge-one-at-a-time", 1)
    print(
        json.dumps(
            {
                "comparisons": study.comparisons.count(),
                "latency_s": args.latency,
                "ours": ours,
                "one_at_a_time": one,
                "speedup": round(ours["verdicts_per_second"] / one["verdicts_per_second"], 2),
                "load_average": os.getloadavg(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
