"""Style features of an answer, as Chatbot Arena's style control counts them.

Fenced code blocks are removed before anything else is counted, so code does not
inflate length, headers or lists. Counted on the remaining markdown:

- ``length_words``: whitespace-separated tokens holding a letter or digit (markdown
  markers such as ``#`` and ``-`` are not words); ``length_chars``: characters
- ``n_headers``: lines starting with 1-6 ``#`` and a space
- ``n_list_items``: lines starting with ``-``, ``*`` or ``+`` and a space, or ``1.`` / ``1)``
- ``n_bold``: ``**text**`` or ``__text__`` spans
- ``n_code_blocks``: fenced blocks (counted before removal)
"""

import re
from dataclasses import asdict, dataclass

import numpy as np

_FENCE = re.compile(r"```.*?(?:```|\Z)", re.DOTALL)
_HEADER = re.compile(r"^#{1,6}\s+\S", re.MULTILINE)
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+\S", re.MULTILINE)
_BOLD = re.compile(r"\*\*[^*\n]+\*\*|__[^_\n]+__")
# A whitespace-separated token with no letter or digit (a markdown marker such as "-" or "**").
_MARKER_TOKEN = re.compile(r"(?<!\S)[^\w\s]+(?!\S)")


@dataclass(frozen=True)
class StyleFeatures:
    length_words: int
    length_chars: int
    n_headers: int
    n_list_items: int
    n_bold: int
    n_code_blocks: int

    def as_dict(self) -> dict:
        return asdict(self)


def _words(prose: str) -> int:
    return len(prose.split()) - len(_MARKER_TOKEN.findall(prose))


def style_counts(text: str) -> tuple[int, int, int, int]:
    """(length_words, n_headers, n_list_items, n_bold) as ``style_features`` counts them, faster: what style
    control needs, for reading battle files with millions of answers."""
    prose = _FENCE.sub("", text) if "```" in text else text
    return (
        _words(prose),
        len(_HEADER.findall(prose)) if "#" in prose else 0,
        len(_LIST_ITEM.findall(prose)),
        len(_BOLD.findall(prose)) if ("**" in prose or "__" in prose) else 0,
    )


def style_features(text: str) -> StyleFeatures:
    n_code_blocks = len(_FENCE.findall(text))
    prose = _FENCE.sub("", text)
    return StyleFeatures(
        length_words=_words(prose),
        length_chars=len(prose.strip()),
        n_headers=len(_HEADER.findall(prose)),
        n_list_items=len(_LIST_ITEM.findall(prose)),
        n_bold=len(_BOLD.findall(prose)),
        n_code_blocks=n_code_blocks,
    )


# Bytes that str.split() treats as whitespace, and the ASCII word characters (\w), for counting many
# ASCII answers at once; other answers go through the regular expressions above.
_ASCII_SPACE = np.zeros(256, dtype=bool)
_ASCII_SPACE[[9, 10, 11, 12, 13, 28, 29, 30, 31, 32]] = True
_ASCII_WORD = np.zeros(256, dtype=bool)
_ASCII_WORD[[ord(c) for c in "0123456789_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"]] = True


def _ascii_words(proses: list[str]) -> np.ndarray:
    """``_words`` of each ASCII text, in one vectorised pass over their bytes."""
    lengths = np.fromiter((len(p) + 1 for p in proses), dtype=np.int64, count=len(proses))
    buf = np.frombuffer(" ".join(proses).encode("ascii") + b" ", dtype=np.uint8)
    space = _ASCII_SPACE[buf]
    starts = np.flatnonzero(~space & np.concatenate([[True], space[:-1]]))
    if not len(starts):
        return np.zeros(len(proses), dtype=np.int64)
    wordy = np.logical_or.reduceat(_ASCII_WORD[buf], starts)
    owner = np.searchsorted(np.cumsum(lengths), starts, side="right")
    return np.bincount(owner[wordy], minlength=len(proses))


def style_counts_many(texts: list[str]) -> np.ndarray:
    """``style_counts`` of many texts as an (N, 4) array; ASCII texts' words are counted vectorised."""
    out = np.zeros((len(texts), 4), dtype=np.int64)
    ascii_rows, ascii_proses = [], []
    for n, text in enumerate(texts):
        prose = _FENCE.sub("", text) if "```" in text else text
        if prose.isascii():
            ascii_rows.append(n)
            ascii_proses.append(prose)
        else:
            out[n, 0] = _words(prose)
        out[n, 1] = len(_HEADER.findall(prose)) if "#" in prose else 0
        out[n, 2] = len(_LIST_ITEM.findall(prose))
        out[n, 3] = len(_BOLD.findall(prose)) if ("**" in prose or "__" in prose) else 0
    if ascii_rows:
        out[ascii_rows, 0] = _ascii_words(ascii_proses)
    return out
