"""MMLU: the data, the standard 5-shot prompt, letter scoring (a scorer double, then a tiny real model),
and SmolLM2 on a seeded 20-question subset through the real worker."""

import copy
import json
from types import SimpleNamespace

import pytest
import torch
from django.urls import reverse
from transformers import AutoModelForCausalLM, AutoTokenizer

from inference_workers.models import Benchmark, BenchmarkItem, BenchmarkRun, JobStatus
from inference_workers.substance import datasets, mmlu, runner
from inference_workers.substance.actions import BenchmarkRequestRefused, check_runnable, do_start_benchmark_run
from inference_workers.substance.likelihood import PrefixCache, extends_prefix, next_token_logprobs_after_prefix
from stats.intervals import wilson_interval
from tests.inference_workers.conftest import build_tiny_llama
from tests.substance.conftest import wait_until_finished


def test_the_test_set_is_whole_and_parsed_as_strings():
    items = mmlu.test_items()
    assert len(items) == 14_042
    assert len({i.subject for i in items}) == 57
    letters = [mmlu.LETTERS[i.correct_index] for i in items]
    assert {letter: letters.count(letter) for letter in "ABCD"} == {"A": 3222, "B": 3462, "C": 3582, "D": 3776}
    # Twelve options are the literal text "None" (ten in test): kept as text, never a missing value.
    assert sum(choice == "None" for i in items for choice in i.choices) == 10
    assert {mmlu.MMLU_CATEGORIES[s] for s in {i.subject for i in items}} == {
        "STEM",
        "Humanities",
        "Social sciences",
        "Other",
    }
    assert sum(1 for i in items if i.category == "STEM") == 3018


def test_the_prompt_is_the_standard_five_shot_one():
    item = next(i for i in mmlu.test_items() if i.subject == "abstract_algebra")
    text = mmlu.prompt(item)
    assert text.startswith("The following are multiple choice questions (with answers) about abstract algebra.\n\n")
    dev = mmlu.dev_items("abstract_algebra")
    assert len(dev) == 5
    first = dev[0]
    options = "".join(f"\n{letter}. {choice}" for letter, choice in zip("ABCD", first.choices, strict=True))
    block = f"{first.question}{options}\nAnswer: {mmlu.LETTERS[first.correct_index]}\n\n"
    assert block in text
    assert text.count("\nAnswer:") == 6
    assert text.endswith(
        "Find the degree for the given field extension Q(sqrt(2), sqrt(3), sqrt(18)) over Q.\n"
        "A. 0\nB. 4\nC. 2\nD. 6\nAnswer:"
    )
    assert mmlu.prompt(item, shots=0).count("\nAnswer:") == 1


class AlwaysLetter(torch.nn.Module):
    """A scorer double with the causal-LM interface: the next token is always the favourite one."""

    def __init__(self, vocab_size: int, favourite: int):
        super().__init__()
        self.vocab_size = vocab_size
        self.favourite = favourite
        self.anchor = torch.nn.Parameter(torch.zeros(1))

    def forward(self, input_ids, attention_mask=None, cache=None, use_cache=False, **kwargs):
        logits = torch.zeros(*input_ids.shape, self.vocab_size)
        logits[..., self.favourite] = 10.0
        return SimpleNamespace(logits=logits, past_key_values=_NoCache())


class _NoCache:
    def batch_repeat_interleave(self, n):
        return None


def test_letter_scoring_with_a_scorer_double_gives_the_hand_computed_accuracy(smollm2_tokenizer_dir):
    tokenizer = AutoTokenizer.from_pretrained(smollm2_tokenizer_dir)
    letters = mmlu.letter_token_ids(tokenizer)
    assert len(set(letters)) == 4
    # Eight abstract-algebra questions; the double always answers "B".
    items = [i for i in mmlu.test_items() if i.subject == "abstract_algebra"][:8]
    double = AlwaysLetter(len(tokenizer), letters[1])
    prefix = PrefixCache(double, tokenizer, mmlu.cached_prefix("abstract_algebra"))
    scores = next_token_logprobs_after_prefix(double, tokenizer, prefix, [mmlu.prompt(i) for i in items], letters)
    predicted = [max(range(4), key=row.__getitem__) for row in scores]
    assert predicted == [1] * 8
    expected_correct = sum(i.correct_index == 1 for i in items)
    by_hand = [mmlu.LETTERS[i.correct_index] for i in items]
    assert expected_correct == by_hand.count("B")
    rows = mmlu.breakdown([(i.item_id, p == i.correct_index) for i, p in zip(items, predicted, strict=True)])
    (subject,) = rows["subject"]
    assert (subject.name, subject.n, subject.correct) == ("abstract_algebra", 8, expected_correct)
    assert subject.ci == wilson_interval(expected_correct, 8)
    assert [c.name for c in rows["category"]] == ["STEM"]


