"""Token-by-token decoding for local models: finished rows leave the batch; on CUDA, a compiled static-cache step.

One batch of left-padded prompts is prefilled (in row chunks of at most ``devices.PREFILL_TOKENS``
tokens), then decoded one token a step. A row is finished at its first stop token or at the cap:

    tokens(step) = Σ over rows still running at that step   (each row counted up to and including its stop)

which is what the step listener hears (base.py), as before.

Two paths, the same arithmetic:

- **eager** (the CPU, or a GPU that cannot compile): keys and values live in ``RowCache``; finished rows
  leave the batch at once (their cache rows are dropped), and attention covers only the columns written
  so far. Greedy answers equal ``model.generate``'s.
- **compiled** (CUDA with torch.compile): the step runs on a static cache of ``batch bucket`` rows x
  ``length bucket`` columns (devices.py) and is compiled into CUDA graphs once per (model, batch bucket,
  length bucket), kept on the loaded model (``LoadedModel.decoders``), so a second job does not compile
  again. Finished rows stop costing compute when the live rows fit a bucket a quarter the size: they are
  moved to that bucket's cache (down to ``devices.MIN_COMPILED_BUCKET``). If compiling fails, the batch
  is decoded eagerly and the reason is logged.

The attention mask is passed as a ready 4D additive mask (0 where a row may attend, the dtype's minimum
elsewhere) and positions are passed explicitly, so the decoder does not depend on how a transformers
version builds masks or tracks cache positions; the model only has to call ``cache.update(k, v, layer)``.
Sampling applies temperature, top-k (the model's, else 50, as ``generate`` does) and top-p; a model whose
generation config asks for more (a repetition penalty, banned words...) is decoded by ``model.generate``.
"""

import inspect
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import torch

from inference_workers import devices

logger = logging.getLogger(__name__)

# Compiled (batch bucket, length bucket) decoders kept per loaded model; the least recently used goes first.
DECODERS_PER_MODEL = 4

# Generation-config fields this decoder does not apply, with the value that means "off".
_NOT_APPLIED = {
    "repetition_penalty": 1.0,
    "encoder_repetition_penalty": 1.0,
    "no_repeat_ngram_size": 0,
    "bad_words_ids": None,
    "forced_bos_token_id": None,
    "forced_eos_token_id": None,
    "suppress_tokens": None,
    "begin_suppress_tokens": None,
    "typical_p": 1.0,
    "epsilon_cutoff": 0.0,
    "eta_cutoff": 0.0,
    "min_p": None,
    "exponential_decay_length_penalty": None,
    "sequence_bias": None,
    "renormalize_logits": False,
    "num_beams": 1,
}


class CompileFailed(Exception):
    """The compiled step could not be built or run: the batch is decoded eagerly instead."""


@dataclass(frozen=True)
class Sampling:
    temperature: float
    top_p: float
    max_new_tokens: int
    seed: int
    min_new_tokens: int = 0


def unsupported_reason(model) -> str:
    """Why this decoder cannot decode ``model`` exactly as ``model.generate`` would, or ''."""
    config = getattr(model, "config", None)
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    if text is None or getattr(text, "is_encoder_decoder", False):
        return "not a decoder-only transformer"
    layer_types = getattr(text, "layer_types", None) or []
    if any(t != "full_attention" for t in layer_types):
        return f"layers other than full attention ({sorted(set(layer_types))})"
    if getattr(text, "sliding_window", None) and getattr(text, "use_sliding_window", True):
        return "sliding-window attention"
    generation = getattr(model, "generation_config", None)
    for name, off in _NOT_APPLIED.items():
        value = getattr(generation, name, None)
        if value is not None and value != off:
            return f"its generation config sets {name}={value!r}"
    return ""


def _base(model):
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _forward_arguments(model) -> set[str]:
    return set(inspect.signature(_base(model).forward).parameters)


def forward_kwargs(model) -> dict:
    """The names this model's forward takes for the cache and the logits kept (they moved across versions)."""
    names = _forward_arguments(model)
    kwargs = {}
    kwargs["cache_name"] = "cache" if "cache" in names else "past_key_values"
    if "logits_to_keep" in names:
        kwargs["keep"] = {"logits_to_keep": 1}
    elif "num_logits_to_keep" in names:
        kwargs["keep"] = {"num_logits_to_keep": 1}
    else:
        kwargs["keep"] = {}
    return kwargs


