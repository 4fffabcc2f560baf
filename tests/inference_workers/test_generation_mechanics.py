"""Batching by length, halving on out-of-memory, and the bounded model cache."""

import pytest
import torch

from inference_workers.backends.local import is_out_of_memory
from inference_workers.generation import ModelCache, length_sorted_batches, run_halving_on_oom


def test_batches_group_prompts_of_similar_length():
    items = ["a", "bbbbbbbb", "cc", "ddddddd", "e", "ffffff"]
    batches = list(length_sorted_batches(items, [len(x) for x in items], batch_size=2))
    assert batches == [["bbbbbbbb", "ddddddd"], ["ffffff", "cc"], ["a", "e"]]
    assert sorted(x for b in batches for x in b) == sorted(items)


def test_an_out_of_memory_batch_is_halved_until_it_fits():
    calls = []

    def generate(batch):
        calls.append(len(batch))
        if len(batch) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return [x * 10 for x in batch]

    halvings = []
    out = run_halving_on_oom(list(range(8)), generate, is_out_of_memory, halvings.append)
    assert out == [x * 10 for x in range(8)]
    assert calls == [8, 4, 2, 2, 4, 2, 2]
    assert halvings == [8, 4, 4]


def test_other_errors_and_a_batch_of_one_that_does_not_fit_still_fail():
    def fails(batch):
        raise ValueError("bad input")

    with pytest.raises(ValueError):
        run_halving_on_oom([1, 2, 3], fails, is_out_of_memory)

    def never_fits(batch):
        raise RuntimeError("CUDA error: out of memory")

    with pytest.raises(RuntimeError):
        run_halving_on_oom([1, 2], never_fits, is_out_of_memory)


def test_the_model_cache_keeps_the_most_recently_used_models():
    loads, evicted = [], []
    cache = ModelCache(2, on_evict=evicted.append)

    def loader(name):
        def load():
            loads.append(name)
            return f"model {name}"

        return load

    assert cache.get_or_load("a", loader("a")) == "model a"
    cache.get_or_load("b", loader("b"))
    cache.get_or_load("a", loader("a"))  # hit: a becomes most recent
    cache.get_or_load("c", loader("c"))  # evicts b
    assert loads == ["a", "b", "c"]
    assert evicted == ["model b"]
    assert "a" in cache and "c" in cache and "b" not in cache and len(cache) == 2


def test_each_decoding_step_is_reported_and_the_last_count_is_the_answers_tokens(tiny_llama_dir):
    from inference_workers.backends.local import WeightsSpec, generate_batch, load_model

    loaded = load_model(WeightsSpec(folder=tiny_llama_dir), device="cpu")
    steps = []
    outputs, seconds = generate_batch(
        loaded,
        ["One.", "Two, three.", "Four"],
        temperature=0,
        top_p=1,
        max_new_tokens=12,
        seed=0,
        on_step=lambda tokens, seconds: steps.append((tokens, seconds)),
    )
    assert len(steps) == max(o.completion_tokens for o in outputs)
    assert [t for t, _ in steps] == sorted({t for t, _ in steps}) and steps[0][0] == 3
    assert steps[-1][0] == sum(o.completion_tokens for o in outputs)
    assert 0 < steps[-1][1] <= seconds
