"""Benchmark: loading SmolLM2-135M-Instruct's GGUF file in a fresh worker process, ours against transformers.

Ours: ``inference_workers.backends.local.load_model`` as a worker calls it, which reads the file's
conversion to safetensors (``gguf_cache.py``; the conversion is made once, before the timed rounds,
into a throwaway folder). Baseline, in the same run: transformers' own GGUF load
(``AutoTokenizer`` and ``AutoModelForCausalLM.from_pretrained(..., gguf_file=...)``), which is what
every load did before. Each load runs in a fresh interpreter (as a new worker process would), timed
from after the imports of torch and transformers to a model and tokenizer ready on the CPU; the two
alternate (ABAB...), so a change in the machine's load falls on both. Both must produce the same
greedy answer to one question.

    .venv/bin/python bench/model_load.py [--rounds 3]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

QUESTION = "What is the capital of Australia?"


def child(mode: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    import django

    django.setup()
    import torch
    import transformers  # noqa: F401 - imported before the clock starts, as a worker has it imported

    from inference_workers.backends import gguf_cache
    from inference_workers.backends.local import (
        SMOLLM2_GGUF,
        LoadedModel,
        WeightsSpec,
        generate_batch,
        load_model,
        render_prompts,
        smollm2_folder,
    )

    started = time.perf_counter()
    if mode == "ours":
        loaded = load_model(WeightsSpec(folder=smollm2_folder(), gguf_file=SMOLLM2_GGUF), device="cpu")
    else:
        model, tokenizer = gguf_cache.load_from_gguf(smollm2_folder(), SMOLLM2_GGUF, torch.float32)
        model.eval()
        tokenizer.padding_side = "left"
        loaded = LoadedModel(model=model, tokenizer=tokenizer, device="cpu")
    took = time.perf_counter() - started
    (answer,), _ = generate_batch(
        loaded, render_prompts(loaded.tokenizer, [QUESTION]), temperature=0, top_p=1, max_new_tokens=16, seed=0
    )
    print(json.dumps({"seconds": took, "answer": answer.text}))


def run(mode: str, env: dict) -> dict:
    out = subprocess.run(  # noqa: S603 - this interpreter and this script
        [sys.executable, __file__, "--child", mode], env=env, capture_output=True, text=True, check=True, cwd=REPO
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", choices=["ours", "transformers"])
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return

    with tempfile.TemporaryDirectory(prefix="sg-bench-converted-") as converted:
        env = {**os.environ, "STYLEGAP_CONVERTED_DIR": converted, "PYTHONUNBUFFERED": "1"}
        print(f"load: {os.getloadavg()[0]:.2f}; conversions in {converted}", flush=True)
        first = run("ours", env)
        print(f"first load (converts): {first['seconds']:.1f} s", flush=True)
        times: dict[str, list[float]] = {"ours": [], "transformers": []}
        answers = {first["answer"]}
        for i in range(args.rounds):
            for mode in ("ours", "transformers"):
                result = run(mode, env)
                times[mode].append(result["seconds"])
                answers.add(result["answer"])
                print(f"round {i + 1} {mode:>12}: {result['seconds']:.2f} s", flush=True)
    if len(answers) != 1:
        raise SystemExit(f"the loads answered differently: {answers}")
    ours, baseline = statistics.median(times["ours"]), statistics.median(times["transformers"])
    print(f"answer (all loads): {answers.pop()!r}")
    print(f"median: ours {ours:.2f} s, transformers' GGUF load {baseline:.2f} s: {baseline / ours:.1f}x")
    print(f"load now: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
