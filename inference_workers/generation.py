"""Generation mechanics: batches sorted by length, halving on out-of-memory, a bounded model cache.

Sorting prompts by token length before cutting batches keeps the left padding in each batch
small (a batch costs as much as its longest prompt). A batch that runs out of memory is split
in two and each half retried, down to a batch of one; only then does the error stand.
"""

import re
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def length_sorted_batches(items: Sequence[T], lengths: Sequence[int], batch_size: int) -> Iterator[list[T]]:
    """Cut ``items`` into batches of ``batch_size`` after sorting them by ``lengths``, longest first."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    order = sorted(range(len(items)), key=lambda i: -lengths[i])
    for start in range(0, len(order), batch_size):
        yield [items[i] for i in order[start : start + batch_size]]


def run_halving_on_oom(
    batch: list[T],
    generate: Callable[[list[T]], list[R]],
    is_oom: Callable[[BaseException], bool],
    on_oom: Callable[[int], None] | None = None,
) -> list[R]:
    """``generate(batch)``; on out-of-memory, generate each half separately (recursively)."""
    try:
        return generate(batch)
    except Exception as exc:
        if not is_oom(exc) or len(batch) == 1:
            raise
    if on_oom is not None:
        on_oom(len(batch))
    half = len(batch) // 2
    return run_halving_on_oom(batch[:half], generate, is_oom, on_oom) + run_halving_on_oom(
        batch[half:], generate, is_oom, on_oom
    )


class ModelCache:
    """Loaded models kept across jobs in one worker process; the least recently used goes first."""

    def __init__(self, capacity: int, on_evict: Callable[[object], None] | None = None):
        self.capacity = max(1, capacity)
        self.on_evict = on_evict
        self._items: OrderedDict[Hashable, object] = OrderedDict()

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    def get_or_load(self, key: Hashable, load: Callable[[], R]) -> R:
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        # Make room before loading, so two large models are never resident beyond the bound.
        while len(self._items) >= self.capacity:
            _, evicted = self._items.popitem(last=False)
            if self.on_evict is not None:
                self.on_evict(evicted)
        value = load()
        self._items[key] = value
        return value

    def discard(self, key: Hashable) -> None:
        self._items.pop(key, None)


# A sentence ends at . ! ? (optionally closed by quotes or brackets) before whitespace, or at a line break
# after text; a decimal point ("3.5") or an abbreviation inside a word is not followed by whitespace.
_SENTENCE_END = re.compile(r"[.!?][\"'”’)\]]*(?=\s)|[.!?][\"'”’)\]]*$|\n(?=\s*\S)")


# A period that ends an abbreviation, not a sentence: "e.g.", "U.S.", "J." (an initial), "Dr.", "vs."
_ABBREVIATION = re.compile(r"(?:(?:^|[\s.(])[A-Za-z]|\b(?:Mr|Mrs|Ms|Dr|Prof|St|vs|cf|approx))\.$")


def trim_to_last_sentence(text: str) -> str:
    """``text`` up to the end of its last complete sentence; unchanged when it has none.

    For answers cut off at the token cap: the reader sees whole sentences instead of a word broken
    off mid-way (the decoding config's ``trim_to_sentence``; the Response keeps its token count).
    """
    ends = [m.end() for m in _SENTENCE_END.finditer(text) if not _ABBREVIATION.search(text[: m.start() + 1])]
    if not ends:
        return text
    trimmed = text[: ends[-1]].rstrip()
    return trimmed or text
