"""Rating load: gunicorn + Postgres on this machine, 32 raters doing the full cycle at once.

    .venv/bin/python bench/rating_load.py [--seconds 20] [--workers 5] [--raters 32]

Part 1, throughput. A fresh Postgres database (``stylegap_bench_rating``), a study with enough
comparisons never to run dry, and gunicorn serving the real site. 32 concurrent raters each
repeat the full cycle: GET the rating page (lease the next comparison, render it), then POST the
vote (302). The yardstick, measured in the same run by the same client: a bare Django view that
runs one ``SELECT ... FOR UPDATE`` + ``UPDATE`` transaction on a random row. Reported: cycles/s,
requests/s, and p50 / p99 latency of cycles and of requests, and cycles/s over the yardstick's
requests/s.

Part 2, the next-comparison query (``ratings.engine.assignment.next_open_comparison``, which runs
``SELECT ... FOR UPDATE SKIP LOCKED``) timed inside a transaction that is rolled back, for raters
who have already seen 30 comparisons, at 1,000 open comparisons (the whole table), then again
after adding a study of 1,000,000 open comparisons, half of them already claimed once.

Run as a script. gunicorn's workers import this module as their Django settings (the site's own
settings plus the yardstick's URL); the load clients are separate processes so that the
client's GIL does not cap the server.
"""

import os
import sys

if __name__ != "__main__":
    # Imported by gunicorn's workers as DJANGO_SETTINGS_MODULE: the site's settings, plus the yardstick URL.
    from webapp.settings import *  # noqa: F403

    ROOT_URLCONF = __name__

    def __getattr__(name):
        # The URL list is built on first use: at settings-import time the apps are not ready yet.
        if name == "urlpatterns":
            from django.urls import include, path

            return [path("bench/yardstick/", yardstick), path("", include("webapp.urls"))]
        raise AttributeError(name)

    def yardstick(request):
        """The bare view: one transaction with one SELECT ... FOR UPDATE and one UPDATE."""
        import secrets

        from django.db import connection, transaction
        from django.http import HttpResponse

        row = YARDSTICK_FIRST_ID + secrets.randbelow(YARDSTICK_ROWS)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT vote_count FROM ratings_comparison WHERE id = %s FOR UPDATE", [row])
            cursor.execute("UPDATE ratings_comparison SET vote_count = vote_count + 1 WHERE id = %s", [row])
        return HttpResponse("ok")

    YARDSTICK_FIRST_ID = int(os.environ.get("BENCH_YARDSTICK_FIRST_ID", "0"))
    YARDSTICK_ROWS = int(os.environ.get("BENCH_YARDSTICK_ROWS", "1"))


import argparse  # noqa: E402
import http.client  # noqa: E402
import json  # noqa: E402
import multiprocessing  # noqa: E402
import re  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from urllib.parse import urlencode  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from bench.postgres import database_url, fresh_database  # noqa: E402

DB_NAME = "stylegap_bench_rating"
DB_URL = database_url(DB_NAME)
PORT = int(os.environ.get("BENCH_PORT", "8123"))
VOTE_FORM = re.compile(r'action="(/r/w/[^"]+/vote/[^"]+/)"')


