"""Benchmark: HumanEval checks in the bubblewrap sandbox, one after another, as a HumanEval run makes them.

Each side checks the canonical solutions of the first N HumanEval problems with ``run_python`` (the
programs a run builds, ``humaneval.program_for``), in a fresh process, and reports checks per second
and how many passed. Ours is the working tree's ``inference_workers/substance/sandbox.py``; the
baseline is the same file at ``--baseline-rev`` (by default the commit before the sandbox reaped its
own orphaned bwrap process), loaded in place of it in the same run. The two sides alternate.

``--pid1`` runs each side as a worker in a container without an init: the checking process is the one
child of a PID 1 (of a PID namespace of its own, ``unshare``) that reaps nothing else, as Celery's main
process reaps only its pool. Needs root.

    .venv/bin/python bench/sandbox.py [--checks 40] [--rounds 2] [--pid1] [--baseline-rev REV]
"""

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SANDBOX = "inference_workers/substance/sandbox.py"
BEFORE_REAPING = "186e8d5"  # the sandbox before it reaped its own orphans


def child(module_path: str, checks: int, pid1: bool) -> None:
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    import django

    django.setup()
    spec = importlib.util.spec_from_file_location("sandbox_under_test", module_path)
    sandbox = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = sandbox  # its dataclasses look their module up
    spec.loader.exec_module(sandbox)
    from inference_workers.substance import humaneval

    if pid1:  # PID 1 reaps only the child it started, which makes the checks
        pool = os.fork()
        if pool:
            sys.exit(os.waitstatus_to_exitcode(os.waitpid(pool, 0)[1]))
    statuses: dict[str, int] = {}
    started = time.perf_counter()
    for problem in humaneval.problems()[:checks]:
        try:
            status = sandbox.run_python(humaneval.program_for(problem, problem.canonical_solution)).status
        except sandbox.SandboxUnavailable:
            status = "sandbox unavailable"
        statuses[status] = statuses.get(status, 0) + 1
        done = sum(statuses.values())
        print(f"  {done}/{checks} checked, {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "statuses": statuses}), flush=True)
    if pid1:
        os._exit(0)


def run_side(module_path: Path, checks: int, pid1: bool) -> dict:
    command = [sys.executable, __file__, "--child", str(module_path), "--checks", str(checks)]
    if pid1:
        command = [shutil.which("unshare"), "--pid", "--fork", "--mount-proc", *command, "--pid1"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(command, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True, check=True)  # noqa: S603
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checks", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--pid1", action="store_true", help="check as the one child of a PID 1 that reaps nothing else")
    parser.add_argument("--baseline-rev", default=BEFORE_REAPING)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.checks, args.pid1)
        return
    if args.pid1 and (os.geteuid() != 0 or not shutil.which("unshare")):
        sys.exit("--pid1 needs root and unshare(1)")
    with tempfile.TemporaryDirectory() as tmp:
        baseline = Path(tmp) / "sandbox_baseline.py"
        source = subprocess.check_output(["git", "show", f"{args.baseline_rev}:{SANDBOX}"], cwd=REPO)  # noqa: S603,S607
        baseline.write_bytes(source)
        sides = {"ours": REPO / SANDBOX, f"baseline {args.baseline_rev}": baseline}
        topology = "the one child of a PID 1 that reaps nothing else" if args.pid1 else "a plain process"
        print(f"{args.checks} HumanEval canonical solutions checked in turn, in {topology}; {os.uname().nodename}")
        results: dict[str, list[dict]] = {name: [] for name in sides}
        for round_ in range(1, args.rounds + 1):
            for name, path in sides.items():
                print(f"round {round_}, {name}:", file=sys.stderr, flush=True)
                result = run_side(path, args.checks, args.pid1)
                results[name].append(result)
                seconds, rate = result["seconds"], args.checks / result["seconds"]
                print(f"round {round_}  {name:<18} {seconds:7.1f} s  {rate:6.2f} checks/s  {result['statuses']}")
    best = {name: min(r["seconds"] for r in runs) for name, runs in results.items()}
    ours, base = best["ours"], best[f"baseline {args.baseline_rev}"]
    print(f"best of {args.rounds}: ours {ours:.1f} s, baseline {base:.1f} s: {base / ours:.1f}x")


if __name__ == "__main__":
    main()
