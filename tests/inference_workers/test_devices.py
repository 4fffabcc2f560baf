"""Batch sizes from a device's free memory and a model's key/value bytes per token, read through the one
capability interface (devices.py), with pretended devices; this machine has no GPU."""

import pytest
from transformers import LlamaConfig

from inference_workers import devices
from inference_workers.backends.local import LoadedModel, planned_batch_size

GiB = 1 << 30

# SmolLM2-135M's shape (its GGUF's config) and SmolLM2-1.7B's.
SMOLLM2_135M = LlamaConfig(
    vocab_size=49152,
    hidden_size=576,
    intermediate_size=1536,
    num_hidden_layers=30,
    num_attention_heads=9,
    num_key_value_heads=3,
)
SMOLLM2_1_7B = LlamaConfig(
    vocab_size=49152,
    hidden_size=2048,
    intermediate_size=8192,
    num_hidden_layers=24,
    num_attention_heads=32,
    num_key_value_heads=32,
)


def gpu(free_bytes: int, **overrides) -> devices.Capability:
    values = {
        "kind": "cuda",
        "free_bytes": free_bytes,
        "total_bytes": 80 * GiB,
        "compute_capability": (9, 0),
        "compile_refusal": "",
        "compile": lambda step: step,
    }
    return devices.Capability(**{**values, **overrides})


def test_key_value_bytes_per_token_follow_the_model_shape():
    # 2 (key, value) x 30 layers x 3 KV heads x 64 dims x 2 bytes (bf16)
    assert devices.ModelShape.of(SMOLLM2_135M).kv_bytes_per_token(2) == 2 * 30 * 3 * 64 * 2 == 23_040
    # 2 x 24 x 32 x 64 x 2
    assert devices.ModelShape.of(SMOLLM2_1_7B).kv_bytes_per_token(2) == 196_608


def test_the_batch_size_is_the_largest_power_of_two_the_free_memory_holds():
    shape = devices.ModelShape.of(SMOLLM2_135M)
    # 64-token prompts, 128 new tokens: cache length 192; a row holds 23,040 x 192 bytes of keys and values and
    # 49,152 x 4 x 2 of logits = 4,816,896 bytes; a prefill chunk of 16,384 tokens needs
    # 16,384 x ((4 x 576 + 3 x 1,536) x 2 + 9 x 64 x 4) = 264,241,152 bytes.
    row, workspace = 4_816_896, 264_241_152
    free = 2 * GiB
    fits = int((free * devices.MEMORY_FRACTION - workspace) // row)
    assert fits == 324
    assert devices.cuda_batch_size(gpu(free), shape, 2, 64, 128, max_batch=1024) == 256
    # An H200's free memory holds far more than the cap: the cap decides.
    assert devices.cuda_batch_size(gpu(130 * GiB), shape, 2, 64, 128, max_batch=1024) == 1024
    # Almost nothing free: one row, and out-of-memory halving stays the net.
    assert devices.cuda_batch_size(gpu(100 << 20), shape, 2, 64, 128, max_batch=1024) == 1


def test_a_larger_model_or_longer_answers_get_a_smaller_batch():
    small, large = devices.ModelShape.of(SMOLLM2_135M), devices.ModelShape.of(SMOLLM2_1_7B)
    cap = gpu(40 * GiB)
    assert devices.cuda_batch_size(cap, large, 2, 64, 128, 4096) < devices.cuda_batch_size(cap, small, 2, 64, 128, 4096)
    assert devices.cuda_batch_size(cap, small, 2, 64, 1024, 4096) < devices.cuda_batch_size(
        cap, small, 2, 64, 128, 4096
    )
    # 1.7B at 40 GiB, 192 columns: 196,608 x 192 + 393,216 bytes a row
    row = 196_608 * 192 + 393_216
    workspace = 16_384 * ((4 * 2048 + 3 * 8192) * 2 + 32 * 64 * 4)
    expected = devices.power_of_two_at_most(int((40 * GiB * devices.MEMORY_FRACTION - workspace) // row))
    assert devices.cuda_batch_size(cap, large, 2, 64, 128, 4096) == expected == 512


def test_buckets():
    assert [devices.batch_bucket(n) for n in (1, 2, 3, 40, 64, 65, 1000)] == [1, 2, 4, 64, 64, 128, 1024]
    assert [devices.length_bucket(p, 128) for p in (1, 64, 65)] == [192, 192, 256]
    assert devices.prefill_rows(64, 1024) == 256 and devices.prefill_rows(100_000, 8) == 1


@pytest.mark.parametrize(
    ("environment", "capability", "reason"),
    [
        ({"STYLEGAP_COMPILED_DECODING": "0"}, (9, 0), "STYLEGAP_COMPILED_DECODING=0"),
        ({}, (6, 1), "below triton's"),
    ],
)
def test_why_a_gpu_would_not_compile(monkeypatch, environment, capability, reason):
    import importlib.util

    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: object() if name == "triton" else real_find_spec(name)
    )
    assert reason in devices.compile_refusal_for_cuda(capability)


def test_this_machine_is_a_cpu_that_does_not_compile_and_pretending_ends_with_the_block():
    real = devices.capability("cpu")
    assert real.kind == "cpu" and not real.compiles
    with devices.pretending(gpu(8 * GiB)) as fake:
        assert devices.capability("cuda:0") is fake and fake.compiles
    assert devices.capability("cpu") == real


def test_the_backend_sizes_cuda_batches_from_memory_and_keeps_the_setting_on_the_cpu(settings):
    import torch
    from transformers import LlamaForCausalLM

    tiny = LlamaConfig(
        vocab_size=1000, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4
    )
    loaded = LoadedModel(model=LlamaForCausalLM(tiny).to(torch.bfloat16), tokenizer=None, device="cpu")
    settings.STYLEGAP_GENERATION_BATCH_SIZE = 32
    settings.STYLEGAP_CUDA_MAX_BATCH_SIZE = 4096
    assert planned_batch_size(loaded, 64, 128) == 32
    cap = gpu(1 * GiB)
    with devices.pretending(cap):
        size = planned_batch_size(loaded, 64, 128)
    shape = devices.ModelShape.of(tiny)
    assert size == devices.cuda_batch_size(cap, shape, 2, 64, 128, 4096) == 4096
    with devices.pretending(gpu(64 << 20)):
        assert planned_batch_size(loaded, 64, 128) == devices.cuda_batch_size(gpu(64 << 20), shape, 2, 64, 128, 4096)
