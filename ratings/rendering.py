"""The one renderer for model text: markdown to HTML, then sanitised.

Model output is hostile HTML. markdown-it-py runs with raw HTML off (any tag in the text is
shown as text), then nh3 keeps an allow-list of tags with no event handlers, no styles, no
images (a remote image would tell its server who is rating) and only http(s) and mailto links.
"""

from functools import lru_cache

import nh3
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

ALLOWED_TAGS = {
    "p", "br", "hr", "blockquote", "pre", "code", "em", "strong", "del", "s",
    "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "a",
    "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}, "th": {"align"}, "td": {"align"}}
URL_SCHEMES = {"http", "https", "mailto"}

_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable(["table", "strikethrough"])


def render_model_text(text: str) -> SafeString:
    """Markdown (CommonMark + tables) to sanitised HTML, safe to put in a rater's page."""
    return mark_safe(_render(text))  # noqa: S308 - nh3 has just sanitised it


@lru_cache(maxsize=4096)
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