class RowCache:
    """Keys and values of a batch's rows, preallocated at ``length`` columns per layer.

    Eager use: ``update`` writes the new tokens at ``position`` into rows ``row_start`` onwards and returns
    the columns written so far. Static use (``static``): ``update`` writes at the device tensor
    ``position_tensor`` into every row and returns the whole buffers, so shapes never change.
    """

    is_compileable = True

    def __init__(self, rows: int, length: int, device, static: bool = False):
        self.rows, self.length, self.device, self.static = rows, length, device, static
        self.keys: dict[int, torch.Tensor] = {}
        self.values: dict[int, torch.Tensor] = {}
        self.position = 0
        self.row_start = 0
        # Static use only: set while the compiled step runs, cleared by a prefill.
        self.stepping = False
        self.position_tensor = torch.zeros(1, dtype=torch.long, device=device)

    def _allocate(self, layer: int, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        heads = key_states.shape[1]
        shape_k = (self.rows, heads, self.length, key_states.shape[-1])
        shape_v = (self.rows, value_states.shape[1], self.length, value_states.shape[-1])
        self.keys[layer] = torch.zeros(shape_k, dtype=key_states.dtype, device=key_states.device)
        self.values[layer] = torch.zeros(shape_v, dtype=value_states.dtype, device=value_states.device)
        if self.static:
            # Fixed addresses: CUDA graphs read and write these buffers in place.
            torch._dynamo.mark_static_address(self.keys[layer])
            torch._dynamo.mark_static_address(self.values[layer])

    def update(self, key_states, value_states, layer_idx, *args, **kwargs):
        if layer_idx not in self.keys:
            self._allocate(layer_idx, key_states, value_states)
        keys, values = self.keys[layer_idx], self.values[layer_idx]
        if self.stepping:
            keys.index_copy_(2, self.position_tensor, key_states)
            values.index_copy_(2, self.position_tensor, value_states)
            return keys, values
        rows = slice(self.row_start, self.row_start + key_states.shape[0])
        end = self.position + key_states.shape[2]
        keys[rows, :, self.position : end] = key_states
        values[rows, :, self.position : end] = value_states
        return keys[rows, :, :end], values[rows, :, :end]

    def get_seq_length(self, layer_idx: int = 0) -> int:
        # Inside the compiled step a constant: a value that changed each step would make dynamo recompile it.
        return 0 if self.stepping else self.position

    def keep_rows(self, index: torch.Tensor) -> None:
        """Keep only the rows ``index`` (in that order), moved to the front; the rest leave the batch."""
        for store in (self.keys, self.values):
            for layer, buffer in store.items():
                store[layer] = buffer.index_select(0, index)

    def copy_rows_into(self, other: "RowCache", index: torch.Tensor) -> None:
        """Copy the rows ``index`` to the first rows of ``other`` (another bucket's cache, same length)."""
        n = len(index)
        for layer in self.keys:
            if layer not in other.keys:
                other._allocate(layer, self.keys[layer][:1], self.values[layer][:1])
            other.keys[layer][:n] = self.keys[layer].index_select(0, index)
            other.values[layer][:n] = self.values[layer].index_select(0, index)

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (*self.keys.values(), *self.values.values()))


def additive_mask(allowed: torch.Tensor, dtype) -> torch.Tensor:
    """0 where attention is allowed, the dtype's minimum elsewhere (finite, so a row with nothing allowed stays
    a number)."""
    zero = torch.zeros((), dtype=dtype, device=allowed.device)
    return torch.where(allowed, zero, torch.finfo(dtype).min)


def prompt_positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """Each prompt token's position counted from the row's first real token (left padding is not counted)."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def _logits(model, names: dict, cache: RowCache, input_ids, positions, mask) -> torch.Tensor:
    out = model(
        input_ids=input_ids,
        attention_mask=mask,
        position_ids=positions,
        use_cache=True,
        **{names["cache_name"]: cache},
        **names["keep"],
    )
    return out.logits[:, -1, :].float()


def prefill(model, names, cache: RowCache, input_ids, attention_mask, chunk_rows: int) -> torch.Tensor:
    """Run the prompts through the model into ``cache`` (rows 0 onwards), ``chunk_rows`` at a time; the last
    position's logits of each row."""
    rows, width = input_ids.shape
    dtype = next(model.parameters()).dtype
    causal = torch.ones(width, width, dtype=torch.bool, device=input_ids.device).tril()
    positions = prompt_positions(attention_mask)
    chunks = []
    cache.stepping = False
    for start in range(0, rows, chunk_rows):
        part = slice(start, min(start + chunk_rows, rows))
        valid = attention_mask[part].bool()
        mask = additive_mask(causal[None, None] & valid[:, None, None, :], dtype)
        cache.row_start, cache.position = start, 0
        chunks.append(_logits(model, names, cache, input_ids[part], positions[part], mask))
    cache.row_start, cache.position = 0, width
    return torch.cat(chunks)


