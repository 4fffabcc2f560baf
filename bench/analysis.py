"""Benchmark: the full leaderboard on 1,000,000 simulated votes over 50 models, against a baseline.

Default mode, the statistics alone:

Ours: ratings.analysis.leaderboard (Bradley-Terry raw ratings with a 100-round bootstrap, style-
controlled ratings with sandwich intervals) plus the win-fraction and predicted matrices.
Baseline, measured in the same run: the straightforward per-battle fit as FastChat does it: a
dense design matrix with one row per vote, logistic regression by L-BFGS, and a bootstrap that
resamples the votes and refits, for raw and for style-controlled ratings. The baseline's rounds
are measured on a few rounds and scaled linearly to 100 (each round is an independent refit).

    .venv/bin/python bench/analysis.py [--votes 1000000] [--models 50] [--baseline-rounds 2]

End to end (``--end-to-end texts`` or ``--end-to-end metadata``): a battle file of ``--votes``
battles (JSONL; answer texts in both conversations, or FastChat's ``conv_metadata`` counts and no
texts) is written to ``--file`` (default in /tmp, reused when it is there), then timed from the file
to the leaderboard: ours is what ``leaderboard --battles`` runs (``read_battle_arrays``: parsing and
style counting in worker processes; ``leaderboard``). The baseline is FastChat's published procedure
(fastchat/serve/monitor/elo_analysis.py) re-implemented without pandas in the same run: every record
parsed into memory, style counts from the texts on one core (our reference counter,
``style_features``), ``construct_style_matrices`` (battles duplicated, ties as one win each way, ratio
features plus one, standardised), the per-battle logistic fit for style control and its 100-round
bootstrap, and the raw ratings by ``fit_bt`` on the unique (pair, outcome) cells with a 100-round
multinomial bootstrap; bootstrap rounds are timed on ``--baseline-rounds`` and scaled to 100.
``--import`` also times ``manage.py import_battles`` of the file into the database of DATABASE_URL
(a fresh study), in a child process whose peak memory is read from the kernel.

    .venv/bin/python bench/analysis.py --end-to-end metadata [--votes 1000000] [--import]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")

import django  # noqa: E402

django.setup()

from ratings.analysis.payload import leaderboard, win_matrix  # noqa: E402
from ratings.analysis.votes import ModelInfo, VoteTable, file_votes  # noqa: E402
from stats.style_control import bootstrap_style_controlled, normalized_style_differences  # noqa: E402
from tests.stats.simulate import SimulatedVotes, simulate_votes  # noqa: E402


def per_battle_fit(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Logistic regression on one row per vote (ties as y = 0.5), L-BFGS with the analytic gradient."""

    def loss(w):
        eta = x @ w
        p = 1 / (1 + np.exp(-eta))
        nll = np.sum(np.logaddexp(0, eta) - y * eta) + 0.5e-6 * w @ w
        return nll, x.T @ (p - y) + 1e-6 * w

    return minimize(loss, np.zeros(x.shape[1]), jac=True, method="L-BFGS-B").x


def baseline_round(a, b, y, z, k, rng, style: bool) -> float:
    t0 = time.perf_counter()
    idx = rng.integers(0, len(y), len(y))
    x = np.zeros((len(y), k + (z.shape[1] if style else 0)))
    rows = np.arange(len(y))
    x[rows, a[idx]] = 1.0
    x[rows, b[idx]] = -1.0
    if style:
        x[:, k:] = z[idx]
    per_battle_fit(x, y[idx])
    return time.perf_counter() - t0


STYLE_KEYS = ("sum_assistant_{}_tokens", "header_count_{}", "list_count_{}", "bold_count_{}")


def _word_text(rng: np.random.Generator, n_words: int = 400_000) -> tuple[str, np.ndarray]:
    """A long run of words and the offset where each word starts, to slice answers from."""
    vocabulary = np.array(
        [
            "the",
            "of",
            "a",
            "model",
            "answer",
            "is",
            "to",
            "and",
            "in",
            "that",
            "it",
            "for",
            "with",
            "as",
            "on",
            "this",
            "we",
            "can",
            "be",
        ]
    )
    words = vocabulary[rng.integers(0, len(vocabulary), n_words)]
    offsets = np.concatenate([[0], np.cumsum([len(w) + 1 for w in words])])
    return " ".join(words) + " ", offsets


def _answer(text: str, offsets: np.ndarray, start: int, features: np.ndarray) -> str:
    """An answer with about features[0] words, and features[1:] headers, list items and bold spans."""
    n_words, headers, items, bold = (int(v) for v in features)
    body = text[offsets[start] : offsets[start + max(n_words, 1)]]
    return "## Heading\n\n" * headers + "- a list item\n" * items + body + " **important**" * bold


