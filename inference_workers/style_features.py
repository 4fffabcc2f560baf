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

_FENCE = re.compile(r"```.*?(?:```|\Z)", re.DOTALL)
_HEADER = re.compile(r"^#{1,6}\s+\S", re.MULTILINE)
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+\S", re.MULTILINE)
_BOLD = re.compile(r"\*\*[^*\n]+\*\*|__[^_\n]+__")
_WORDLIKE = re.compile(r"\w")


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


def style_features(text: str) -> StyleFeatures:
    n_code_blocks = len(_FENCE.findall(text))
    prose = _FENCE.sub("", text)
    return StyleFeatures(
        length_words=sum(1 for token in prose.split() if _WORDLIKE.search(token)),
        length_chars=len(prose.strip()),
        n_headers=len(_HEADER.findall(prose)),
        n_list_items=len(_LIST_ITEM.findall(prose)),
        n_bold=len(_BOLD.findall(prose)),
        n_code_blocks=n_code_blocks,
    )
