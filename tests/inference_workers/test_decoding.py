"""The local backend's decoder: finished rows leave the batch, greedy answers stay those of ``model.generate``,
and the CUDA path (static cache, compiled step cached per bucket, eager fallback) runs here on a pretended
device (devices.pretending), the CPU standing in for the GPU. Nothing here measures speed.
"""

import logging

import pytest
import torch

from inference_workers import decoding, devices
from inference_workers.backends.local import (
    SMOLLM2_GGUF,
    WeightsSpec,
    generate_batch,
    hf_generate,
    load_model,
    smollm2_folder,
    stop_token_ids,
)

GREEDY = {"temperature": 0, "top_p": 1, "seed": 0}


def fake_gpu(compile=lambda step: step) -> devices.Capability:
    """A CUDA device as devices.py would describe an H100's, whose 'compile' is the given function."""
    return devices.Capability(
        kind="cuda",
        free_bytes=60 << 30,
        total_bytes=80 << 30,
        compute_capability=(9, 0),
        compile_refusal="",
        compile=compile,
    )


class CountingCompile:
    """Stands in for torch.compile: counts what it was asked to compile and returns the step unchanged."""

    def __init__(self):
        self.compiled = 0

    def __call__(self, step):
        self.compiled += 1
        return step


def rows_per_forward(model) -> tuple[list[int], object]:
    rows: list[int] = []
    hook = model.register_forward_pre_hook(lambda m, a, kw: rows.append(kw["input_ids"].shape[0]), with_kwargs=True)
    return rows, hook


def generate_answers(loaded, prompts, tokens):
    return generate_batch(loaded, prompts, **GREEDY, max_new_tokens=tokens)[0]


def model_generate_answers(loaded, prompts, tokens):
    """What ``model.generate`` answers for the same padded batch, cut the way generate_batch cuts."""
    enc = loaded.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    stops = stop_token_ids(loaded)
    rows = hf_generate(loaded, enc, decoding.Sampling(0, 1, tokens, 0), stops, None, 0.0)
    return [row[: next((i + 1 for i, t in enumerate(row) if t in stops), len(row))] for row in rows]


def token_ids(loaded, outputs) -> list[list[int]]:
    return [loaded.tokenizer(o.text, add_special_tokens=False)["input_ids"] for o in outputs]


@pytest.fixture(scope="module")
def smollm2():
    return load_model(WeightsSpec(folder=smollm2_folder(), gguf_file=SMOLLM2_GGUF), device="cpu")


@pytest.fixture
def tiny(tiny_llama_dir):
    """The tiny random Llama with extra stop tokens (its generation config's), so rows end at different steps:
    the tokens its first 28 rows say second. Without them it never stops before the cap."""
    loaded = load_model(WeightsSpec(folder=tiny_llama_dir), device="cpu")
    plain = model_generate_answers(loaded, PROMPTS, 3)
    loaded.model.generation_config.eos_token_id = [loaded.tokenizer.eos_token_id, *{row[1] for row in plain[:28]}]
    return loaded


PROMPTS = [f"Question {i}: " + "word " * (i % 7) for i in range(40)]


def test_finished_rows_leave_the_batch_and_greedy_answers_equal_model_generate_on_smollm2(smollm2):
    from inference_workers.backends.local import render_prompts

    prompts = render_prompts(
        smollm2.tokenizer,
        ["Reply with one word: yes or no?", "Write a long story about a lighthouse.", "Say hi.", "Name a colour."],
    )
    expected = model_generate_answers(smollm2, prompts, 24)
    rows, hook = rows_per_forward(smollm2.model)
    try:
        outputs = generate_answers(smollm2, prompts, 24)
    finally:
        hook.remove()

    assert [o.completion_tokens for o in outputs] == [len(e) for e in expected]
    assert [o.text for o in outputs] == [
        smollm2.tokenizer.decode(e, skip_special_tokens=True).strip() for e in expected
    ]
    lengths = sorted(len(e) for e in expected)
    assert lengths[0] < lengths[-1] == 24, "some answers end before the cap, at least one reaches it"
    # One prefill of the 4 rows, then one forward per new token after the first, each with the rows still running.
    assert rows[0] == 4 and len(rows) == 24
    assert rows == [sum(n > step for n in lengths) for step in range(24)]
    assert rows == sorted(rows, reverse=True) and rows[-1] < 4


