"""What the worker's device can do, read through one small interface, and the batch size that follows.

``capability(device)`` says: the device kind, its free and total memory, its compute capability, and
whether decoding may be compiled (``compile_refusal`` is empty when it may, else the reason in words).
Everything that sizes batches or picks the compiled path reads it there, so a test can stand in a fake
device (``pretending``) where no GPU is present; nothing measures speed through it.

Batch size on CUDA, from free memory and the model's key/value bytes per token:

    kv_bytes_per_token = 2 (key and value) x layers x kv_heads x head_dim x bytes per element
    row_bytes          = kv_bytes_per_token x cache_length + vocab x 4 x LOGIT_COPIES
    budget             = free_bytes x MEMORY_FRACTION - prefill_workspace
    batch              = largest power of two <= min(budget / row_bytes, max_batch), at least 1

where ``cache_length`` is the batch's length bucket (its longest prompt plus the new tokens, rounded up)
and ``prefill_workspace`` the activations of one prefill chunk of PREFILL_TOKENS tokens. A power of two,
because the compiled decode graphs are cached per batch bucket. Out-of-memory halving (generation.py)
stays the safety net for what the estimate misses. On the CPU the batch size is the setting
``STYLEGAP_GENERATION_BATCH_SIZE``, as before.

torch is imported where it is used, so the web process can import this module without loading it.
"""

import importlib.util
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

# Share of the free memory the decoder may plan to use; the rest covers the allocator's fragmentation.
MEMORY_FRACTION = 0.85
# Float32 logits of one row, and one working copy of them (sampling or argmax).
LOGIT_COPIES = 2
# A prefill is run in row chunks of at most this many prompt tokens, bounding its activations.
PREFILL_TOKENS = 16_384
# Length buckets are multiples of this, so batches of similar length share one compiled graph.
LENGTH_BUCKET = 64
# Below this many rows the compiled path does not shrink its batch any further (each bucket compiles once).
MIN_COMPILED_BUCKET = 16
# Oldest GPUs triton (torch.compile's code generator) supports.
MIN_COMPILE_CAPABILITY = (7, 0)


@dataclass(frozen=True)
class Capability:
    """A device as the decoder sees it."""

    kind: str  # "cpu" or "cuda"
    free_bytes: int | None = None
    total_bytes: int | None = None
    compute_capability: tuple[int, int] | None = None
    # Empty when decoding may be compiled; otherwise why not, in words (it is logged when eager is used).
    compile_refusal: str = "compiled decoding is for CUDA devices"
    # Turns a decode step into its compiled form (torch.compile on a real GPU; a test passes its own).
    compile: Callable[[Callable], Callable] | None = field(default=None, compare=False)

    @property
    def compiles(self) -> bool:
        return not self.compile_refusal and self.compile is not None


def torch_compile(step: Callable) -> Callable:
    """A decode step compiled into CUDA graphs: one launch per step instead of hundreds."""
    import torch

    _raise_recompile_limit()
    return torch.compile(step, mode="reduce-overhead", fullgraph=True, dynamic=False)


def _raise_recompile_limit() -> None:
    # One entry per (batch bucket, length bucket): more than dynamo's default of 8 recompiles of one step.
    import torch._dynamo

    for name in ("recompile_limit", "cache_size_limit"):
        if hasattr(torch._dynamo.config, name):
            setattr(torch._dynamo.config, name, max(getattr(torch._dynamo.config, name), 64))


def compile_refusal_for_cuda(compute_capability: tuple[int, int]) -> str:
    """Why a CUDA device cannot compile decode steps here, or '' when it can."""
    if os.environ.get("STYLEGAP_COMPILED_DECODING", "1") == "0":
        return "STYLEGAP_COMPILED_DECODING=0"
    if importlib.util.find_spec("triton") is None:
        return "triton (torch.compile's GPU code generator) is not installed"
    if compute_capability < MIN_COMPILE_CAPABILITY:
        return f"compute capability {compute_capability} is below triton's {MIN_COMPILE_CAPABILITY}"
    return ""


def probe(device: str) -> Capability:
    """The real device's capability."""
    import torch

    if not str(device).startswith("cuda") or not torch.cuda.is_available():
        return Capability(kind="cpu")
    index = torch.device(device).index or 0
    free, total = torch.cuda.mem_get_info(index)
    cc = tuple(torch.cuda.get_device_capability(index))
    return Capability(
        kind="cuda",
        free_bytes=int(free),
        total_bytes=int(total),
        compute_capability=cc,
        compile_refusal=compile_refusal_for_cuda(cc),
        compile=torch_compile,
    )


_pretended: Capability | None = None


