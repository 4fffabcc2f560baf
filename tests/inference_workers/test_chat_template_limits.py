"""A chat template cannot hang or flood a worker (issue 14, finding 12).

Templates come from researchers (a decoding config) and from uploaded checkpoints (the tokenizer's own).
Each bomb below goes through the real rendering path (``render_prompt``, what generation and validation
call) and is refused with a message naming the limit; an ordinary template renders exactly as
transformers renders it; a researcher who types a bomb into the start-jobs form gets a clear error.
"""

import threading

import pytest
from django.urls import reverse

from inference_workers.backends.local import render_prompt
from inference_workers.models import GenerationJob
from tests import factories

SLOW = "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}{{ messages[0].content }}"
HUGE = "{{ messages[0].content * 50000000 }}"  # 300 MB of "Hello?" at render time
LITERAL = "{{ 'x' * 300000000 }}"  # Jinja folds this constant when it compiles the template
GREEDY = '{% set ns = namespace(x="ab") %}{% for i in range(40) %}{% set ns.x = ns.x ~ ns.x %}{% endfor %}{{ ns.x }}'


@pytest.fixture(scope="module")
def tokenizer(smollm2_tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smollm2_tokenizer_dir)


def render_in_thread(tokenizer, template: str, ceiling_s: float = 90):
    """render_prompt in a thread; returns the exception it raised (None if it rendered), failing if it is
    still running after ``ceiling_s`` (a generous ceiling: the limits under test are a few seconds)."""
    outcome = {}

    def run():
        try:
            outcome["text"] = render_prompt(tokenizer, "Hello?", chat_template=template)
        except Exception as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(ceiling_s)
    assert not thread.is_alive(), f"the template was still rendering after {ceiling_s} s"
    return outcome.get("error")


def test_a_template_that_makes_300_mb_is_refused(tokenizer):
    error = render_in_thread(tokenizer, HUGE)
    assert error is not None, "the 300 MB prompt was rendered"
    assert "STYLEGAP_CHAT_TEMPLATE_MAX_CHARS" in str(error)
    # A 300 MB constant is made while the template compiles: stopped by whichever limit it meets first.
    error = render_in_thread(tokenizer, LITERAL)
    assert error is not None, "the 300 MB prompt was rendered"
    assert "STYLEGAP_CHAT_TEMPLATE_" in str(error)


def test_a_template_that_loops_for_minutes_is_stopped(tokenizer, settings):
    settings.STYLEGAP_CHAT_TEMPLATE_TIMEOUT_SECONDS = 2
    error = render_in_thread(tokenizer, SLOW)
    assert error is not None and "STYLEGAP_CHAT_TEMPLATE_TIMEOUT_SECONDS" in str(error)
    # The helper that was stopped is replaced: the next template renders.
    assert render_prompt(tokenizer, "Hi", chat_template="<{{ messages[0].content }}>") == "<Hi>"


def test_a_template_that_eats_memory_is_refused(tokenizer, settings):
    settings.STYLEGAP_CHAT_TEMPLATE_MAX_MEMORY_BYTES = 768 * 1024**2
    # Only the memory limit is under test: the time limit is set past the ceiling, so a starved machine
    # (the helper doubling its string at a few percent of a core) cannot stop it by time first.
    settings.STYLEGAP_CHAT_TEMPLATE_TIMEOUT_SECONDS = 600
    error = render_in_thread(tokenizer, GREEDY, ceiling_s=900)
    assert error is not None and "MEMORY" in str(error)


def test_ordinary_templates_render_as_transformers_renders_them(tokenizer):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Why is the sky blue?"}]
    own = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert render_prompt(tokenizer, "Why is the sky blue?", "Be brief.") == own
    custom = "{{ bos_token }}{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}[assistant]"
    expected = tokenizer.apply_chat_template(messages, chat_template=custom, tokenize=False, add_generation_prompt=True)
    assert render_prompt(tokenizer, "Why is the sky blue?", "Be brief.", custom) == expected


@pytest.mark.django_db
def test_the_start_jobs_form_refuses_a_bomb_with_a_clear_error(researcher_client):
    model, ps = factories.model(), factories.prompt_set()
    factories.prompt(ps)
    form = {"models": [model.pk], "prompt_set": ps.pk, "temperature": 0, "top_p": 1, "max_new_tokens": 8, "seed": 0}
    page = researcher_client.post(reverse("inference:job-start"), {**form, "chat_template": HUGE}, follow=True)
    assert "The chat template is refused" in page.content.decode()
    assert not GenerationJob.objects.exists()
    page = researcher_client.post(reverse("inference:job-start"), {**form, "chat_template": "{{ messages"}, follow=True)
    assert "The chat template is refused" in page.content.decode()
    assert not GenerationJob.objects.exists()
