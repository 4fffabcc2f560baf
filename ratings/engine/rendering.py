"""The one renderer for model text: markdown to HTML, then sanitised.

Model output is hostile HTML. markdown-it-py runs with raw HTML off (any tag in the text is
shown as text), then nh3 keeps an allow-list of tags with no event handlers, no styles, no
images (a remote image would tell its server who is rating) and only http(s) and mailto links.

Rendering a real answer costs milliseconds of Python, and every answer is shown many times
(k raters, every pair it is in), so results are kept: in each process (``_MEMO``), and shared by
all processes in the ``ratings_renderedtext`` table, keyed by a digest of the renderer's version
and the text. Change ``RENDERER`` whenever the policy or the markdown options change, and no
page shows HTML made under the old policy. Only this module writes that table.

gunicorn runs several threads per process: the memo is read and written under one lock, and each
text's HTML is taken in the same locked step that checks for it, so no thread's eviction can pull
an entry out between another's check and read. Rendering and the table happen outside the lock.
"""

import hashlib
import threading
from collections import OrderedDict

import nh3
from django.db import connection
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

from ratings.engine.hotpath import run

ALLOWED_TAGS = {
    "p", "br", "hr", "blockquote", "pre", "code", "em", "strong", "del", "s",
    "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "a",
    "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}, "th": {"align"}, "td": {"align"}}
URL_SCHEMES = {"http", "https", "mailto"}

_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable(["table", "strikethrough"])


RENDERER = "markdown-it-py commonmark+table+strikethrough, html off / nh3 allow-list v1"
MEMO_SIZE = 4096
_MEMO: OrderedDict[str, str] = OrderedDict()
_MEMO_LOCK = threading.Lock()


def render_model_text(text: str) -> SafeString:
    """Markdown (CommonMark + tables) to sanitised HTML, safe to put in a rater's page."""
    return render_model_texts([text])[0]


def render_model_texts(texts: list[str]) -> list[SafeString]:
    """Several texts at once: from this process's memo, else one look-up in the shared table, else rendered."""
    found = _recall(texts)
    missing = {text_digest(t): t for t in texts if t not in found}
    if missing:
        stored = _from_table(missing)
        fresh = {d: t for d, t in missing.items() if t not in stored}
        rendered = {d: _render(t) for d, t in fresh.items()}
        _to_table(rendered)
        new = {**stored, **{fresh[d]: html for d, html in rendered.items()}}
        _remember(new)
        found.update(new)
    return [mark_safe(found[t]) for t in texts]  # noqa: S308 - nh3 sanitised it, here or when it was stored


def prepare_texts(texts, chunk: int = 500) -> int:
    """Render and store every text not in the shared table yet, so its first rating page need not.

    Run when a study's comparisons are created. Returns how many texts were rendered now.
    """
    unique = list(dict.fromkeys(texts))
    n_rendered = 0
    for i in range(0, len(unique), chunk):
        by_digest = {text_digest(t): t for t in unique[i : i + chunk]}
        stored = _from_table(by_digest)
        rendered = {d: _render(t) for d, t in by_digest.items() if t not in stored}
        _to_table(rendered)
        n_rendered += len(rendered)
    return n_rendered


def text_digest(text: str) -> str:
    return hashlib.sha256(f"{RENDERER}\0{text}".encode()).hexdigest()


def _recall(texts) -> dict[str, str]:
    """The memo's HTML of those texts it holds, each marked as just used; one locked step."""
    found = {}
    with _MEMO_LOCK:
        for t in texts:
            html = _MEMO.get(t)
            if html is not None:
                _MEMO.move_to_end(t)
                found[t] = html
    return found


def _remember(by_text: dict[str, str]) -> None:
    with _MEMO_LOCK:
        for text, html in by_text.items():
            _MEMO[text] = html
            _MEMO.move_to_end(text)
        while len(_MEMO) > MEMO_SIZE:
            _MEMO.popitem(last=False)


def _from_table(by_digest: dict[str, str]) -> dict[str, str]:
    marks = ", ".join(["%s"] * len(by_digest))
    with connection.cursor() as cursor:
        run(cursor, f"SELECT digest, html FROM ratings_renderedtext WHERE digest IN ({marks})", list(by_digest))  # noqa: S608
        return {by_digest[digest]: html for digest, html in cursor.fetchall()}


def _to_table(by_digest: dict[str, str]) -> None:
    if not by_digest:
        return
    rows = ", ".join(["(%s, %s)"] * len(by_digest))
    params = [value for item in by_digest.items() for value in item]
    with connection.cursor() as cursor:
        # Two processes may render the same text at once: the first row stays, both are the same HTML.
        run(
            cursor,
            f"INSERT INTO ratings_renderedtext (digest, html) VALUES {rows} ON CONFLICT (digest) DO NOTHING",  # noqa: S608
            params,
        )


def _render(text: str) -> str:
    html = _markdown.render(text)
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )
