"""Multiple-choice scoring by a causal language model's own log-likelihoods (TruthfulQA MC1).

    score(choice) = Σ_{t ∈ choice tokens} log p(x_t | context, x_<t)

Each choice is scored as " " + choice after the context; the predicted answer is the
choice with the highest score (MC1: correct when that is the one true answer).
"""

from collections.abc import Sequence

import torch

from inference_workers.decoding import forward_kwargs


@torch.inference_mode()
def choice_logprobs(model, tokenizer, context: str, choices: Sequence[str]) -> list[float]:
    """The summed log-probability of each choice's tokens after ``context``, in one padded batch."""
    context_ids = tokenizer(context, add_special_tokens=True)["input_ids"]
    choice_ids = [tokenizer(" " + c, add_special_tokens=False)["input_ids"] for c in choices]
    sequences = [context_ids + ids for ids in choice_ids]
    width = max(len(s) for s in sequences)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    input_ids = torch.full((len(sequences), width), pad, dtype=torch.long)
    attention = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        input_ids[row, : len(seq)] = torch.tensor(seq)
        attention[row, : len(seq)] = 1
    device = next(model.parameters()).device
    logits = model(input_ids=input_ids.to(device), attention_mask=attention.to(device)).logits.float()
    logprobs = torch.log_softmax(logits, dim=-1)
    scores = []
    start = len(context_ids)
    for row, ids in enumerate(choice_ids):
        # The token at position p is predicted by the logits at p - 1.
        positions = torch.arange(start - 1, start - 1 + len(ids), device=device)
        targets = torch.tensor(ids, device=device)
        scores.append(float(logprobs[row, positions, targets].sum()))
    return scores


def mc1_prediction(scores: Sequence[float]) -> int:
    return max(range(len(scores)), key=scores.__getitem__)


class PrefixCache:
    """The keys and values of a text every context starts with (TruthfulQA's primer), computed once."""

    @torch.inference_mode()
    def __init__(self, model, tokenizer, prefix: str):
        self.ids = tokenizer(prefix, add_special_tokens=True)["input_ids"]
        device = next(model.parameters()).device
        out = model(input_ids=torch.tensor([self.ids], device=device), use_cache=True)
        # transformers 5.x names the cache ``cache`` (``past_key_values`` before, now deprecated).
        cache = getattr(out, "cache", None)
        self.past = cache if cache is not None else out.past_key_values


def _logits_after_prefix(model, tokenizer, prefix: PrefixCache, sequences: list[list[int]]):
    """One forward pass over token sequences that each continue the prefix, right-padded, with the
    prefix's keys and values repeated for the batch; the logits of every position of each sequence."""
    import copy

    n_prefix = len(prefix.ids)
    width = max(len(s) for s in sequences)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    input_ids = torch.full((len(sequences), width), pad, dtype=torch.long)
    attention = torch.zeros((len(sequences), n_prefix + width), dtype=torch.long)
    attention[:, :n_prefix] = 1
    for row, seq in enumerate(sequences):
        input_ids[row, : len(seq)] = torch.tensor(seq)
        attention[row, n_prefix : n_prefix + len(seq)] = 1
    past = copy.deepcopy(prefix.past)
    past.batch_repeat_interleave(len(sequences))
    device = next(model.parameters()).device
    cache = {forward_kwargs(model)["cache_name"]: past}  # "cache" in transformers 5.x, "past_key_values" before
    return model(input_ids=input_ids.to(device), attention_mask=attention.to(device), use_cache=True, **cache).logits


@torch.inference_mode()
def choice_logprobs_after_prefix(model, tokenizer, prefix: PrefixCache, context: str, choices: Sequence[str]):
    """``choice_logprobs`` with the shared prefix's keys and values reused: only the rest is computed.

    Falls back to ``choice_logprobs`` when the context's tokens do not start with the prefix's
    (a token merged across the boundary), so the scores are the same either way.
    """
    context_ids = tokenizer(context, add_special_tokens=True)["input_ids"]
    n_prefix = len(prefix.ids)
    rest = context_ids[n_prefix:]
    if context_ids[:n_prefix] != prefix.ids or not rest:
        return choice_logprobs(model, tokenizer, context, choices)
    choice_ids = [tokenizer(" " + c, add_special_tokens=False)["input_ids"] for c in choices]
    device = next(model.parameters()).device
    logits = _logits_after_prefix(model, tokenizer, prefix, [rest + ids for ids in choice_ids]).float()
    logprobs = torch.log_softmax(logits, dim=-1)
    scores = []
    for row, ids in enumerate(choice_ids):
        # The token at position p (counted after the prefix) is predicted by the logits at p - 1.
        positions = torch.arange(len(rest) - 1, len(rest) - 1 + len(ids), device=device)
        targets = torch.tensor(ids, device=device)
        scores.append(float(logprobs[row, positions, targets].sum()))
    return scores


def extends_prefix(tokenizer, prefix: PrefixCache, context: str) -> bool:
    """Whether ``context``'s tokens start with the prefix's, so that its cached keys and values apply."""
    ids = tokenizer(context, add_special_tokens=True)["input_ids"]
    return ids[: len(prefix.ids)] == prefix.ids and len(ids) > len(prefix.ids)


@torch.inference_mode()
def next_token_logprobs_after_prefix(
    model, tokenizer, prefix: PrefixCache, contexts: Sequence[str], token_ids: Sequence[int]
) -> list[list[float]]:
    """log p(token | context) for each of ``token_ids``, for each context, in one batched forward pass.

    Every context starts with the prefix's text; only the rest of each is computed, over the
    prefix's keys and values repeated for the batch. A context whose tokens do not start with the
    prefix's (a token merged across the boundary) is scored on its own, from scratch, so the
    result is the same either way.
    """
    device = next(model.parameters()).device
    n_prefix = len(prefix.ids)
    encoded = [tokenizer(c, add_special_tokens=True)["input_ids"] for c in contexts]
    results: list[list[float] | None] = [None] * len(contexts)
    wanted = torch.tensor(list(token_ids), device=device)
    batched = []
    for i, ids in enumerate(encoded):
        if ids[:n_prefix] == prefix.ids and len(ids) > n_prefix:
            batched.append(i)
        else:
            logits = model(input_ids=torch.tensor([ids], device=device)).logits[0, -1].float()
            results[i] = torch.log_softmax(logits, dim=-1)[wanted].tolist()
    if batched:
        rests = [encoded[i][n_prefix:] for i in batched]
        logits = _logits_after_prefix(model, tokenizer, prefix, rests)
        last = torch.tensor([len(r) - 1 for r in rests], device=device)
        final = logits[torch.arange(len(rests), device=device), last].float()
        chosen = torch.log_softmax(final, dim=-1)[:, wanted]
        for row, i in enumerate(batched):
            results[i] = chosen[row].tolist()
    return results  # type: ignore[return-value]
