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
