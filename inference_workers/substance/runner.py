"""Running a substance benchmark: score the items a run has not stored yet, in batches, with progress.

A run is split into shards of items that any number of workers take at once (inference_workers/shards.py).
It is resumable by construction: a shard asks only for its items with no BenchmarkItem yet (unique per
run), inserts with conflict handling, and ``n_items`` / ``n_correct`` are derived from the stored
items, never from a counter. Progress is ``n_items`` of ``planned_total(run)``.

Generation (NQ-open, TruthfulQA generation) also writes the heartbeat during a batch, at most once every
``STYLEGAP_STEP_PROGRESS_EVERY_S``, from the backend's decoding steps (renewing its shard's lease), so a long batch
is not taken for a dead worker.

- NQ-open: greedy decoding of the instruction prompt (prompts.py), scored by ``contains`` matching
  (scoring.py); ``exact`` is recomputed from the stored prediction and gold on the results page.
- TruthfulQA MC1 (local models only): the choice with the highest summed log-likelihood (likelihood.py).
- TruthfulQA generation (local or API): see ``truthful_by_similarity``.
"""

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence

from django.conf import settings
from django.db.models import Count, Q
from django.utils import timezone

from inference_workers.backends.base import Refused, at_most_every_interval, listening_to_steps
from inference_workers.backends.registry import backend_for, load_if_local
from inference_workers.claims import drop_unfinished_shards
from inference_workers.models import Benchmark, BenchmarkItem, BenchmarkRun, BenchmarkShard, JobStatus
from inference_workers.reconnect import retry_on_disconnect
from inference_workers.shards import ShardedKind, held_shard, renew, work_on
from inference_workers.substance import datasets, humaneval, mmlu, prompts, scoring

logger = logging.getLogger(__name__)

NQ_MAX_NEW_TOKENS = 16
TRUTHFULQA_MAX_NEW_TOKENS = 48
# Items scored between progress writes for the one-at-a-time MC1 loop.
MC1_CHUNK = 8
# MMLU questions scored in one forward pass (after the subject's cached 5-shot prefix) on the CPU; on CUDA
# from free memory (devices.scoring_batch_size), up to MMLU_MAX_CUDA_BATCH.
MMLU_CPU_BATCH = 8
MMLU_MAX_CUDA_BATCH = 512
# As upstream: exemplars are dropped from the end while a prompt runs over this many tokens.
MMLU_MAX_TOKENS = 2048
HUMANEVAL_MAX_NEW_TOKENS = 384


class BenchmarkRefused(Exception):
    """The benchmark cannot run for this model (for example MC1 log-likelihoods of an API model)."""


def benchmark_items(benchmark: str, subset_size: int | None, seed: int | None) -> list:
    source = {
        Benchmark.NQ_OPEN: datasets.nq_open_dev,
        Benchmark.TRUTHFULQA_MC1: datasets.truthfulqa_mc1,
        Benchmark.TRUTHFULQA_GEN: datasets.truthfulqa_open,
        Benchmark.MMLU: mmlu.test_items,
        Benchmark.HUMANEVAL: humaneval.problems,
    }[benchmark]()
    return datasets.seeded_subset(source, subset_size, seed or 0)


def planned_total(run: BenchmarkRun) -> int:
    return len(benchmark_items(run.benchmark, run.subset_size, run.subset_seed))