def capability(device: str) -> Capability:
    """The device's capability: the real one, unless a test is pretending (``pretending``)."""
    return _pretended if _pretended is not None else probe(device)


@contextmanager
def pretending(fake: Capability) -> Iterator[Capability]:
    """Within the block, ``capability`` answers ``fake`` (the GPU code paths, tested where no GPU is)."""
    global _pretended
    previous, _pretended = _pretended, fake
    try:
        yield fake
    finally:
        _pretended = previous


# --- Sizes ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelShape:
    layers: int
    kv_heads: int
    head_dim: int
    hidden: int
    intermediate: int
    vocab: int
    heads: int

    @classmethod
    def of(cls, config) -> "ModelShape":
        """From a transformers config (the text part of a multimodal one)."""
        text = config.get_text_config() if hasattr(config, "get_text_config") else config
        heads = text.num_attention_heads
        return cls(
            layers=text.num_hidden_layers,
            kv_heads=getattr(text, "num_key_value_heads", None) or heads,
            head_dim=getattr(text, "head_dim", None) or text.hidden_size // heads,
            hidden=text.hidden_size,
            intermediate=getattr(text, "intermediate_size", None) or 4 * text.hidden_size,
            vocab=text.vocab_size,
            heads=heads,
        )

    def kv_bytes_per_token(self, dtype_bytes: int) -> int:
        return 2 * self.layers * self.kv_heads * self.head_dim * dtype_bytes

    def prefill_bytes_per_token(self, dtype_bytes: int, prompt_length: int) -> int:
        """Activations one prompt token holds during a prefill: hidden states, the MLP's three projections,
        and its row of attention scores (float32)."""
        return (4 * self.hidden + 3 * self.intermediate) * dtype_bytes + self.heads * prompt_length * 4


def length_bucket(longest_prompt: int, max_new_tokens: int) -> int:
    """The cache length of a batch: its longest prompt plus the new tokens, rounded up to LENGTH_BUCKET."""
    need = longest_prompt + max_new_tokens
    return -(-need // LENGTH_BUCKET) * LENGTH_BUCKET


def power_of_two_at_most(n: int) -> int:
    return 1 << (max(int(n), 1).bit_length() - 1)


def batch_bucket(rows: int) -> int:
    """The compiled batch that holds ``rows``: the smallest power of two at least ``rows``."""
    return 1 << max(rows - 1, 0).bit_length()


def cuda_batch_size(
    cap: Capability,
    shape: ModelShape,
    dtype_bytes: int,
    longest_prompt: int,
    max_new_tokens: int,
    max_batch: int,
) -> int:
    """The batch size for a CUDA device (the formula in the module docstring)."""
    cache_length = length_bucket(longest_prompt, max_new_tokens)
    row = shape.kv_bytes_per_token(dtype_bytes) * cache_length + shape.vocab * 4 * LOGIT_COPIES
    prefill_rows = max(1, PREFILL_TOKENS // max(longest_prompt, 1))
    workspace = min(PREFILL_TOKENS, prefill_rows * longest_prompt) * shape.prefill_bytes_per_token(
        dtype_bytes, longest_prompt
    )
    budget = (cap.free_bytes or 0) * MEMORY_FRACTION - workspace
    fits = int(budget // row) if budget > 0 else 1
    return power_of_two_at_most(max(1, min(fits, max_batch)))


def prefill_rows(longest_prompt: int, rows: int) -> int:
    """Rows per prefill chunk: PREFILL_TOKENS prompt tokens at most, at least one row."""
    return max(1, min(rows, PREFILL_TOKENS // max(longest_prompt, 1)))


def scoring_batch_size(
    cap: Capability,
    shape: ModelShape,
    dtype_bytes: int,
    context_tokens: int,
    scored_tokens: int,
    max_batch: int,
) -> int:
    """Rows per forward pass when scoring by log-likelihood over a cached prefix (MMLU, TruthfulQA MC1):

        row_bytes = kv_bytes_per_token x context_tokens
                    + scored_tokens x (vocab x 4 x LOGIT_COPIES + prefill_bytes_per_token)
        batch     = largest power of two <= min(free_bytes x MEMORY_FRACTION / row_bytes, max_batch)

    (each row holds the prefix's keys and values repeated, and the float32 logits of every scored position)."""
    row = shape.kv_bytes_per_token(dtype_bytes) * context_tokens + scored_tokens * (
        shape.vocab * 4 * LOGIT_COPIES + shape.prefill_bytes_per_token(dtype_bytes, context_tokens)
    )
    fits = int((cap.free_bytes or 0) * MEMORY_FRACTION // max(row, 1))
    return power_of_two_at_most(max(1, min(fits, max_batch)))