def log(msg: str) -> None:
    print(msg, flush=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --- The database ------------------------------------------------------------------------------


def setup_django() -> None:
    os.environ["DATABASE_URL"] = DB_URL
    os.environ["DJANGO_SETTINGS_MODULE"] = "webapp.settings"
    os.environ.setdefault("STYLEGAP_VAR_DIR", str(REPO / "var" / "bench"))
    os.environ["STYLEGAP_HTTPS"] = "0"
    os.environ["LOG_LEVEL"] = "WARNING"
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def seed_study(n_prompts: int, n_models: int, **study_fields):
    """A study with n_prompts x (n_models choose 2) comparisons, built with the ORM and do_create_comparisons."""
    from inference_workers.actions import imported_decoding_config
    from inference_workers.models import LanguageModel, ModelKind, ModelRole, ModelStatus, Prompt, PromptSet, Response
    from ratings.models import Study, StudyStatus

    tag = f"{n_prompts}x{n_models}-{time.monotonic_ns()}"
    prompt_set = PromptSet.objects.create(name=f"bench-{tag}", title=f"Bench {tag}")
    Prompt.objects.bulk_create(
        [Prompt(prompt_set=prompt_set, external_id=str(i), text=f"Question {i}?") for i in range(n_prompts)],
        batch_size=5000,
    )
    models = [
        LanguageModel.objects.create(
            name=f"bench-{tag}-{j}", kind=ModelKind.IMPORTED, role=ModelRole.BASE, status=ModelStatus.READY
        )
        for j in range(n_models)
    ]
    config = imported_decoding_config()
    answer = "An answer with **some** markdown:\n\n- a list item\n- another one\n\n```python\nprint('code')\n```\n"
    prompt_ids = list(prompt_set.prompts.values_list("pk", flat=True))
    for m in models:
        Response.objects.bulk_create(
            [Response(model=m, prompt_id=p, decoding_config=config, text=f"{answer}({m.pk}/{p})") for p in prompt_ids],
            batch_size=5000,
        )
    study = Study.objects.create(
        slug=f"bench-{tag}", title="Bench", prompt_set=prompt_set, status=StudyStatus.OPEN, **study_fields
    )
    study.language_models.add(*models)
    return study, models


def add_million(n_prompts: int = 20_000, n_models: int = 11):
    """A study of n_prompts x 55 = 1,100,000 comparisons, inserted in SQL; half of them claimed once."""
    from django.db import connection

    study, models = seed_study(n_prompts, n_models, votes_per_comparison=3)
    ids = [m.pk for m in models]
    with connection.cursor() as cur:
        cur.execute(
            """
            INSERT INTO ratings_comparison (study_id, prompt_id, response_a_id, response_b_id, token, is_gold,
                gold_answer, vote_count, claim_count, shuffle_key, created_at)
            SELECT %s, ra.prompt_id, ra.id, rb.id, md5(ra.id || '-' || rb.id), false, '', 0,
                   (random() < 0.5)::int, floor(random() * 2147483647)::int, now()
            FROM inference_workers_response ra
            JOIN inference_workers_response rb ON rb.prompt_id = ra.prompt_id AND rb.model_id > ra.model_id
            WHERE ra.model_id = ANY(%s) AND rb.model_id = ANY(%s)
            """,
            [study.pk, ids, ids],
        )
        cur.execute("ANALYZE ratings_comparison")
        cur.execute("ANALYZE ratings_assignment")
    return study


# --- Part 1: the load ----------------------------------------------------------------------


def client_process(kind: str, tokens: list[str], deadline: float, start_at: float, queue) -> None:
    """One load process: a thread per rater token; reports (cycle latencies, request latencies, errors)."""
    cycles: list[float] = []
    requests: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def request(method: str, path: str, body: str | None = None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
        t0 = time.perf_counter()
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        elapsed = time.perf_counter() - t0
        conn.close()
        return response, data, elapsed

    def rater(token: str) -> None:
        mine_cycles, mine_requests = [], []
        while time.monotonic() < start_at:
            time.sleep(0.001)
        try:
            while time.monotonic() < deadline:
                if kind == "yardstick":
                    response, _, elapsed = request("GET", "/bench/yardstick/")
                    mine_requests.append(elapsed)
                    mine_cycles.append(elapsed)
                    continue
                response, data, t_get = request("GET", f"/r/w/{token}/")
                html = data.decode()
                form = VOTE_FORM.search(html)
                if response.status != 200 or form is None:
                    errors.append(f"no vote form (status {response.status})")
                    return
                body = urlencode({"choice": "left"})
                response, _, t_post = request(
                    "POST", form.group(1), body, {"Content-Type": "application/x-www-form-urlencoded"}
                )
                if response.status != 302:
                    errors.append(f"vote answered {response.status}")
                    return
                mine_requests += [t_get, t_post]
                mine_cycles.append(t_get + t_post)
        except Exception as exc:  # noqa: BLE001 - counted and reported
            errors.append(repr(exc))
        with lock:
            cycles.extend(mine_cycles)
            requests.extend(mine_requests)

    threads = [threading.Thread(target=rater, args=(t,)) for t in tokens]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    queue.put((cycles, requests, errors))


def run_load(kind: str, tokens: list[str], seconds: float, processes: int = 4) -> dict:
    queue = multiprocessing.Queue()
    start_at = time.monotonic() + 1.0
    deadline = start_at + seconds
    chunks = [tokens[i::processes] for i in range(processes)]
    procs = [
        multiprocessing.Process(target=client_process, args=(kind, chunk, deadline, start_at, queue))
        for chunk in chunks
        if chunk
    ]
    for p in procs:
        p.start()
    cycles, requests, errors = [], [], []
    for _ in procs:
        c, r, e = queue.get()
        cycles += c
        requests += r
        errors += e
    for p in procs:
        p.join()
    return {
        "kind": kind,
        "clients": len(tokens),
        "seconds": seconds,
        "cycles": len(cycles),
        "cycles_per_s": len(cycles) / seconds,
        "requests_per_s": len(requests) / seconds,
        "cycle_p50_ms": 1000 * percentile(cycles, 0.50) if cycles else None,
        "cycle_p99_ms": 1000 * percentile(cycles, 0.99) if cycles else None,
        "request_p50_ms": 1000 * percentile(requests, 0.50) if requests else None,
        "request_p99_ms": 1000 * percentile(requests, 0.99) if requests else None,
        "errors": errors[:5],
        "n_errors": len(errors),
    }


def start_gunicorn(workers: int, yardstick_first: int, yardstick_rows: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.rating_load",
        "DATABASE_URL": DB_URL,
        "BENCH_YARDSTICK_FIRST_ID": str(yardstick_first),
        "BENCH_YARDSTICK_ROWS": str(yardstick_rows),
        "DB_CONN_MAX_AGE": "600",
    }
    proc = subprocess.Popen(  # noqa: S603 - our own gunicorn
        [
            str(REPO / ".venv" / "bin" / "gunicorn"),
            "webapp.wsgi:application",
            "--bind",
            f"127.0.0.1:{PORT}",
            "--workers",
            str(workers),
            "--backlog",
            "2048",
            "--log-level",
            "warning",
        ],
        cwd=REPO,
        env=env,
    )
    for _ in range(200):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=1)
            conn.request("GET", "/bench/yardstick/")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.1)
    proc.terminate()
    raise RuntimeError("gunicorn did not answer")