def test_on_the_cpu_the_eager_path_runs_and_nothing_is_compiled(tiny):
    counting = CountingCompile()
    cpu = devices.Capability(kind="cpu", compile=counting)
    with devices.pretending(cpu):
        outputs = generate_answers(tiny, PROMPTS, 12)
    assert counting.compiled == 0 and not tiny.decoders
    assert [o.text for o in outputs] == [
        tiny.tokenizer.decode(e, skip_special_tokens=True).strip() for e in model_generate_answers(tiny, PROMPTS, 12)
    ]


def test_the_compiled_path_answers_as_the_eager_one_shrinks_its_bucket_and_compiles_each_bucket_once(tiny):
    eager = generate_answers(tiny, PROMPTS, 12)
    counting = CountingCompile()
    rows, hook = rows_per_forward(tiny.model)
    try:
        with devices.pretending(fake_gpu(counting)):
            first = generate_answers(tiny, PROMPTS, 12)
            compiled_after_first = counting.compiled
            second = generate_answers(tiny, PROMPTS, 12)
    finally:
        hook.remove()

    assert [o.text for o in first] == [o.text for o in eager] == [o.text for o in second]
    assert [o.completion_tokens for o in first] == [o.completion_tokens for o in eager]
    # 40 prompts: a bucket of 64 rows, cache length 64 (the longest prompt plus 12, rounded up); once at most
    # 16 rows still run they move to a bucket of 16, which compiles once too. The second job compiles nothing.
    assert list(tiny.decoders) == [(64, 64), (16, 64)]
    assert compiled_after_first == 2 and counting.compiled == 2
    per_job = rows[: len(rows) // 2]
    assert per_job[0] == 40, "the prefill runs the real rows only"
    assert set(per_job[1:]) == {64, 16} and per_job[1:] == sorted(per_job[1:], reverse=True)


def test_a_step_that_fails_to_compile_falls_back_to_eager_with_the_reason_logged(tiny, caplog):
    def no_compiler(step):
        def fails(*args):
            raise RuntimeError("triton is missing")

        return fails

    eager = generate_answers(tiny, PROMPTS[:6], 8)
    with caplog.at_level(logging.WARNING), devices.pretending(fake_gpu(no_compiler)):
        first = generate_answers(tiny, PROMPTS[:6], 8)
        second = generate_answers(tiny, PROMPTS[:6], 8)

    assert [o.text for o in first] == [o.text for o in eager] == [o.text for o in second]
    assert "triton is missing" in tiny.compile_refusal and not tiny.decoders
    logged = [r.getMessage() for r in caplog.records if "decoding eagerly" in r.getMessage()]
    assert len(logged) == 1 and "triton is missing" in logged[0]


def test_the_static_step_compiles_as_one_graph(tiny):
    """torch.compile with fullgraph=True traces the decode step without a graph break (the CPU's eager
    backend: the tracing the GPU's CUDA-graph compile starts from, without generating GPU code)."""
    import torch._dynamo

    torch._dynamo.reset()
    graphs = CountingCompile()

    def trace(step):
        graphs(step)
        return torch.compile(step, backend="eager", fullgraph=True, dynamic=False)

    eager = generate_answers(tiny, PROMPTS[:3], 6)
    with devices.pretending(fake_gpu(trace)):
        traced = generate_answers(tiny, PROMPTS[:3], 6)
    assert not tiny.compile_refusal, tiny.compile_refusal
    assert [o.text for o in traced] == [o.text for o in eager] and graphs.compiled == 1


def test_a_model_whose_generation_config_asks_for_a_repetition_penalty_is_decoded_by_model_generate(tiny, caplog):
    tiny.model.generation_config.repetition_penalty = 1.3
    rows, hook = rows_per_forward(tiny.model)
    try:
        with caplog.at_level(logging.WARNING), devices.pretending(fake_gpu(CountingCompile())):
            outputs = generate_answers(tiny, PROMPTS[:4], 6)
    finally:
        hook.remove()
    assert decoding.unsupported_reason(tiny.model) == "its generation config sets repetition_penalty=1.3"
    assert any("repetition_penalty" in r.getMessage() for r in caplog.records)
    assert not tiny.decoders and len(outputs) == 4


def test_sampling_is_reproducible_for_a_seed_and_differs_across_seeds(tiny):
    def sample(seed):
        return [
            o.text
            for o in generate_batch(tiny, PROMPTS[:8], temperature=1.0, top_p=0.9, max_new_tokens=8, seed=seed)[0]
        ]

    assert sample(1) == sample(1)
    assert sample(1) != sample(2)


def test_the_cache_keeps_only_the_rows_still_running():
    cache = decoding.RowCache(rows=3, length=4, device="cpu")
    keys = torch.arange(3.0).view(3, 1, 1, 1).expand(3, 1, 2, 2).contiguous()
    cache.update(keys, keys + 10, 0)
    cache.position = 2
    cache.keep_rows(torch.tensor([2, 0]))
    k, v = cache.update(torch.full((2, 1, 1, 2), 7.0), torch.full((2, 1, 1, 2), 8.0), 0)
    assert k.shape == (2, 1, 3, 2)
    assert k[:, 0, 0, 0].tolist() == [2.0, 0.0] and v[:, 0, 1, 0].tolist() == [12.0, 10.0]
    assert k[:, 0, 2, 0].tolist() == [7.0, 7.0]


def test_an_architecture_this_decoder_cannot_drive_falls_back_to_model_generate_with_the_reason_logged(
    tiny, caplog, monkeypatch
):
    """A model whose attention calls its cache in some other way fails on its first batch: that batch and the
    following ones are decoded by model.generate, and why is logged once."""
    expected = model_generate_answers(tiny, PROMPTS[:4], 6)

    def other_cache_protocol(self, *args, **kwargs):
        raise TypeError("update() got an unexpected keyword argument 'sliding_window'")

    monkeypatch.setattr(decoding.RowCache, "update", other_cache_protocol)
    with caplog.at_level(logging.WARNING):
        first = generate_answers(tiny, PROMPTS[:4], 6)
        second = generate_answers(tiny, PROMPTS[:4], 6)

    decoded = [tiny.tokenizer.decode(e, skip_special_tokens=True).strip() for e in expected]
    assert [o.text for o in first] == decoded == [o.text for o in second]
    assert "sliding_window" in tiny.decoder_refusal
    logged = [r.getMessage() for r in caplog.records if "model.generate" in r.getMessage()]
    assert len(logged) == 1 and "sliding_window" in logged[0]


def test_a_cancel_raised_by_the_step_listener_is_not_taken_for_a_decoder_failure(tiny):
    class Cancelled(Exception):
        pass

    def cancel(tokens, seconds):
        raise Cancelled

    with pytest.raises(Cancelled):
        generate_batch(tiny, PROMPTS[:4], **GREEDY, max_new_tokens=6, on_step=cancel)
    assert not tiny.decoder_refusal


def test_cached_decoders_are_let_go_when_the_free_memory_cannot_hold_a_new_bucket(tiny):
    roomy, tight = (
        fake_gpu(CountingCompile()),
        devices.Capability(kind="cuda", free_bytes=0, compile_refusal="", compile=lambda step: step),
    )
    with devices.pretending(roomy):
        generate_answers(tiny, PROMPTS, 12)
    assert list(tiny.decoders) == [(64, 64), (16, 64)]
    with devices.pretending(tight):
        generate_answers(tiny, PROMPTS[:3], 12)  # a bucket of 4 rows: the others make room for it
    assert list(tiny.decoders) == [(4, 64)]