class TokenChooser:
    """The next token of each row: argmax when greedy; else temperature, top-k, top-p and a draw."""

    def __init__(self, model, sampling: Sampling, stop_ids: set[int], device):
        self.sampling = sampling
        self.stops = torch.tensor(sorted(stop_ids), device=device)
        self.warpers = []
        if sampling.temperature > 0:
            from transformers import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

            top_k = getattr(getattr(model, "generation_config", None), "top_k", None)
            top_k = 50 if top_k is None else top_k
            self.warpers.append(TemperatureLogitsWarper(sampling.temperature))
            if top_k:
                self.warpers.append(TopKLogitsWarper(top_k=top_k))
            if sampling.top_p < 1.0:
                self.warpers.append(TopPLogitsWarper(top_p=sampling.top_p))

    def __call__(self, logits: torch.Tensor, step: int) -> torch.Tensor:
        if step < self.sampling.min_new_tokens:
            logits[:, self.stops] = -float("inf")
        if not self.warpers:
            return logits.argmax(dim=-1)
        for warp in self.warpers:
            logits = warp(None, logits)
        return torch.multinomial(torch.softmax(logits, dim=-1), num_samples=1).squeeze(1)


@dataclass
class Decoded:
    """New tokens per row, up to and including its first stop token."""

    tokens: list[list[int]]


def _finish(out: torch.Tensor, lengths: torch.Tensor) -> list[list[int]]:
    return [row[:n] for row, n in zip(out.tolist(), lengths.tolist(), strict=True)]


def _record_step(choose, logits, step: int, out, lengths, live, tokens: int, on_step, started: float):
    """One step for the rows still in the batch (``live``: their original rows): choose their tokens, write
    them into ``out``, end the rows that chose a stop token at this length, report the step. Returns the
    tokens chosen, which rows stopped, and the tokens generated so far."""
    chosen = choose(logits, step)
    out[live, step] = chosen
    tokens += len(live)
    stopped = torch.isin(chosen, choose.stops)
    lengths[live[stopped]] = step + 1
    if on_step is not None:
        on_step(tokens, time.perf_counter() - started)
    return chosen, stopped, tokens


def decode_eager(
    model, input_ids, attention_mask, sampling: Sampling, stop_ids: set[int], on_step: Callable | None, started: float
) -> Decoded:
    """The eager path: finished rows leave the batch at once."""
    names = forward_kwargs(model)
    rows, width = input_ids.shape
    device = input_ids.device
    cap = sampling.max_new_tokens
    cache = RowCache(rows, width + cap, device)
    choose = TokenChooser(model, sampling, stop_ids, device)
    chunk = devices.prefill_rows(width, rows)
    logits = prefill(model, names, cache, input_ids, attention_mask, chunk)
    out = torch.zeros(rows, max(cap, 1), dtype=torch.long, device=device)
    lengths = torch.full((rows,), cap, dtype=torch.long, device=device)
    live = torch.arange(rows, device=device)  # the original row of each row still in the batch
    valid = torch.zeros(rows, width + cap, dtype=torch.bool, device=device)
    valid[:, :width] = attention_mask.bool()
    positions = attention_mask.long().sum(-1)
    dtype = next(model.parameters()).dtype
    tokens = 0
    for step in range(cap):
        chosen, stopped, tokens = _record_step(choose, logits, step, out, lengths, live, tokens, on_step, started)
        if step == cap - 1 or bool(stopped.all()):
            break
        if bool(stopped.any()):
            keep = (~stopped).nonzero().squeeze(1)
            live, chosen, valid, positions = live[keep], chosen[keep], valid[keep], positions[keep]
            cache.keep_rows(keep)
        column = width + step
        valid[:, column] = True
        cache.position = column
        mask = additive_mask(valid[:, None, None, : column + 1], dtype)
        logits = _logits(model, names, cache, chosen[:, None], positions[:, None], mask)
        positions = positions + 1
    return Decoded(_finish(out, lengths))


# --- The compiled path --------------------------------------------------------------------------------


class StaticDecoder:
    """One (batch bucket, length bucket) of a model: its static cache and its compiled step."""

    def __init__(self, model, bucket: int, length: int, device, compile: Callable):
        self.bucket, self.length = bucket, length
        self.cache = RowCache(bucket, length, device, static=True)
        torch._dynamo.mark_static_address(self.cache.position_tensor)
        names = forward_kwargs(model)
        dtype = next(model.parameters()).dtype
        cache = self.cache

        def step(input_ids, positions, valid):
            mask = additive_mask(valid[:, None, None, :], dtype)
            return _logits(model, names, cache, input_ids, positions, mask)

        self.step = compile(step)
        self.compiled_once = False

    def __call__(self, input_ids, positions, valid) -> torch.Tensor:
        self.cache.stepping = True
        if self.compiled_once:
            return self.step(input_ids, positions, valid).clone()
        try:
            logits = self.step(input_ids, positions, valid).clone()
        except Exception as exc:
            if _is_out_of_memory(exc):
                raise
            raise CompileFailed(f"{type(exc).__name__}: {exc}") from exc
        self.compiled_once = True
        return logits


