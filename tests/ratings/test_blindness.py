"""Raters never learn which model wrote what, and model text cannot run in their browser."""

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.test import Client
from django.urls import reverse

from inference_workers.models import LanguageModel
from ratings.actions.raters import do_invite_raters
from ratings.engine.rendering import render_model_text
from ratings.models import Recruitment, Vote
from tests.ratings.rating_setup import fact_check_study, rating_study, secret_strings

pytestmark = pytest.mark.django_db

HOSTILE = """Here is my answer.

<script>alert('x')</script>
<img src="https://tracker.example/p.png" onerror="alert(1)">
<a href="javascript:alert(2)">click</a> and [also click](javascript:alert(3))
<div style="position:fixed" onclick="alert(4)"><b>raw html</b></div>
<iframe src="https://evil.example"></iframe>
![pixel](https://tracker.example/pixel.png)

```python
print("<script>still text</script>")
```
"""


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.gets: list[str] = []
        self.forms: list[tuple[str, dict]] = []
        self._form = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "a" and a.get("href"):
            self.gets.append(a["href"])
        elif tag in ("link", "script") and (a.get("href") or a.get("src")):
            self.gets.append(a.get("href") or a.get("src"))
        elif tag == "form":
            self._form = (a.get("action") or "", {})
            self.forms.append(self._form)
        elif tag in ("input", "button", "textarea") and self._form is not None and a.get("name"):
            if a.get("type") == "checkbox" or tag == "button" or a.get("type") == "radio":
                self._form[1].setdefault(a["name"], a.get("value", ""))
            else:
                self._form[1][a["name"]] = a.get("value", "x")

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None


def crawl(client: Client, start: str, max_requests: int = 400) -> list[tuple[str, dict, str]]:
    """Every response a rater's browser can get from ``start``: (url, headers, body) for each link,
    redirect, asset and form (each form posted once, every vote form posted)."""
    pages: list[tuple[str, dict, str]] = []
    seen_get: set[str] = set()
    posted: set[str] = set()
    todo = [start]

    def visit(url: str, data: dict | None = None) -> None:
        if len(pages) >= max_requests:
            return
        path = urlsplit(url)._replace(scheme="", netloc="").geturl()
        if data is None and path.startswith(settings.STATIC_URL if settings.STATIC_URL.startswith("/") else "/static/"):
            found = finders.find(path.split("/static/", 1)[1])
            assert found, f"missing asset {path}"
            pages.append((path, {}, open(found, encoding="utf-8").read()))  # noqa: SIM115
            return
        response = client.get(path) if data is None else client.post(path, data)
        body = response.content.decode()
        pages.append((path, dict(response.items()), body))
        if response.status_code in (301, 302):
            location = urljoin(path, response["Location"])
            if urlsplit(location).netloc in ("", "testserver"):
                visit(location)
            return
        if not response.get("Content-Type", "").startswith("text/html"):
            return
        parser = Links()
        parser.feed(body)
        for href in parser.gets:
            target = urljoin(path, href)
            if urlsplit(target).netloc in ("", "testserver") and target not in seen_get:
                seen_get.add(target)
                todo.append(target)
        for action, form in parser.forms:
            target = urljoin(path, action or path)
            if urlsplit(target).netloc not in ("", "testserver"):
                continue
            if target in posted and "/vote/" not in target:
                continue
            posted.add(target)
            visit(target, form)

    while todo and len(pages) < max_requests:
        visit(todo.pop(0))
    return pages


def assert_blind(pages, secrets_):
    assert pages
    for url, headers, body in pages:
        text = (url + "\n" + "\n".join(f"{k}: {v}" for k, v in headers.items()) + "\n" + body).lower()
        for secret in secrets_:
            assert secret.lower() not in text, f"{secret!r} reached a rater at {url}"


def all_model_secrets() -> set[str]:
    return secret_strings(list(LanguageModel.objects.all()))


@pytest.mark.parametrize("fact_check", [False, True], ids=["preference", "fact-check"])
def test_every_page_an_open_link_rater_can_reach_is_blind(fact_check):
    build = fact_check_study if fact_check else rating_study
    study = build(
        n_prompts=4,
        n_models=3,
        n_gold=2,
        attention_check_rate=0.3,
        comparisons_per_rater=6,
        consent_text="Consent.",
        instructions="Choose the better answer.",
        follow_up_questions=[{"key": "factual", "text": "Which is more factually accurate?"}],
        title="Zyxwv Imitator 13B against Proprietron Ultra",
        slug="zyx-imitator-vs-proprietron",
    )
    secrets_ = all_model_secrets() | {study.slug, study.title}
    assert "attention-check" in secrets_ and "Proprietron Ultra" in secrets_
    pages = crawl(Client(), reverse("rater:enter", args=[study.token]))
    urls = " ".join(url for url, _, _ in pages)
    # The crawl went the whole way: consent, rating, pause, resume, and the completion page.
    for part in ("/consent/", "/vote/", "/pause/", "/paused/", "/done/", "/static/rater/rater.js"):
        assert part in urls
    assert any(study.completion_code in body for _, _, body in pages)
    if fact_check:
        # It saw the fact-check page (question, references, a verdict per answer) and its votes counted.
        assert any('name="verdict_left"' in body and "Reference answers" in body for _, _, body in pages)
        assert Vote.objects.filter(comparison__study=study).exclude(verdict_a="").count() == 6
    assert_blind(pages, secrets_)