# --- Part 2: the next-comparison query -----------------------------------------------------------


def time_next_query(study, n_raters: int = 50, repeats: int = 40) -> dict:
    """Median / p99 of next_open_comparison for raters who have each seen 30 comparisons (rolled back)."""
    from django.db import transaction
    from django.utils import timezone

    from ratings.engine.assignment import next_open_comparison
    from ratings.models import Assignment, Rater

    now = timezone.now()
    raters = Rater.objects.bulk_create([Rater(study=study) for _ in range(n_raters)])
    seen_pool = list(study.comparisons.order_by("claim_count", "shuffle_key").values_list("pk", flat=True)[:300])
    Assignment.objects.bulk_create(
        [
            Assignment(
                rater=r,
                comparison_id=seen_pool[(i * 7 + j) % len(seen_pool)],
                left_is_a=True,
                status="voted",
                leased_at=now,
                lease_expires_at=now + timezone.timedelta(minutes=10),
            )
            for i, r in enumerate(raters)
            for j in range(30)
        ],
        ignore_conflicts=True,
    )
    timings = []
    for k in range(repeats):
        for rater in raters:
            with transaction.atomic():
                t0 = time.perf_counter()
                picked = next_open_comparison(study, rater)
                timings.append(time.perf_counter() - t0)
                assert picked is not None
                transaction.set_rollback(True)
        if k == 0:
            timings.clear()  # first pass warms the caches
    return {
        "open_comparisons": study.comparisons.count(),
        "n": len(timings),
        "median_ms": 1000 * statistics.median(timings),
        "p99_ms": 1000 * percentile(timings, 0.99),
    }


