import pytest

from inference_workers.style_features import style_features


def test_plain_prose_counts_words_and_nothing_else():
    f = style_features("The capital of Australia is Canberra.")
    assert (f.length_words, f.n_headers, f.n_list_items, f.n_bold, f.n_code_blocks) == (6, 0, 0, 0, 0)


def test_markdown_elements_are_counted():
    text = "# Title\n\n## Part\n\nSome **bold** and __also bold__.\n\n- one\n- two\n* three\n1. four\n2) five\n"
    f = style_features(text)
    assert f.n_headers == 2
    assert f.n_list_items == 5
    assert f.n_bold == 2


def test_code_blocks_are_removed_before_counting():
    text = "Use this:\n\n```python\n# not a header\n- not a list\nx = 1  # **not bold**\n```\n\nDone."
    f = style_features(text)
    assert f.n_code_blocks == 1
    assert (f.n_headers, f.n_list_items, f.n_bold) == (0, 0, 0)
    assert f.length_words == 3  # "Use this:" and "Done." only


def test_unterminated_fence_swallows_the_rest():
    f = style_features("Intro\n```\n# code till the end")
    assert f.n_code_blocks == 1
    assert f.n_headers == 0


def test_hash_without_space_is_not_a_header():
    assert style_features("#hashtag\n#1 best").n_headers == 0


@pytest.mark.django_db
def test_recomputing_every_answer_keeps_counts_imported_without_text():
    """An arena answer imported from conv_metadata has counts but no text: recomputing style features
    for all answers must not overwrite them with the zeros of an empty text."""
    from django.utils import timezone

    from inference_workers.actions import do_compute_style_features
    from inference_workers.models import Response
    from tests import factories

    model = factories.model()
    prompt_set = factories.prompt_set()
    counted = factories.response(model, factories.prompt(prompt_set), text="")
    Response.objects.filter(pk=counted.pk).update(
        length_words=120, n_headers=3, n_list_items=5, n_bold=2, style_computed_at=timezone.now()
    )
    written = factories.response(model, factories.prompt(prompt_set), text="# Title\n\n- one\n- two\n")
    do_compute_style_features()
    counted.refresh_from_db()
    written.refresh_from_db()
    assert (counted.length_words, counted.n_headers, counted.n_list_items, counted.n_bold) == (120, 3, 5, 2)
    assert (written.n_headers, written.n_list_items) == (1, 2)