def test_batched_prefix_scoring_equals_scoring_each_prompt_from_scratch(tmp_path, smollm2_tokenizer_dir):
    folder = build_tiny_llama(tmp_path / "tiny", smollm2_tokenizer_dir, seed=3, max_position_embeddings=4096)
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    letters = mmlu.letter_token_ids(tokenizer)
    items = [i for i in mmlu.test_items() if i.subject == "high_school_geography"][:5]
    prefix = PrefixCache(model, tokenizer, mmlu.cached_prefix("high_school_geography"))
    # The fast path applies: every prompt's tokens start with the cached prefix's.
    assert all(extends_prefix(tokenizer, prefix, mmlu.prompt(i)) for i in items)
    batched = next_token_logprobs_after_prefix(
        model, tokenizer, copy.copy(prefix), [mmlu.prompt(i) for i in items], letters
    )
    with torch.inference_mode():
        for item, row in zip(items, batched, strict=True):
            ids = tokenizer(mmlu.prompt(item), return_tensors="pt")["input_ids"]
            alone = torch.log_softmax(model(input_ids=ids).logits[0, -1].float(), dim=-1)[letters]
            assert row == pytest.approx(alone.tolist(), abs=1e-4)


def test_mmlu_batches_are_sized_from_free_memory_on_a_gpu_and_stay_at_eight_on_the_cpu(tmp_path, smollm2_tokenizer_dir):
    from inference_workers import devices
    from inference_workers.backends.local import LoadedModel

    folder = build_tiny_llama(tmp_path / "tiny", smollm2_tokenizer_dir, max_position_embeddings=4096)
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    loaded = LoadedModel(model=model, tokenizer=tokenizer, device="cpu")
    items = [i for i in mmlu.test_items() if i.subject == "high_school_geography"][:5]
    prefix = PrefixCache(model, tokenizer, mmlu.cached_prefix("high_school_geography"))
    prompts = [mmlu.prompt(i) for i in items]
    assert runner.mmlu_batch_size(loaded, prefix, prompts) == runner.MMLU_CPU_BATCH == 8

    longest = max(len(tokenizer(p)["input_ids"]) for p in prompts)
    shape = devices.ModelShape.of(model.config)
    # kv: 2 x 2 layers x 2 heads x 8 dims x 4 bytes = 256 B/token; a scored token: logits 49,152 x 4 x 2 and
    # activations (4 x 32 + 3 x 64) x 4 + 4 heads x longest x 4
    scored = longest - len(prefix.ids)
    row = 256 * longest + scored * (49_152 * 8 + (4 * 32 + 3 * 64) * 4 + 4 * longest * 4)
    sizes = []
    for free in (64 << 30, 1 << 30):
        gpu = devices.Capability(kind="cuda", free_bytes=free, compile_refusal="", compile=lambda step: step)
        with devices.pretending(gpu):
            sizes.append(runner.mmlu_batch_size(loaded, prefix, prompts))
        expected = devices.power_of_two_at_most(min(int(free * devices.MEMORY_FRACTION // row), 512))
        assert sizes[-1] == expected == devices.scoring_batch_size(gpu, shape, 4, longest, scored, 512)
    assert sizes[0] == runner.MMLU_MAX_CUDA_BATCH == 512 and 8 < sizes[1] < 512


def test_mmlu_is_refused_for_a_model_without_log_probabilities(db):
    from inference_workers.models import ModelKind, ModelStatus
    from tests import factories

    api_model = factories.model(
        kind=ModelKind.OPENAI_API, api_base_url="https://api.example.org/v1", api_model_id="m", status=ModelStatus.READY
    )
    with pytest.raises(BenchmarkRequestRefused, match="local model only"):
        check_runnable(api_model, Benchmark.MMLU)


@pytest.mark.django_db(transaction=True)
def test_smollm2_on_a_seeded_20_question_subset_through_the_worker(worker, smollm2, researcher_client):
    run = do_start_benchmark_run(smollm2, Benchmark.MMLU, subset_size=20, subset_seed=7)
    run = wait_until_finished(run)
    assert run.status == JobStatus.SUCCEEDED, run.error
    chosen = {q.item_id: q for q in datasets.seeded_subset(mmlu.test_items(), 20, 7)}
    items = list(BenchmarkItem.objects.filter(run=run))
    assert {i.item_id for i in items} == set(chosen)
    for item in items:
        question = chosen[item.item_id]
        letter = item.prediction[0]
        assert letter in mmlu.LETTERS and item.prediction.startswith(f"{letter}. ")
        assert item.correct == (mmlu.LETTERS.index(letter) == question.correct_index)
        assert item.gold == [f"{mmlu.LETTERS[question.correct_index]}. {question.choices[question.correct_index]}"]
    assert run.n_items == 20 and run.accuracy == run.n_correct / 20
    low, high = wilson_interval(run.n_correct, 20)
    assert low <= run.accuracy <= high
    assert "5-shot" in run.prompting and runner.planned_total(run) == 20

    progress = json.loads(researcher_client.get(reverse("substance:run-progress", args=[run.pk])).content)
    assert progress["done"] == progress["total"] == 20
    page = researcher_client.get(reverse("substance:run-detail", args=[run.pk])).content.decode()
    assert "By category and subject" in page and "Random guess" in page
    breakdown = mmlu.breakdown([(i.item_id, i.correct) for i in items])
    assert sum(row.n for row in breakdown["category"]) == 20
    assert sum(row.correct for row in breakdown["subject"]) == run.n_correct
    assert BenchmarkRun.objects.get(pk=run.pk).benchmark == Benchmark.MMLU
