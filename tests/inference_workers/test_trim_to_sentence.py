"""An answer cut off at the token cap ends at its last complete sentence when the decoding config says so."""

import pytest

from inference_workers.actions import decoding_config_for
from inference_workers.backends.base import Answer
from inference_workers.generation import trim_to_last_sentence
from inference_workers.jobs import store_answers
from inference_workers.models import GenerationJob, Response
from tests import factories


@pytest.mark.parametrize(
    "text,trimmed",
    [
        ("Paris is the capital. It has many muse", "Paris is the capital."),
        ("It costs 3.5 dollars! Or maybe mo", "It costs 3.5 dollars!"),
        ('He said "go." Then he le', 'He said "go."'),
        ("Is it? Yes (mostly.) And th", "Is it? Yes (mostly.)"),
        ("A list:\n- first item\n- second it", "A list:\n- first item"),
        ("no sentence end at all here", "no sentence end at all here"),
        ("Already whole. Two sentences.", "Already whole. Two sentences."),
        ("e.g. nothing", "e.g. nothing"),
        ("Ask Dr. Smith about the U.S. economy. It gr", "Ask Dr. Smith about the U.S. economy."),
    ],
)
def test_trim_to_last_sentence(text, trimmed):
    assert trim_to_last_sentence(text) == trimmed


@pytest.mark.django_db
def test_only_answers_that_hit_the_cap_are_trimmed_and_only_when_the_config_says_so():
    model = factories.model()
    prompts = factories.prompt_set()
    first, second = factories.prompt(prompts), factories.prompt(prompts)
    cut = "The sky is blue. Light scatters in the upper atmo"
    for trim in (True, False):
        config = decoding_config_for(temperature=0, top_p=1, max_new_tokens=12, seed=int(trim), trim_to_sentence=trim)
        job = GenerationJob.objects.create(model=model, prompt_set=prompts, decoding_config=config, total=2)
        store_answers(
            job,
            [Answer(first, cut, prompt_tokens=5, completion_tokens=12), Answer(second, cut, 5, completion_tokens=9)],
        )
        capped = Response.objects.get(decoding_config=config, prompt=first)
        ended = Response.objects.get(decoding_config=config, prompt=second)
        assert capped.text == ("The sky is blue." if trim else cut)
        assert capped.length_words == (4 if trim else 10)  # style features describe what is stored
        assert capped.completion_tokens == 12  # what the model generated stays on record
        assert ended.text == cut  # it stopped by itself: nothing is cut


@pytest.mark.django_db
def test_configs_from_before_the_setting_keep_their_fingerprints():
    decoding_config_for(temperature=0.2, top_p=1.0, max_new_tokens=64, seed=1)  # another config already stored
    config = decoding_config_for(temperature=0.7, top_p=0.9, max_new_tokens=96, seed=0)
    assert "trim_to_sentence" not in config.as_dict()
    trimming = decoding_config_for(temperature=0.7, top_p=0.9, max_new_tokens=96, seed=0, trim_to_sentence=True)
    assert trimming.pk != config.pk and trimming.fingerprint != config.fingerprint
    # asking again finds the same rows (counting all rows would also count what an earlier
    # transactional test in the run left behind)
    assert decoding_config_for(temperature=0.7, top_p=0.9, max_new_tokens=96, seed=0).pk == config.pk
    again = decoding_config_for(temperature=0.7, top_p=0.9, max_new_tokens=96, seed=0, trim_to_sentence=True)
    assert again.pk == trimming.pk