def write_battle_file(path: str, mode: str, n_votes: int, n_models: int) -> SimulatedVotes:
    """``n_votes`` simulated battles as JSONL, with answer texts or with conv_metadata only."""
    import orjson

    rng = np.random.default_rng(0)
    sim = simulate_votes(n_models, n_votes, rng, length_bias=2.0, tie_rate=0.1)
    text, offsets = _word_text(rng)
    starts = rng.integers(0, len(offsets) - 4000, (n_votes, 2))
    winner = np.where(sim.outcome == 1, "model_a", np.where(sim.outcome == 0, "model_b", "tie"))
    t0 = time.perf_counter()
    with open(path + ".part", "wb") as fh:
        for n in range(n_votes):
            fa, fb = sim.features_a[n], sim.features_b[n]
            record = {
                "question_id": f"{n:032x}",
                "model_a": f"model-{sim.model_a[n]}",
                "model_b": f"model-{sim.model_b[n]}",
                "winner": str(winner[n]),
                "judge": f"arena_user_{n % 50_000}",
                "turn": 1,
                "anony": True,
                "language": "English",
                "tstamp": 1_700_000_000 + n,
            }
            if mode == "texts":
                question = [{"role": "user", "content": f"Question number {n}: what should I do next?"}]
                record["conversation_a"] = [
                    *question,
                    {"role": "assistant", "content": _answer(text, offsets, starts[n, 0], fa)},
                ]
                record["conversation_b"] = [
                    *question,
                    {"role": "assistant", "content": _answer(text, offsets, starts[n, 1], fb)},
                ]
            else:
                meta = {}
                for side, f in (("a", fa), ("b", fb)):
                    meta[f"sum_assistant_{side}_tokens"] = int(f[0])
                    meta[f"header_count_{side}"] = {"h1": 0, "h2": int(f[1]), "h3": 0, "h4": 0, "h5": 0, "h6": 0}
                    meta[f"list_count_{side}"] = {"ordered": 0, "unordered": int(f[2])}
                    meta[f"bold_count_{side}"] = {"**": int(f[3]), "__": 0}
                record["conv_metadata"] = meta
            fh.write(orjson.dumps(record))
            fh.write(b"\n")
            if n % 100_000 == 0 and n:
                print(f"  wrote {n:,} battles ({time.perf_counter() - t0:.0f} s)", flush=True)
    os.replace(path + ".part", path)
    return sim