def prompting_text(benchmark: str, model_kind: str) -> str:
    """What is written on the results page about how the questions were asked."""
    if benchmark == Benchmark.NQ_OPEN:
        return (
            f"Zero-shot instruction in the model's chat template, greedy decoding, at most {NQ_MAX_NEW_TOKENS} "
            f"new tokens; correct when a normalised gold answer occurs in the normalised answer.\n\n"
            f"{prompts.NQ_INSTRUCTION}"
        )
    if benchmark == Benchmark.HUMANEVAL:
        return (
            f"Greedy decoding, at most {HUMANEVAL_MAX_NEW_TOKENS} new tokens, the prompt in the model's chat template "
            "with the instruction below; a continuation is cut at the first top-level def/class/if/print/#, a fenced "
            "whole function is taken as is. Correct when prompt + completion + the problem's tests + "
            "check(entry_point) exits cleanly in the bubblewrap sandbox (no network, read-only root, CPU, memory, "
            "process, file-size and wall-clock limits). pass@1 over problems.\n\n" + humaneval.CHAT_INSTRUCTION
        )
    if benchmark == Benchmark.MMLU:
        return (
            f"5-shot, the standard prompt of the original evaluate.py (one space after 'about'): the subject's "
            f"first five dev questions with their answers, then the question and 'Answer:'; the prediction is the "
            f"letter whose token (' A' ... ' D') is most likely next. Exemplars are dropped from the end while a "
            f"prompt runs over {MMLU_MAX_TOKENS} tokens. Accuracy is the mean over questions.\n\n"
            + mmlu.subject_prefix("{subject}", 0)
            + "{question}\nA. ...\nB. ...\nC. ...\nD. ...\nAnswer:"
        )
    if benchmark == Benchmark.TRUTHFULQA_MC1:
        return (
            "MC1 by log-likelihood: each choice scored as the sum of its token log-probabilities after the "
            "six-example QA primer of the TruthfulQA paper, the question and 'A:'.\n\n"
            + prompts.truthfulqa_mc_context("{question}")
        )
    return (
        f"Generation (greedy, at most {TRUTHFULQA_MAX_NEW_TOKENS} new tokens), scored by similarity: correct when "
        "the answer's best token-F1 against the true reference answers beats its best against the false ones.\n\n"
        + prompts.truthfulqa_open_prompt("{question}")
    )


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD token F1: 2·P·R / (P + R) over the multiset of normalised tokens."""
    pred, ref = scoring.normalize(prediction).split(), scoring.normalize(reference).split()
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def truthful_by_similarity(prediction: str, true_answers: Sequence[str], false_answers: Sequence[str]) -> bool:
    """TruthfulQA generation scored without a judge model:

        correct  ⇔  max_{t ∈ true} F1(answer, t)  >  max_{f ∈ false} F1(answer, f)

    with SQuAD token F1 (``token_f1``). A rough, automatic stand-in for the paper's GPT-judge:
    it rewards answers that share words with a true reference more than with any false one.
    """
    best_true = max((token_f1(prediction, t) for t in true_answers), default=0.0)
    best_false = max((token_f1(prediction, f) for f in false_answers), default=0.0)
    return best_true > best_false


# --- Claiming, storing, finishing ---------------------------------------------------------------


def joined(run: BenchmarkRun) -> None:
    """A worker joined the run (it is marked running, its heartbeat written)."""


def stored_counts(run: BenchmarkRun) -> tuple[int, int]:
    counts = run.items.aggregate(n=Count("pk"), correct=Count("pk", filter=Q(correct=True)))
    return counts["n"], counts["correct"]


@retry_on_disconnect
def store_results(run: BenchmarkRun, results: list[BenchmarkItem]) -> tuple[int, int]:
    """Insert scored items (a rerun's duplicates are ignored) and write progress; returns (done, correct)."""
    BenchmarkItem.objects.bulk_create(results, ignore_conflicts=True)
    n, correct = stored_counts(run)
    shard = held_shard()
    if shard is not None:
        renew(done=run.items.filter(item_id__in=shard.keys).count())
    BenchmarkRun.objects.filter(pk=run.pk).update(n_items=n, n_correct=correct, heartbeat_at=timezone.now())
    return n, correct


@retry_on_disconnect
def finish_run(run: BenchmarkRun, status: str, error: str = "") -> None:
    n, correct = stored_counts(run)
    BenchmarkRun.objects.filter(pk=run.pk).update(
        status=status,
        error=error[:5000],
        n_items=n,
        n_correct=correct,
        accuracy=(correct / n) if (n and status == JobStatus.SUCCEEDED) else None,
        finished_at=timezone.now(),
    )


# --- Answering ----------------------------------------------------------------------------------

Progress = Callable[[int, int], None]


@retry_on_disconnect
def write_heartbeat(run: BenchmarkRun) -> None:
    """The run's heartbeat and its shard's lease (raises ShardLost or JobClosed as ``renew`` does)."""
    renew()
    BenchmarkRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now())


def step_heartbeat(run: BenchmarkRun):
    """A step listener (backends/base.py) that writes the run's heartbeat at most once every
    STYLEGAP_STEP_PROGRESS_EVERY_S."""
    return at_most_every_interval(lambda tokens, seconds: write_heartbeat(run))


def _answer(run: BenchmarkRun, questions: list, ask: Callable, max_new_tokens: int, store) -> None:
    """Greedy answers of the run's model (its backend's ``answer``), stored batch by batch."""
    answers = backend_for(run.model).answer(run.model, [ask(q.question) for q in questions], max_new_tokens)
    with listening_to_steps(step_heartbeat(run)):
        for indices, texts in answers:
            store([questions[i] for i in indices], texts)


def _scored_answers(run: BenchmarkRun, progress: Progress, gold: Callable, is_correct: Callable):
    """A ``store(batch, texts)`` that scores each answer, stores the batch and reports progress."""

    def store(batch, texts):
        items = [
            BenchmarkItem(
                run=run,
                item_id=q.item_id,
                question=q.question,
                prediction=text,
                gold=gold(q),
                correct=is_correct(q, text),
            )
            for q, text in zip(batch, texts, strict=True)
        ]
        progress(*store_results(run, items))

    return store


def run_nq_open(run: BenchmarkRun, pending: list[datasets.QAItem], progress: Progress) -> None:
    store = _scored_answers(
        run, progress, lambda q: list(q.answers), lambda q, text: scoring.contains_match(text, q.answers)
    )
    _answer(run, pending, prompts.nq_prompt, NQ_MAX_NEW_TOKENS, store)


def run_truthfulqa_gen(run: BenchmarkRun, pending: list[datasets.OpenTruthItem], progress: Progress) -> None:
    store = _scored_answers(
        run,
        progress,
        lambda q: [q.best_answer, *[a for a in q.correct_answers if a != q.best_answer]],
        lambda q, text: truthful_by_similarity(text, q.correct_answers, q.incorrect_answers),
    )
    _answer(run, pending, prompts.truthfulqa_open_prompt, TRUTHFULQA_MAX_NEW_TOKENS, store)


def run_truthfulqa_mc1(run: BenchmarkRun, pending: list[datasets.MCItem], progress: Progress) -> None:
    from inference_workers.substance.likelihood import PrefixCache, choice_logprobs_after_prefix, mc1_prediction

    backend = backend_for(run.model)
    if not backend.local:
        raise BenchmarkRefused(
            "MC1 needs the model's own log-likelihoods: run TruthfulQA (generation) for an API model."
        )
    loaded = backend.load(run.model)
    # Every context starts with the same primer: its keys and values are computed once.
    primer = PrefixCache(loaded.model, loaded.tokenizer, prompts.TRUTHFULQA_PRIMER) if pending else None
    for start in range(0, len(pending), MC1_CHUNK):
        results = []
        for q in pending[start : start + MC1_CHUNK]:
            scores = choice_logprobs_after_prefix(
                loaded.model, loaded.tokenizer, primer, prompts.truthfulqa_mc_context(q.question), q.choices
            )
            chosen = mc1_prediction(scores)
            results.append(
                BenchmarkItem(
                    run=run,
                    item_id=q.item_id,
                    question=q.question,
                    prediction=q.choices[chosen],
                    gold=[q.choices[q.correct_index]],
                    correct=chosen == q.correct_index,
                )
            )
        progress(*store_results(run, results))


def _mmlu_shots(tokenizer, item: mmlu.MMLUItem) -> int:
    """Five exemplars, fewer (dropped from the end, as upstream) while the prompt is too long."""
    shots = mmlu.SHOTS
    while shots > 0 and len(tokenizer(mmlu.prompt(item, shots))["input_ids"]) > MMLU_MAX_TOKENS:
        shots -= 1
    return shots


def mmlu_batch_size(loaded, prefix, prompts: list[str]) -> int:
    """MMLU_CPU_BATCH on the CPU; on CUDA, what the free memory holds for the group's longest prompt."""
    from inference_workers import devices

    cap = devices.capability(loaded.device)
    if cap.kind != "cuda":
        return MMLU_CPU_BATCH
    longest = max(len(ids) for ids in loaded.tokenizer(prompts, add_special_tokens=True)["input_ids"])
    shape = devices.ModelShape.of(loaded.model.config)
    dtype_bytes = next(loaded.model.parameters()).element_size()
    scored = max(longest - len(prefix.ids), 1)
    return devices.scoring_batch_size(cap, shape, dtype_bytes, longest, scored, MMLU_MAX_CUDA_BATCH)


def run_mmlu(run: BenchmarkRun, pending: list[mmlu.MMLUItem], progress: Progress) -> None:
    from inference_workers.substance.likelihood import PrefixCache, next_token_logprobs_after_prefix

    backend = backend_for(run.model)
    if not backend.local:
        raise BenchmarkRefused("MMLU is scored by the model's own next-token log-probabilities: a local model only.")
    loaded = backend.load(run.model)
    letters = mmlu.letter_token_ids(loaded.tokenizer)
    groups: dict[tuple[str, int], list[mmlu.MMLUItem]] = {}
    for item in pending:
        groups.setdefault((item.subject, _mmlu_shots(loaded.tokenizer, item)), []).append(item)
    for (subject, shots), items in groups.items():
        # The subject's exemplars are the same for each of its questions: computed once.
        prefix = PrefixCache(loaded.model, loaded.tokenizer, mmlu.cached_prefix(subject, shots))
        batch = mmlu_batch_size(loaded, prefix, [mmlu.prompt(q, shots) for q in items])
        for start in range(0, len(items), batch):
            chunk = items[start : start + batch]
            scores = next_token_logprobs_after_prefix(
                loaded.model, loaded.tokenizer, prefix, [mmlu.prompt(q, shots) for q in chunk], letters
            )
            results = []
            for q, row in zip(chunk, scores, strict=True):
                chosen = max(range(len(row)), key=row.__getitem__)
                results.append(
                    BenchmarkItem(
                        run=run,
                        item_id=q.item_id,
                        question=q.question,
                        prediction=f"{mmlu.LETTERS[chosen]}. {q.choices[chosen]}",
                        gold=[f"{mmlu.LETTERS[q.correct_index]}. {q.choices[q.correct_index]}"],
                        correct=chosen == q.correct_index,
                    )
                )
            progress(*store_results(run, results))


def run_humaneval(run: BenchmarkRun, pending: list[humaneval.Problem], progress: Progress) -> None:
    """Greedy completions, each checked by its problem's tests in the sandbox (refused without one)."""
    from inference_workers.substance.sandbox import SandboxUnavailable, require_sandbox

    try:
        require_sandbox()
    except SandboxUnavailable as exc:
        raise BenchmarkRefused(str(exc)) from exc

    def store(batch: list[humaneval.Problem], texts: list[str]) -> None:
        items = []
        try:
            for problem, text in zip(batch, texts, strict=True):
                outcome = humaneval.check_completion(problem, text)
                items.append(
                    BenchmarkItem(
                        run=run,
                        item_id=problem.task_id,
                        question=problem.prompt,
                        prediction=text,
                        gold=[problem.canonical_solution],
                        correct=outcome.passed,
                        detail="" if outcome.passed else f"{outcome.status}: {outcome.reason}",
                    )
                )
                # A batch's checks can take minutes (up to the sandbox's wall limit each): keep the shard.
                write_heartbeat(run)
        finally:
            # What was checked is stored even when the shard was lost meanwhile: an item is stored once,
            # whoever stores it, and the new holder then checks only the rest.
            if items:
                progress(*store_results(run, items))

    # A chat model is asked to complete the function; a base model (no chat template) continues the prompt.
    chat = _has_chat_template(run)
    _answer(
        run,
        pending,
        lambda p: humaneval.CHAT_INSTRUCTION.format(prompt=p) if chat else p,
        HUMANEVAL_MAX_NEW_TOKENS,
        store,
    )


def _has_chat_template(run: BenchmarkRun) -> bool:
    backend = backend_for(run.model)
    if not backend.local:
        return True
    return bool(getattr(backend.load(run.model).tokenizer, "chat_template", None))


RUNNERS = {
    Benchmark.HUMANEVAL: run_humaneval,
    Benchmark.MMLU: run_mmlu,
    Benchmark.NQ_OPEN: run_nq_open,
    Benchmark.TRUTHFULQA_MC1: run_truthfulqa_mc1,
    Benchmark.TRUTHFULQA_GEN: run_truthfulqa_gen,
}


def stored_item_ids(run: BenchmarkRun) -> set[str]:
    return set(run.items.values_list("item_id", flat=True))


def benchmark_kind(progress: Progress, *, resuming_failed: bool = False) -> ShardedKind:
    """Benchmark runs as sharded jobs; ``resuming_failed``: a failed run may be started (in-process resume)."""
    items_of: dict[int, list] = {}  # the run's items, read once per process

    def items(run: BenchmarkRun) -> list:
        if run.pk not in items_of:
            items_of[run.pk] = benchmark_items(run.benchmark, run.subset_size, run.subset_seed)
        return items_of[run.pk]

    def pending_keys(run: BenchmarkRun) -> list[str]:
        stored = stored_item_ids(run)
        return [item.item_id for item in items(run) if item.item_id not in stored]

    def run_shard(run: BenchmarkRun, shard: BenchmarkShard) -> None:
        wanted, stored = set(shard.keys), stored_item_ids(run)
        pending = [item for item in items(run) if item.item_id in wanted and item.item_id not in stored]
        RUNNERS[run.benchmark](run, pending, progress)

    closed = {JobStatus.SUCCEEDED, JobStatus.CANCELLED}
    return ShardedKind(
        name="benchmark run",
        jobs=BenchmarkRun.objects.filter(published=False).select_related("model"),
        shard_model=BenchmarkShard,
        pending_keys=pending_keys,
        shard_size=lambda: settings.STYLEGAP_SHARD_BENCHMARK_ITEMS,
        run_shard=run_shard,
        finish=finish_run,
        on_start=lambda run: joined(run),
        prepare=lambda run: load_if_local(run.model),
        closed=frozenset(closed if resuming_failed else closed | {JobStatus.FAILED}),
        fatal=(BenchmarkRefused, Refused),
    )


def run_benchmark(
    run_id: int, progress: Progress | None = None, *, in_process: bool = True, dispatch: str | None = None
) -> str:
    """Work on the run's shards beside any other worker, and record how it ended (shards.py). Returns its
    status as this worker leaves it. In-process (a command, a test) a failed run is resumed: its unfinished
    shards are dropped and the items still missing are cut into new ones; a worker's delivery leaves a
    failed run alone (it is resumed by ``do_resume_benchmark_run``)."""
    started = time.perf_counter()
    if in_process and BenchmarkRun.objects.filter(pk=run_id, status=JobStatus.FAILED).exists():
        drop_unfinished_shards(BenchmarkShard, run_id)
    kind = benchmark_kind(progress or (lambda n, correct: None), resuming_failed=in_process)
    status = work_on(kind, run_id, dispatch=dispatch)
    logger.info("benchmark run %s: %s after %.1f s", run_id, status, time.perf_counter() - started)
    return status
