"""CPU per rating cycle, in-process: the Django side and the Postgres backend, one rater at a time.

    .venv/bin/python bench/rating_cycle_cpu.py [--cycles 400]

A fresh Postgres database (the one bench/rating_load.py uses), a study of 6,000 comparisons, and
Django's test client doing the full cycle (GET the rating page, POST the vote) for 8 raters in
turn. Reported per cycle: this process's CPU time (views, ORM, psycopg2, sockets), the CPU time
of its Postgres backend process (read from /proc), and wall time. No HTTP server and no
concurrency: it shows where one cycle's work goes, beside bench/rating_load.py's throughput.
"""

import argparse
import os
import re
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "bench")]
# rating_load, imported rather than run, reads the site's settings: point them at its database first.
_admin = os.environ.get("BENCH_ADMIN_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
os.environ["DATABASE_URL"] = _admin.rsplit("/", 1)[0] + "/stylegap_bench_rating"
os.environ |= {"STYLEGAP_HTTPS": "0", "LOG_LEVEL": "WARNING", "STYLEGAP_VAR_DIR": str(REPO / "var" / "bench")}

import rating_load  # noqa: E402 - the same database and study setup

VOTE_FORM = re.compile(r'action="(/r/w/[^"]+/vote/[^"]+/)"')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=400)
    args = parser.parse_args()

    rating_load.fresh_database(rating_load.DB_NAME)
    rating_load.setup_django()
    from django.db import connection
    from django.test import Client

    from ratings.actions.studies import do_create_comparisons
    from ratings.models import Rater

    study, _ = rating_load.seed_study(6000, 2, votes_per_comparison=3, comparisons_per_rater=30_000)
    do_create_comparisons(study)
    raters = Rater.objects.bulk_create([Rater(study=study) for _ in range(8)])
    client = Client(HTTP_HOST="127.0.0.1")

    def cycle(rater) -> None:
        page = client.get(f"/r/w/{rater.token}/")
        vote = client.post(VOTE_FORM.search(page.content.decode()).group(1), {"choice": "left"})
        assert vote.status_code == 302

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    tick = os.sysconf("SC_CLK_TCK")

    def postgres_cpu() -> float:
        fields = Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick

    for i in range(40):  # warm-up: caches, prepared statements
        cycle(raters[i % 8])
    p0, g0, w0 = time.process_time(), postgres_cpu(), time.perf_counter()
    for i in range(args.cycles):
        cycle(raters[i % 8])
    p1, g1, w1 = time.process_time(), postgres_cpu(), time.perf_counter()
    n = args.cycles
    print(
        f"per cycle over {n} cycles: Django CPU {1000 * (p1 - p0) / n:.2f} ms, "
        f"Postgres CPU {1000 * (g1 - g0) / n:.2f} ms, wall {1000 * (w1 - w0) / n:.2f} ms"
    )


if __name__ == "__main__":
    main()