def fastchat_end_to_end(path: str, mode: str, rounds: int) -> tuple[float, dict]:
    """FastChat's procedure on the file: seconds (bootstrap scaled to 100 rounds) and the parts."""
    import orjson

    from inference_workers.style_features import style_features

    parts = {}
    t0 = time.perf_counter()
    with open(path, "rb") as fh:
        battles = [orjson.loads(line) for line in fh]
    parts["read"] = time.perf_counter() - t0
    if mode == "texts":
        t0 = time.perf_counter()
        for b in battles:  # clean_battle_data: conv_metadata counted from each conversation, one process
            meta = {}
            for side in "ab":
                text = "\n\n".join(t["content"] for t in b[f"conversation_{side}"] if t["role"] == "assistant")
                f = style_features(text)
                meta[f"sum_assistant_{side}_tokens"] = f.length_words
                meta[f"header_count_{side}"] = f.n_headers
                meta[f"list_count_{side}"] = f.n_list_items
                meta[f"bold_count_{side}"] = f.n_bold
            b["conv_metadata"] = meta
        parts["style counting"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    models = sorted({b["model_a"] for b in battles} | {b["model_b"] for b in battles})
    index = {m: i for i, m in enumerate(models)}
    k = len(models)
    a = np.array([index[b["model_a"]] for b in battles])
    bb = np.array([index[b["model_b"]] for b in battles])
    winner = np.array([b["winner"] for b in battles])

    def count(value):
        return value if isinstance(value, int) else sum(value.values())

    style = np.array(
        [[count(b["conv_metadata"][key.format(side)]) for side in "ab" for key in STYLE_KEYS] for b in battles], float
    )
    del battles
    # construct_style_matrices: battles twice; A's win is y = 1 twice, a tie one win each way.
    n = len(a)
    x = np.zeros((2 * n, k + 4))
    rows = np.arange(2 * n)
    x[rows, np.concatenate([a, a])] = np.log(10)
    x[rows, np.concatenate([bb, bb])] = -np.log(10)
    va, vb = style[:, :4].T, style[:, 4:].T  # features x battles, as FastChat's style_vector
    ratio = (va - vb) / (va + vb + 1)  # apply_ratio on all four, add_one
    ratio = np.concatenate([ratio, ratio], axis=1)
    x[:, k:] = ((ratio - ratio.mean(axis=1, keepdims=True)) / ratio.std(axis=1, keepdims=True)).T
    y = np.zeros(2 * n)
    y[:n][winner == "model_a"] = 1.0
    y[n:][winner == "model_a"] = 1.0
    y[:n][(winner == "tie") | (winner == "tie (bothbad)")] = 1.0
    parts["matrices"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    per_battle_fit(x, y)
    parts["style fit"] = time.perf_counter() - t0
    rng = np.random.default_rng(1)
    took = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        idx = rng.integers(0, n, n)
        tie = (winner == "tie") | (winner == "tie (bothbad)")
        pick = np.concatenate([idx[~tie[idx]], idx[~tie[idx]], idx[tie[idx]], idx[tie[idx]] + n])
        per_battle_fit(x[pick], y[pick])
        took.append(time.perf_counter() - t0)
    parts["style bootstrap (100 rounds, scaled)"] = 100 * float(np.mean(took))
    t0 = time.perf_counter()
    code = np.select([winner == "model_a", winner == "model_b"], [2, 0], 1)
    cells, counts = np.unique(np.stack([a, bb, code], axis=1), axis=0, return_counts=True)
    fit_bt(cells, counts, k)
    boot = rng.multinomial(n, counts / counts.sum(), size=rounds)
    one = time.perf_counter()
    for w in boot:
        fit_bt(cells, w.astype(float), k)
    parts["raw ratings"] = one - t0
    parts["raw bootstrap (100 rounds, scaled)"] = 100 * (time.perf_counter() - one) / rounds
    return sum(parts.values()), parts


def fit_bt(cells: np.ndarray, weights: np.ndarray, k: int) -> np.ndarray:
    """FastChat's fit_bt: L-BFGS on the unique (pair, outcome) cells, outcomes 1, 0.5, 0 weighted by count."""
    outcome = cells[:, 2] / 2.0
    alpha = np.log(10.0)

    def loss(r):
        logits = alpha * (r[cells[:, 0]] - r[cells[:, 1]])
        p = 1 / (1 + np.exp(-logits))
        nll = -np.sum((np.log(p) * outcome + np.log(1 - p) * (1 - outcome)) * weights)
        g = -alpha * (outcome - p) * weights
        grad = np.bincount(cells[:, 0], g, k) - np.bincount(cells[:, 1], g, k)
        return nll, grad

    return minimize(loss, np.zeros(k), jac=True, method="L-BFGS-B", options={"maxiter": 100, "gtol": 1e-6}).x


def end_to_end(args) -> None:
    path = args.file or os.path.join(tempfile.gettempdir(), f"stylegap-bench-{args.end_to_end}-{args.votes}.jsonl")
    if not os.path.exists(path):
        print(f"writing {args.votes:,} battles ({args.end_to_end}) to {path} ...", flush=True)
        write_battle_file(path, args.end_to_end, args.votes, args.models)
    size = os.path.getsize(path)
    print(f"file: {path}, {size / 1e6:,.0f} MB; load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}", flush=True)
    print("ours: read_battle_arrays + leaderboard (what leaderboard --battles runs) ...", flush=True)
    t0 = time.perf_counter()
    table = file_votes(path, workers=args.workers)
    read = time.perf_counter() - t0
    board = leaderboard(table)
    ours = time.perf_counter() - t0
    assert board["style"]["used"] and board["n_votes"] == args.votes
    print(
        f"ours: {ours:.1f} s end to end ({read:.1f} s reading and counting, {ours - read:.1f} s statistics); "
        f"style features: {table.style_sources}",
        flush=True,
    )
    print(
        f"baseline: FastChat's procedure ({args.baseline_rounds} bootstrap rounds timed, scaled to 100) ...", flush=True
    )
    baseline, parts = fastchat_end_to_end(path, args.end_to_end, args.baseline_rounds)
    for name, seconds in parts.items():
        print(f"  {name}: {seconds:.1f} s")
    print(f"baseline: {baseline:.1f} s end to end")
    print(f"speed-up: {baseline / ours:.1f}x ({baseline:.1f} s / {ours:.1f} s); load now {os.getloadavg()[0]:.2f}")
    if args.import_:
        slug = f"bench-import-{os.getpid()}"
        print(f"import_battles --study {slug} {path} ...", flush=True)
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            t0 = time.perf_counter()
            child = subprocess.Popen(  # noqa: S603 - this interpreter, our manage.py
                [sys.executable, "manage.py", "import_battles", "--study", slug, path],
                cwd=Path(__file__).resolve().parent.parent,
                stdout=out,
                stderr=err,
            )
            peak = 0.0
            while child.poll() is None:
                peak = max(peak, _peak_since_exec_mb(child.pid))
                time.sleep(0.1)
            took = time.perf_counter() - t0
            out.seek(0)
            err.seek(0)
            if child.returncode:
                raise SystemExit(err.read())
            stdout = out.read()
        print(stdout.strip())
        print(
            f"import: {took:.1f} s, {args.votes / took:,.0f} votes/s, peak memory {peak:,.0f} MB "
            f"(the child's VmHWM, read every 0.1 s); load now {os.getloadavg()[0]:.2f}"
        )


def _peak_since_exec_mb(pid: int) -> float:
    """The process's resident high-water mark (``VmHWM``) in MB, 0 once it is gone. Not ``wait4``'s
    ``ru_maxrss``: that also counts the pages the child shared with this process between fork and exec,
    and this process holds the whole battle file's arrays (it read 2,886 MB for an import whose own peak,
    under /usr/bin/time, is 773 MB)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--votes", type=int, default=1_000_000)
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--baseline-rounds", type=int, default=2)
    parser.add_argument(
        "--style-bootstrap-rounds",
        type=int,
        default=0,
        help="Also time the optional bootstrap of style-controlled ratings on this many rounds.",
    )
    parser.add_argument(
        "--end-to-end", choices=("texts", "metadata"), help="Time from a battle file to the leaderboard (see above)."
    )
    parser.add_argument("--file", help="The battle file for --end-to-end (written when missing).")
    parser.add_argument("--workers", type=int, default=None, help="Worker processes for reading (default: CPUs).")
    parser.add_argument("--import", dest="import_", action="store_true", help="Also time import_battles.")
    args = parser.parse_args()
    if args.end_to_end:
        end_to_end(args)
        return

    rng = np.random.default_rng(0)
    print(f"simulating {args.votes:,} votes over {args.models} models with style features ...", flush=True)
    sim = simulate_votes(args.models, args.votes, rng, length_bias=2.0, tie_rate=0.1)
    table = VoteTable(
        models=[ModelInfo(f"model-{i}", f"model-{i}") for i in range(args.models)],
        model_a=sim.model_a,
        model_b=sim.model_b,
        outcome=sim.outcome,
        style_a=sim.features_a,
        style_b=sim.features_b,
    )

    print("ours: leaderboard (raw + 100-round bootstrap, style-controlled + sandwich) and win matrices ...", flush=True)
    t0 = time.perf_counter()
    board = leaderboard(table)
    matrix = win_matrix(table, {row["model"]: row["rating"] for row in board["models"]})
    ours = time.perf_counter() - t0
    assert len(board["models"]) == args.models and len(matrix["observed"]) == args.models
    planted = [sim.true_rating[int(row["model"].split("-")[1])] for row in board["models"]]
    fitted = [row["style_controlled"]["rating"] for row in board["models"]]
    corr = np.corrcoef(planted, fitted)[0, 1]
    print(f"ours: {ours:.2f} s (style-controlled ratings vs planted: correlation {corr:.4f})")

    z = normalized_style_differences(sim.features_a, sim.features_b)
    if args.style_bootstrap_rounds:
        t0 = time.perf_counter()
        bootstrap_style_controlled(
            sim.model_a, sim.model_b, sim.outcome, z, args.models, rounds=args.style_bootstrap_rounds
        )
        took = time.perf_counter() - t0
        print(
            f"optional style-controlled bootstrap: {took:.1f} s for {args.style_bootstrap_rounds} rounds "
            f"({took / args.style_bootstrap_rounds:.2f} s a round)"
        )
    n = args.baseline_rounds
    raw_times, style_times = [], []
    for r in range(n):
        raw_times.append(baseline_round(sim.model_a, sim.model_b, sim.outcome, z, args.models, rng, style=False))
        print(f"baseline raw round {r + 1}/{n}: {raw_times[-1]:.2f} s", flush=True)
    for r in range(n):
        style_times.append(baseline_round(sim.model_a, sim.model_b, sim.outcome, z, args.models, rng, style=True))
        print(f"baseline style-controlled round {r + 1}/{n}: {style_times[-1]:.2f} s", flush=True)
    baseline = 100 * (np.mean(raw_times) + np.mean(style_times))
    print(
        f"baseline (per-battle L-BFGS, 100 bootstrap rounds each for raw and style-controlled, "
        f"scaled from {n} measured rounds each): {baseline:.1f} s"
    )
    print(f"speed-up: {baseline / ours:.0f}x ({baseline:.1f} s / {ours:.2f} s)")


if __name__ == "__main__":
    main()