@pytest.mark.parametrize(
    "recruitment, query",
    [
        (Recruitment.PROLIFIC, "?PROLIFIC_PID=p9&STUDY_ID=s9&SESSION_ID=e9"),
        (Recruitment.PROLIFIC, ""),
        (Recruitment.MTURK, "?workerId=W9&assignmentId=A9&hitId=H9&turkSubmitTo=https://www.mturk.com"),
        (Recruitment.MTURK, "?assignmentId=ASSIGNMENT_ID_NOT_AVAILABLE&hitId=H9"),
        (Recruitment.INVITE, ""),
    ],
)
def test_platform_entries_are_blind_too(recruitment, query):
    study = rating_study(n_prompts=2, n_models=3, recruitment=recruitment, comparisons_per_rater=3)
    pages = crawl(Client(), reverse("rater:enter", args=[study.token]) + query)
    assert_blind(pages, all_model_secrets() | {study.slug, study.title})


def test_invited_rater_and_the_no_more_work_page_are_blind():
    study = rating_study(n_prompts=1, n_models=2, recruitment=Recruitment.INVITE, votes_per_comparison=1)
    first, second = do_invite_raters(study, 2)
    enter = reverse("rater:enter", args=[study.token])
    pages = crawl(Client(), f"{enter}?invite={first.token}") + crawl(Client(), f"{enter}?invite={second.token}")
    assert any("No more pairs" in body for _, _, body in pages)
    assert_blind(pages, all_model_secrets())


class Elements(HTMLParser):
    """Every element a browser would build from the HTML, with its attributes."""

    def __init__(self, html: str):
        super().__init__()
        self.elements: list[tuple[str, dict]] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))


def assert_inert(html: str) -> None:
    for tag, attrs in Elements(html).elements:
        assert tag not in {"script", "img", "iframe", "object", "embed", "style", "div", "form", "input"}, tag
        assert not [name for name in attrs if name.startswith("on") or name in ("style", "src")], (tag, attrs)
        if tag == "a":
            assert urlsplit(attrs["href"]).scheme in ("http", "https", "mailto", ""), attrs


def test_hostile_model_text_is_rendered_inert():
    html = str(render_model_text(HOSTILE))
    assert_inert(html)
    assert "tracker.example/pixel" not in html
    # Raw HTML shows up as text, and code blocks survive as code.
    assert "&lt;b&gt;raw html&lt;/b&gt;" in html
    assert "&lt;script&gt;alert(" in html
    assert '<pre><code>print("&lt;script&gt;still text&lt;/script&gt;")' in html
    assert '<a href="https://example.org" rel="noopener noreferrer nofollow">fine</a>' in str(
        render_model_text("[fine](https://example.org)")
    )


def test_the_rating_page_shows_a_hostile_answer_as_text_under_a_strict_policy(client):
    study = rating_study(n_prompts=1, answers=lambda i, j: HOSTILE if j == 0 else "A calm answer with `code`.")
    page = client.get(reverse("rater:enter", args=[study.token]), follow=True)
    html = page.content.decode()
    assert "A calm answer with <code>code</code>." in html
    answers = re.findall(r'<div class="answer-body">(.*?)</div></article>', html, re.S)
    assert len(answers) == 2
    for answer in answers:
        assert_inert(answer)
    assert any("&lt;script&gt;alert(" in answer for answer in answers)
    csp = page["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "img-src 'self'" in csp and "frame-ancestors 'none'" in csp


def test_llm_judges_never_reach_a_rater():
    """A study with a judge's verdicts (name, texts, outcomes) in the database and in its snapshot: the crawl
    finds none of it."""
    from judges.actions import do_import_verdicts
    from judges.formats import ImportedVerdict
    from ratings.actions.snapshots import do_compute_snapshots

    study = rating_study(n_prompts=3, n_models=3, comparisons_per_rater=4, consent_text="Consent.")
    names = list(study.language_models.values_list("name", flat=True))
    verdicts = [
        ImportedVerdict("qqjudge-oracle-9", p.external_id, first, second, "first", f"QQJUDGETEXT says [[A]] for {p.pk}")
        for p in study.prompt_set.prompts.all()
        for first in names
        for second in names
        if first != second
    ]
    do_import_verdicts(study, verdicts)
    do_compute_snapshots(study)
    pages = crawl(Client(), reverse("rater:enter", args=[study.token]))
    assert any("/vote/" in url for url, _, _ in pages)
    assert_blind(pages, all_model_secrets() | {"qqjudge-oracle-9", "QQJUDGETEXT", "[[A]]", "judge"})
