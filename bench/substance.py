"""Benchmark: TruthfulQA MC1 scoring with the primer's keys and values cached, against scoring each context whole.

Ours: likelihood.choice_logprobs_after_prefix (the six-example primer run once, each question's
rest and choices in one batch over a copy of its cache). Baseline, measured in the same run on
the same items: likelihood.choice_logprobs (primer + question + each choice, one padded batch).
Both give the same scores (the largest difference is printed). Model: SmolLM2-135M-Instruct (GGUF).

    .venv/bin/python bench/substance.py [--items 20]
"""

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")

import django  # noqa: E402

django.setup()

from inference_workers.backends.local import SMOLLM2_GGUF, WeightsSpec, load_model, smollm2_folder  # noqa: E402
from inference_workers.substance import datasets, likelihood, prompts  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20)
    args = parser.parse_args()
    loaded = load_model(WeightsSpec(folder=smollm2_folder(), gguf_file=SMOLLM2_GGUF), "cpu")
    items = datasets.seeded_subset(datasets.truthfulqa_mc1(), args.items, 0)
    contexts = [prompts.truthfulqa_mc_context(q.question) for q in items]

    started = time.perf_counter()
    primer = likelihood.PrefixCache(loaded.model, loaded.tokenizer, prompts.TRUTHFULQA_PRIMER)
    cached = []
    for i, (q, context) in enumerate(zip(items, contexts, strict=True), 1):
        cached.append(
            likelihood.choice_logprobs_after_prefix(loaded.model, loaded.tokenizer, primer, context, q.choices)
        )
        print(f"\rcached {i}/{len(items)}", end="", file=sys.stderr)
    ours = time.perf_counter() - started

    started = time.perf_counter()
    whole = []
    for i, (q, context) in enumerate(zip(items, contexts, strict=True), 1):
        whole.append(likelihood.choice_logprobs(loaded.model, loaded.tokenizer, context, q.choices))
        print(f"\rwhole {i}/{len(items)} ", end="", file=sys.stderr)
    baseline = time.perf_counter() - started
    print(file=sys.stderr)

    diff = max(abs(a - b) for xs, ys in zip(cached, whole, strict=True) for a, b in zip(xs, ys, strict=True))
    same = sum(likelihood.mc1_prediction(a) == likelihood.mc1_prediction(b) for a, b in zip(cached, whole, strict=True))
    print(f"{len(items)} MC1 items, {sum(len(q.choices) for q in items)} choices")
    print(f"ours (primer cached): {ours:.1f} s, {ours / len(items):.2f} s an item")
    print(f"baseline (whole context): {baseline:.1f} s, {baseline / len(items):.2f} s an item")
    print(f"speed-up: {baseline / ours:.2f}x; largest score difference {diff:.2e}; same choice on {same}/{len(items)}")


if __name__ == "__main__":
    main()