def explain(study) -> str:
    """EXPLAIN ANALYZE of the statement next_open_comparison runs (captured as it runs, then rolled back)."""
    from django.db import connection, transaction

    from ratings.engine.assignment import next_open_comparison
    from ratings.models import Rater

    rater = Rater.objects.filter(study=study).first()
    captured = []

    def capture(execute, sql, params, many, context):
        captured.append((sql, params))
        return execute(sql, params, many, context)

    with transaction.atomic():
        with connection.execute_wrapper(capture):
            next_open_comparison(study, rater)
        with connection.cursor() as cur:
            sql, params = captured[0]
            cur.execute("EXPLAIN ANALYZE " + sql, params)
            plan = "\n".join(row[0] for row in cur.fetchall())
        transaction.set_rollback(True)
    return plan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--workers", type=int, default=5)
    parser.add_argument("--raters", type=int, default=32)
    parser.add_argument("--skip-million", action="store_true")
    args = parser.parse_args()

    log(f"==> fresh database {DB_NAME}, migrate")
    fresh_database(DB_NAME)
    setup_django()
    from ratings.models import Rater

    log("==> part 2a: the next-comparison query at 1,000 open comparisons (the whole table)")
    small, _ = seed_study(500, 3, votes_per_comparison=3)  # 500 prompts x 3 pairs = 1,500 ...
    from ratings.actions.studies import do_create_comparisons

    do_create_comparisons(small)
    small.comparisons.filter(pk__in=list(small.comparisons.values_list("pk", flat=True)[1000:])).delete()
    at_1k = time_next_query(small)
    log(json.dumps(at_1k))

    log(f"==> part 1: {args.raters} raters, gunicorn --workers {args.workers}, {args.seconds:.0f} s per measurement")
    load, _ = seed_study(6000, 2, votes_per_comparison=3, comparisons_per_rater=30_000)
    do_create_comparisons(load)
    tokens = [r.token for r in Rater.objects.bulk_create([Rater(study=load) for _ in range(args.raters)])]
    yard = list(small.comparisons.order_by("pk").values_list("pk", flat=True))
    server = start_gunicorn(args.workers, yard[0], len(yard))
    try:
        run_load("yardstick", tokens, 3)  # warm-up
        yardstick = run_load("yardstick", tokens, args.seconds)
        log(json.dumps(yardstick))
        run_load("cycle", tokens, 3)  # warm-up
        cycle = run_load("cycle", tokens, args.seconds)
        log(json.dumps(cycle))
    finally:
        server.terminate()
        server.wait(30)
    from django.db.models import Count, F

    from ratings.models import Comparison, Vote

    over = Comparison.objects.filter(study=load, vote_count__gt=F("study__votes_per_comparison")).count()
    votes = Vote.objects.filter(comparison__study=load).count()
    pairs = Vote.objects.filter(comparison__study=load).values("rater", "comparison")
    doubled = pairs.annotate(n=Count("id")).filter(n__gt=1)
    log(f"    votes recorded: {votes}; comparisons over k: {over}; rater x comparison twice: {doubled.count()}")

    result = {"yardstick": yardstick, "cycle": cycle, "next_query_1k": at_1k}
    result["cycles_per_yardstick_request"] = cycle["cycles_per_s"] / yardstick["requests_per_s"]
    if not args.skip_million:
        log("==> part 2b: adding a study of 1,100,000 open comparisons (SQL insert, then ANALYZE)")
        t0 = time.perf_counter()
        big = add_million()
        log(f"    built in {time.perf_counter() - t0:.0f} s")
        at_1m = time_next_query(big)
        log(json.dumps(at_1m))
        again_1k = time_next_query(small)
        log("    1,000-comparison study again, now in the big table: " + json.dumps(again_1k))
        result |= {"next_query_1m": at_1m, "next_query_1k_in_big_table": again_1k}
        result["next_query_ratio_1m_over_1k"] = at_1m["median_ms"] / at_1k["median_ms"]
        log("    EXPLAIN ANALYZE at 1M:\n" + explain(big))
    log("==> summary")
    log(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
