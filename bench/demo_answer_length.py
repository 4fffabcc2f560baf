"""Measure how long SmolLM2-135M-Instruct's answers to the Vicuna-80 questions are, to choose the demo's cap.

On a CPU the live study's generation costs about (answers x longest answer in the batch) decoding steps:
a batch decodes until its longest row stops. So the cap sets the first run's wait, and an answer that
reaches it is cut mid-sentence. This script generates all 80 answers the way the demo does (the local
backend's ``generate_batch``, temperature 0.7, top-p 0.9, seed 0, the given system prompt) with a
generous cap, and reports how many tokens each answer needed to end by itself, and what share of the
answers a smaller cap would cut.

    .venv/bin/python bench/demo_answer_length.py [--cap 192] [--system-prompt TEXT] [--batch-size 40]
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
os.environ.setdefault("STYLEGAP_VAR_DIR", tempfile.mkdtemp(prefix="stylegap-bench-"))

import django  # noqa: E402

django.setup()

import torch  # noqa: E402

from inference_workers.backends.local import (  # noqa: E402
    SMOLLM2_GGUF,
    WeightsSpec,
    generate_batch,
    load_model,
    render_prompt,
    smollm2_folder,
)
from ratings.demo.studies import DEMO_SYSTEM_PROMPT, VICUNA80_DIR, read_jsonl  # noqa: E402

SENTENCE_ENDS = (".", "!", "?", ":", '."', '!"', '?"', ".)", "```")


def ends_a_sentence(text: str) -> bool:
    return text.rstrip().endswith(SENTENCE_ENDS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cap", type=int, default=192, help="max_new_tokens for the measurement")
    parser.add_argument("--system-prompt", default=DEMO_SYSTEM_PROMPT)
    parser.add_argument("--batch-size", type=int, default=40)
    parser.add_argument("--json", type=Path, help="write every answer's figures here")
    args = parser.parse_args()

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; load average {os.getloadavg()}")
    t0 = time.perf_counter()
    loaded = load_model(WeightsSpec(folder=smollm2_folder(), gguf_file=SMOLLM2_GGUF), device="cpu")
    print(f"model loaded in {time.perf_counter() - t0:.1f} s")
    questions = [r["text"] for r in read_jsonl(VICUNA80_DIR / "vicuna_questions.jsonl")]
    rendered = [render_prompt(loaded.tokenizer, q, args.system_prompt) for q in questions]
    rows = []
    started = time.perf_counter()
    for i in range(0, len(rendered), args.batch_size):
        chunk = rendered[i : i + args.batch_size]
        outputs, seconds = generate_batch(loaded, chunk, temperature=0.7, top_p=0.9, max_new_tokens=args.cap, seed=0)
        print(f"batch {i // args.batch_size + 1}: {len(chunk)} answers in {seconds:.1f} s", flush=True)
        for o in outputs:
            capped = o.completion_tokens >= args.cap
            rows.append({"tokens": o.completion_tokens, "capped": capped, "sentence_end": ends_a_sentence(o.text)})
    wall = time.perf_counter() - started
    natural = sorted(r["tokens"] for r in rows if not r["capped"])
    print(f"system prompt: {args.system_prompt!r}; cap {args.cap}; {len(rows)} answers in {wall:.0f} s")
    print(f"ended by themselves: {len(natural)}/{len(rows)}; reached the cap: {len(rows) - len(natural)}")
    if natural:
        q = statistics.quantiles(natural, n=20, method="inclusive") if len(natural) > 1 else [natural[0]] * 19
        print(
            f"tokens of the answers that ended: median {statistics.median(natural):.0f}, "
            f"p75 {q[14]:.0f}, p90 {q[17]:.0f}, p95 {q[18]:.0f}, max {natural[-1]}"
        )
    for cap in (48, 64, 80, 96, 112, 128, 160, 192, 256):
        if cap > args.cap:
            break
        cut = sum(1 for r in rows if r["capped"] or r["tokens"] > cap)
        print(f"  a cap of {cap:3d} tokens would cut {cut:2d}/{len(rows)} answers ({cut / len(rows):.0%})")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
