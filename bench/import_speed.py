"""Benchmark: ``import_battles``'s speed on one battle file, ours against the same import unpipelined.

Ours: ``do_import_battles`` as ``manage.py import_battles`` runs it, its Postgres COPYs run by the
``BulkWriter``'s background thread while the next chunk is read and built. Baseline, in the same run:
the same code with the writer made synchronous (each chunk's COPYs done before the next chunk is
read, as before the pipeline). Each run imports the whole file into a fresh database cloned from one
migrated template, in its own child process; ours and the baseline alternate (ABAB...), so a change
in the machine's load falls on both. The file is simulated Arena battles with ``conv_metadata`` and no
texts (``bench/analysis.py``'s generator), written once and reused.

    .venv/bin/python bench/import_speed.py [--votes 100000] [--rounds 2] [--file PATH]
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from postgres import ADMIN_URL, database_url  # noqa: E402

TEMPLATE = "sg_bench_import_template"
TARGET = "sg_bench_import"


def _admin(*statements: str) -> None:
    import psycopg2

    conn = psycopg2.connect(ADMIN_URL)
    conn.autocommit = True
    with conn.cursor() as cur:
        for statement in statements:
            cur.execute(statement)
    conn.close()


def child(mode: str, path: str) -> None:
    """One import in this process (a fresh interpreter): prints seconds, votes and peak memory as JSON."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    import django

    django.setup()
    from ratings.actions.battles import do_import_battles
    from ratings.analysis.battle_files import read_battles
    from ratings.engine import bulk

    if mode == "baseline":
        # The writer's calls become plain insert_rows on the caller's connection, in the caller's thread.
        original = bulk.BulkWriter.__init__

        def synchronous(self, *args, **kwargs):
            original(self, *args, **kwargs)
            self.postgres = False

        bulk.BulkWriter.__init__ = synchronous
    started = time.perf_counter()
    result = do_import_battles("bench-import", read_battles(path))
    took = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": took, "votes": result.votes, "peak_mb": peak_mb}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--votes", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2, help="Runs of each, alternating.")
    parser.add_argument("--file", help="Battle file (written when missing).")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return

    path = args.file or os.path.join(tempfile.gettempdir(), f"stylegap-bench-metadata-{args.votes}.jsonl")
    if not os.path.exists(path):
        from analysis import write_battle_file

        os.makedirs(os.path.dirname(path), exist_ok=True)
        print(f"writing {args.votes:,} battles to {path} ...", flush=True)
        write_battle_file(path, "metadata", args.votes, 50)
    print(f"file: {path}, {os.path.getsize(path) / 1e6:,.0f} MB; load: {os.getloadavg()[0]:.2f}", flush=True)

    _admin(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)", f"CREATE DATABASE {TEMPLATE}")
    env = {**os.environ, "DATABASE_URL": database_url(TEMPLATE)}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=REPO, env=env, check=True)

    times: dict[str, list[float]] = {"ours": [], "baseline": []}
    for n in range(args.rounds):
        for mode in ("ours", "baseline") if n % 2 == 0 else ("baseline", "ours"):
            _admin(f"DROP DATABASE IF EXISTS {TARGET} WITH (FORCE)", f"CREATE DATABASE {TARGET} TEMPLATE {TEMPLATE}")
            env = {**os.environ, "DATABASE_URL": database_url(TARGET)}
            out = subprocess.run(  # noqa: S603 - this interpreter, this script
                [sys.executable, __file__, "--child", mode, path],
                cwd=REPO,
                env=env,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            run = json.loads(out.strip().splitlines()[-1])
            times[mode].append(run["seconds"])
            print(
                f"{mode:>8}: {run['seconds']:.1f} s, {run['votes'] / run['seconds']:,.0f} votes/s, "
                f"peak {run['peak_mb']:,.0f} MB; load {os.getloadavg()[0]:.2f}",
                flush=True,
            )
    _admin(f"DROP DATABASE IF EXISTS {TARGET} WITH (FORCE)", f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)")
    ours, base = min(times["ours"]), min(times["baseline"])
    print(
        f"best of {args.rounds}: ours {ours:.1f} s ({args.votes / ours:,.0f} votes/s), baseline {base:.1f} s "
        f"({args.votes / base:,.0f} votes/s): {base / ours:.2f}x"
    )


if __name__ == "__main__":
    main()