def _is_out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()


def static_decoder(
    decoders: OrderedDict, model, bucket: int, length: int, device, cap: devices.Capability
) -> StaticDecoder:
    """The cached decoder of (this model, bucket, length), built (and compiled on first use) when missing.

    Older decoders are let go first while there are DECODERS_PER_MODEL, or while the device's free memory
    is short of the new cache (bucket x length x KV bytes per token)."""
    key = (bucket, length)
    if key in decoders:
        decoders.move_to_end(key)
        return decoders[key]
    dtype_bytes = next(model.parameters()).element_size()
    need = bucket * length * devices.ModelShape.of(model.config).kv_bytes_per_token(dtype_bytes)
    while decoders and (
        len(decoders) >= DECODERS_PER_MODEL or (devices.capability(str(device)).free_bytes or 0) < need
    ):
        decoders.popitem(last=False)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    decoders[key] = StaticDecoder(model, bucket, length, device, cap.compile)
    return decoders[key]


def decode_compiled(
    model,
    decoders: OrderedDict,
    cap: devices.Capability,
    input_ids,
    attention_mask,
    sampling: Sampling,
    stop_ids: set[int],
    on_step: Callable | None,
    started: float,
) -> Decoded:
    """The compiled path: a static cache per bucket; the batch moves to a bucket a quarter the size when its
    live rows fit there."""
    rows, width = input_ids.shape
    device = input_ids.device
    cap_tokens = sampling.max_new_tokens
    length = devices.length_bucket(width, cap_tokens)
    bucket = devices.batch_bucket(rows)
    decoder = static_decoder(decoders, model, bucket, length, device, cap)
    choose = TokenChooser(model, sampling, stop_ids, device)
    names = forward_kwargs(model)
    logits = prefill(model, names, decoder.cache, input_ids, attention_mask, devices.prefill_rows(width, rows))
    out = torch.zeros(rows, max(cap_tokens, 1), dtype=torch.long, device=device)
    lengths = torch.full((rows,), cap_tokens, dtype=torch.long, device=device)
    live = torch.arange(rows, device=device)
    valid = torch.zeros(bucket, length, dtype=torch.bool, device=device)
    valid[:rows, :width] = attention_mask.bool()
    positions = torch.zeros(bucket, dtype=torch.long, device=device)
    positions[:rows] = attention_mask.long().sum(-1)
    chosen_all = torch.zeros(bucket, dtype=torch.long, device=device)
    slots = torch.arange(rows, device=device)  # the bucket row of each live row
    tokens = 0
    for step in range(cap_tokens):
        chosen, stopped, tokens = _record_step(
            choose, logits[slots], step, out, lengths, live, tokens, on_step, started
        )
        if step == cap_tokens - 1 or bool(stopped.all()):
            break
        chosen_all[slots] = chosen
        if bool(stopped.any()):
            live, slots = live[~stopped], slots[~stopped]
            smaller = max(devices.batch_bucket(len(live)), devices.MIN_COMPILED_BUCKET)
            if smaller * 4 <= decoder.bucket:
                moved = static_decoder(decoders, model, smaller, length, device, cap)
                decoder.cache.copy_rows_into(moved.cache, slots)
                valid = _moved(valid, slots, smaller)
                positions = _moved(positions, slots, smaller)
                chosen_all = _moved(chosen_all, slots, smaller)
                slots = torch.arange(len(live), device=device)
                decoder = moved
        column = width + step
        valid[:, column] = True
        decoder.cache.position_tensor.fill_(column)
        logits = decoder(chosen_all[:, None], positions[:, None], valid)  # finished rows still in it cost too
        positions = positions + 1
    return Decoded(_finish(out, lengths))


def _moved(tensor: torch.Tensor, slots: torch.Tensor, bucket: int) -> torch.Tensor:
    """The live rows of a per-row tensor, in a new tensor of ``bucket`` rows (the rest zero)."""
    fresh = torch.zeros((bucket, *tensor.shape[1:]), dtype=tensor.dtype, device=tensor.device)
    fresh[: len(slots)] = tensor.index_select(0, slots)
    return fresh
