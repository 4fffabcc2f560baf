"""Benchmark: ``import_battles``'s speed on one battle file, ours against the same import with its
foreign keys checked row by row.

Ours: ``do_import_battles`` as ``manage.py import_battles`` runs it, its Postgres COPYs run by the
``BulkWriter``'s background thread while the next chunk is read and built, their foreign keys checked
in bulk at the end. Baseline, in the same run: the same code with ``bulk_checks=False`` (Postgres's
per-row checks, as before them). ``--unpipelined`` adds the same code with the writer made synchronous
(each chunk's COPYs done before the next chunk is read, as before the pipeline). Each run imports the
whole file into a fresh database cloned from one
migrated template, in its own child process; ours and the baseline alternate (ABAB...), so a change
in the machine's load falls on both. The file is simulated Arena battles with ``conv_metadata`` and no
texts (``bench/analysis.py``'s generator), written once and reused.

``--baseline-tree PATH`` adds a third contender: ``manage.py import_battles`` of another checkout
(say ``git worktree add --detach /tmp/old <commit>``, with its own ``.venv`` or a link to this one),
into a database migrated by that checkout, timed by the seconds its command prints.

    .venv/bin/python bench/import_speed.py [--votes 100000] [--rounds 2] [--file PATH] [--baseline-tree PATH]

``--costs`` measures instead what the schema costs the import: ours into fresh copies of the migrated
schema, one with nothing dropped and one per index or set of foreign keys dropped (``COST_VARIANTS``).
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

from postgres import admin as _admin  # noqa: E402
from postgres import database_url  # noqa: E402

TEMPLATE = "sg_bench_import_template"
TARGET = "sg_bench_import"


def child(mode: str, path: str) -> None:
    """One import in this process (a fresh interpreter): prints seconds, votes and peak memory as JSON."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    import django

    django.setup()
    from ratings.actions.battles import do_import_battles
    from ratings.analysis.battle_files import read_battles
    from ratings.engine import bulk

    if mode == "unpipelined":
        # The writer's calls become plain insert_rows on the caller's connection, in the caller's thread.
        original = bulk.BulkWriter.__init__

        def synchronous(self, *args, **kwargs):
            original(self, *args, **kwargs)
            self.postgres = False

        bulk.BulkWriter.__init__ = synchronous
    from django.db import connection

    connection.ensure_connection()
    backend = connection.connection.get_backend_pid()  # the import's COPYs run in this Postgres process
    postgres_before, ours_before = _cpu_seconds(backend), _own_cpu_seconds()
    started = time.perf_counter()
    result = do_import_battles("bench-import", read_battles(path), bulk_checks=mode != "per-row")
    took = time.perf_counter() - started
    postgres_cpu, ours_cpu = _cpu_seconds(backend) - postgres_before, _own_cpu_seconds() - ours_before
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    run = {"seconds": took, "votes": result.votes, "peak_mb": peak_mb, "references": result.references}
    print(json.dumps({**run, "cpu_s": ours_cpu, "postgres_cpu_s": postgres_cpu}))


def _own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process on this machine (nan when it is elsewhere or unreadable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--votes", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2, help="Runs of each, alternating.")
    parser.add_argument("--file", help="Battle file (written when missing).")
    parser.add_argument("--baseline-tree", help="Another checkout whose import_battles also runs.")
    parser.add_argument("--unpipelined", action="store_true", help="Also the same import with a synchronous writer.")
    parser.add_argument(
        "--costs",
        action="store_true",
        help="Instead: ours into copies of the schema with some indexes or foreign keys dropped (an experiment: "
        "where Postgres's time goes).",
    )
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

    if args.costs:
        costs(path, args.rounds)
        return
    trees = {"ours": REPO, "per-row": REPO}
    if args.unpipelined:
        trees["unpipelined"] = REPO
    if args.baseline_tree:
        trees["baseline tree"] = Path(args.baseline_tree).resolve()
    for name, tree in trees.items():
        if name in ("per-row", "unpipelined"):
            continue  # this checkout's template serves them
        template = _template(name)
        _admin(f"DROP DATABASE IF EXISTS {template} WITH (FORCE)", f"CREATE DATABASE {template}")
        env = {**os.environ, "DATABASE_URL": database_url(template)}
        python = tree / ".venv" / "bin" / "python"
        subprocess.run([str(python), "manage.py", "migrate", "-v0"], cwd=tree, env=env, check=True)  # noqa: S603

    times: dict[str, list[float]] = {name: [] for name in trees}
    for n in range(args.rounds):
        order = list(trees) if n % 2 == 0 else list(reversed(trees))
        for name in order:
            template = _template("ours" if name in ("per-row", "unpipelined") else name)
            _admin(f"DROP DATABASE IF EXISTS {TARGET} WITH (FORCE)", f"CREATE DATABASE {TARGET} TEMPLATE {template}")
            env = {**os.environ, "DATABASE_URL": database_url(TARGET)}
            if name == "baseline tree":
                tree = trees[name]
                out = subprocess.run(  # noqa: S603 - that checkout's interpreter and manage.py
                    [str(tree / ".venv" / "bin" / "python"), "manage.py", "import_battles", "--study", "bench", path],
                    cwd=tree,
                    env=env,
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
                seconds = float(out.strip().splitlines()[-1].rsplit(" ", 2)[-2])
                run = {"seconds": seconds, "votes": args.votes, "peak_mb": float("nan")}
            else:
                out = subprocess.run(  # noqa: S603 - this interpreter, this script
                    [sys.executable, __file__, "--child", name, path],
                    cwd=REPO,
                    env=env,
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
                run = json.loads(out.strip().splitlines()[-1])
            times[name].append(run["seconds"])
            cpu = (
                f", CPU: import {run['cpu_s']:.1f} s, its Postgres process {run['postgres_cpu_s']:.1f} s"
                if "cpu_s" in run
                else ""
            )
            refs = f", references checked {run['references']}" if run.get("references") else ""
            print(
                f"{name:>13}: {run['seconds']:.1f} s, {run['votes'] / run['seconds']:,.0f} votes/s, "
                f"peak {run['peak_mb']:,.0f} MB{cpu}{refs}; load {os.getloadavg()[0]:.2f}",
                flush=True,
            )
    drop = [f"DROP DATABASE IF EXISTS {TARGET} WITH (FORCE)"]
    drop += [
        f"DROP DATABASE IF EXISTS {_template(name)} WITH (FORCE)" for name in ("ours", "baseline tree") if name in trees
    ]
    _admin(*drop)
    ours = min(times["ours"])
    print(f"best of {args.rounds}: ours {ours:.1f} s ({args.votes / ours:,.0f} votes/s)")
    for name in trees:
        if name != "ours":
            best = min(times[name])
            print(f"  {name}: {best:.1f} s ({args.votes / best:,.0f} votes/s): ours is {best / ours:.2f}x")


IMPORT_TABLES = (
    "'ratings_vote', 'ratings_comparison', 'inference_workers_response', 'inference_workers_prompt', 'ratings_rater'"
)
# Parents that every imported row of a table points at (one study, a few models, one config and prompt set).
SHARED_PARENTS = "'ratings_study', 'inference_workers_languagemodel', 'inference_workers_decodingconfig', " + (
    "'inference_workers_promptset'"
)


def _drop_foreign_keys(parents: str) -> str:
    """A statement dropping the foreign keys of the import's tables whose parent table is ``parents``."""
    # Built from this module's constants only.
    select = (
        "SELECT conrelid::regclass AS t, conname FROM pg_constraint WHERE contype = 'f' "  # noqa: S608
        f"AND conrelid::regclass::text IN ({IMPORT_TABLES}) AND {parents}"
    )
    drop = "EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', r.t, r.conname);"
    return f"DO $$ DECLARE r record; BEGIN FOR r IN {select} LOOP {drop} END LOOP; END $$"


# What each variant drops from a copy of the migrated schema. Never something the import may do: only a
# measurement of what each costs.
COST_VARIANTS = {
    "as migrated": [],
    "no comparison token index": ["ALTER TABLE ratings_comparison DROP CONSTRAINT comparison_token_unique"],
    "no comparison queue index": ["DROP INDEX comparison_queue"],
    "no rater token, address indexes": [
        "ALTER TABLE ratings_rater DROP CONSTRAINT rater_token_unique",
        "DROP INDEX rater_arrivals_per_address",
    ],
    "no vote assignment index": ["DROP INDEX one_vote_per_assignment"],
    "no foreign keys to shared parents": [_drop_foreign_keys(f"confrelid::regclass::text IN ({SHARED_PARENTS})")],
    "no foreign keys among imported rows": [_drop_foreign_keys(f"confrelid::regclass::text NOT IN ({SHARED_PARENTS})")],
    "no foreign keys": [_drop_foreign_keys("true")],
}


def costs(path: str, rounds: int) -> None:
    """Ours, into a fresh copy of the migrated schema per variant of COST_VARIANTS, round by round."""
    import psycopg2

    template = _template("ours")
    _admin(f"DROP DATABASE IF EXISTS {template} WITH (FORCE)", f"CREATE DATABASE {template}")
    env = {**os.environ, "DATABASE_URL": database_url(template)}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=REPO, env=env, check=True)  # noqa: S603
    for _ in range(rounds):
        for name, statements in COST_VARIANTS.items():
            _admin(f"DROP DATABASE IF EXISTS {TARGET} WITH (FORCE)", f"CREATE DATABASE {TARGET} TEMPLATE {template}")
            conn = psycopg2.connect(database_url(TARGET))
            with conn, conn.cursor() as cur:
                for statement in statements:
                    cur.execute(statement)
            conn.close()
            out = subprocess.run(  # noqa: S603 - this interpreter, this script
                [sys.executable, __file__, "--child", "ours", path],
                cwd=REPO,
                env={**os.environ, "DATABASE_URL": database_url(TARGET)},
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            run = json.loads(out.strip().splitlines()[-1])
            print(
                f"{name:>43}: {run['seconds']:.1f} s, {run['votes'] / run['seconds']:,.0f} votes/s, CPU: import "
                f"{run['cpu_s']:.1f} s, its Postgres process {run['postgres_cpu_s']:.1f} s; "
                f"load {os.getloadavg()[0]:.2f}",
                flush=True,
            )
    _admin(f"DROP DATABASE IF EXISTS {TARGET} WITH (FORCE)", f"DROP DATABASE IF EXISTS {template} WITH (FORCE)")


def _template(name: str) -> str:
    return TEMPLATE + ("" if name == "ours" else "_baseline")


if __name__ == "__main__":
    main()
