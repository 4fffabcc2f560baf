"""A GGUF file is converted to safetensors once per machine; later loads read the conversion.

The first test converts the real SmolLM2 GGUF file and checks that the conversion is the same model:
weights, configs, tokenizer, chat template and greedy answers. The others stand a tiny random Llama
in for transformers' GGUF loader (the slow part), so that they can convert many times: a "GGUF file"
is then any bytes, only hashed.
"""

import json
import logging
import threading
import time
from pathlib import Path

import pytest
import torch

from inference_workers.backends import gguf_cache
from inference_workers.backends.local import (
    SMOLLM2_GGUF,
    WeightsSpec,
    generate_batch,
    load_model,
    render_prompts,
    smollm2_folder,
)

QUESTIONS = ["What is the capital of Australia?", "Name a primary colour.", "Write a haiku about rain."]
TEXTS = ["Hello world", "What is 2+2?\n\n  spaces\ttabs", "ünïcödé 🎉 <|im_end|> text", ""]


def same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_smollm2_is_converted_once_and_the_conversion_is_the_same_model(settings, tmp_path, monkeypatch):
    settings.STYLEGAP_CONVERTED_DIR = tmp_path / "converted"
    spec = WeightsSpec(folder=smollm2_folder(), gguf_file=SMOLLM2_GGUF)
    first = load_model(spec, device="cpu")  # from the GGUF file, converted on the way

    folder = gguf_cache.converted_folder(smollm2_folder() / SMOLLM2_GGUF, torch.float32)
    assert gguf_cache.is_complete(folder) and folder.parent == tmp_path / "converted"
    marker = json.loads((folder / gguf_cache.MARKER).read_text())
    assert marker["source"] == SMOLLM2_GGUF
    assert marker["sha256"] == gguf_cache.file_sha256(smollm2_folder() / SMOLLM2_GGUF)
    assert folder.name.startswith(marker["sha256"]) and "-float32-transformers-" in folder.name
    config = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in config, "the converted weights are plain tensors"
    assert not list(folder.glob("*.bin")) and not list(folder.glob("*.pt")), "nothing to unpickle"
    assert [p.name for p in tmp_path.joinpath("converted").iterdir() if p.name.startswith(".")] == []

    def no_gguf(*args, **kwargs):
        raise AssertionError("the second load read the GGUF file")

    monkeypatch.setattr(gguf_cache, "load_from_gguf", no_gguf)
    second = load_model(spec, device="cpu")

    assert same_weights(first.model, second.model)
    assert second.model.lm_head.weight.data_ptr() == second.model.model.embed_tokens.weight.data_ptr(), "still tied"
    first_config = {k: v for k, v in first.model.config.to_dict().items() if k != "quantization_config"}
    second_config = {k: v for k, v in second.model.config.to_dict().items() if k != "_name_or_path"}
    first_config.pop("_name_or_path", None)
    assert first_config == second_config
    assert first.model.generation_config.to_dict() == second.model.generation_config.to_dict()
    a, b = first.tokenizer, second.tokenizer
    assert [a(t).input_ids for t in TEXTS] == [b(t).input_ids for t in TEXTS]
    assert (a.eos_token_id, a.bos_token_id, a.pad_token_id) == (b.eos_token_id, b.bos_token_id, b.pad_token_id)
    assert a.chat_template == b.chat_template
    rendered = render_prompts(first.tokenizer, QUESTIONS, "Be brief.")
    assert render_prompts(second.tokenizer, QUESTIONS, "Be brief.") == rendered
    greedy = {"temperature": 0, "top_p": 1, "max_new_tokens": 12, "seed": 0}
    answers_first, _ = generate_batch(first, rendered, **greedy)
    answers_second, _ = generate_batch(second, rendered, **greedy)
    assert answers_first == answers_second
    assert any("Canberra" in a.text for a in answers_second)


# --- The cache's mechanics, with a tiny random Llama standing in for transformers' GGUF loader ------------


@pytest.fixture
def fake_gguf(tmp_path, tiny_llama_dir, settings, monkeypatch):
    """A "GGUF file" of random bytes whose load (counted) is the tiny Llama's; conversions in tmp_path."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    settings.STYLEGAP_CONVERTED_DIR = tmp_path / "converted"
    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / "tiny.gguf").write_bytes(b"GGUF" + bytes(range(256)) * 64)
    loads = []

    def tiny_from_gguf(folder_, gguf_file, dtype):
        loads.append(gguf_file)
        tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
        return AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=dtype), tokenizer

    monkeypatch.setattr(gguf_cache, "load_from_gguf", tiny_from_gguf)
    return folder, loads


def load(folder: Path, dtype=torch.float32, name: str = "tiny.gguf"):
    return gguf_cache.load_gguf(folder, name, dtype)


def conversions(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and gguf_cache.is_complete(p))


def test_the_first_load_converts_and_later_ones_read_the_conversion(fake_gguf, settings):
    folder, loads = fake_gguf
    model, _ = load(folder)
    again, _ = load(folder)
    assert loads == ["tiny.gguf"]
    assert same_weights(model, again)
    (converted,) = conversions(settings.STYLEGAP_CONVERTED_DIR)
    assert (converted / gguf_cache.WEIGHTS).is_file()


def test_another_file_or_dtype_gets_a_conversion_of_its_own(fake_gguf, settings):
    folder, loads = fake_gguf
    load(folder)
    load(folder, torch.bfloat16)
    assert loads == ["tiny.gguf"] * 2
    (folder / "tiny.gguf").write_bytes(b"GGUF" + bytes(range(255, -1, -1)) * 64)  # new content, new key
    load(folder)
    load(folder)
    assert loads == ["tiny.gguf"] * 3
    names = [p.name for p in conversions(settings.STYLEGAP_CONVERTED_DIR)]
    assert len(names) == 3 and sum("-bfloat16-" in n for n in names) == 1


def test_a_folder_without_its_marker_is_not_read_and_is_replaced(fake_gguf, settings):
    folder, loads = fake_gguf
    target = gguf_cache.converted_folder(folder / "tiny.gguf", torch.float32)
    target.mkdir(parents=True)
    (target / "config.json").write_text("{}")  # a conversion cut short before its rename, say by hand
    left = target.parent / f".{target.name}.x1y2z3"
    left.mkdir()  # the temporary folder of a worker killed while it converted
    (left / gguf_cache.WEIGHTS).write_bytes(b"cut short")
    load(folder)
    assert loads == ["tiny.gguf"] and gguf_cache.is_complete(target)
    assert not left.exists()
    load(folder)
    assert loads == ["tiny.gguf"]


def test_a_damaged_conversion_is_converted_again(fake_gguf, settings, caplog):
    folder, loads = fake_gguf
    model, _ = load(folder)
    (target,) = conversions(settings.STYLEGAP_CONVERTED_DIR)
    weights = target / gguf_cache.WEIGHTS
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])  # cut short by a disk error
    with caplog.at_level(logging.WARNING, logger=gguf_cache.__name__):
        again, _ = load(folder)
    assert "could not be read" in caplog.text
    assert loads == ["tiny.gguf"] * 2 and same_weights(model, again)
    load(folder)
    assert loads == ["tiny.gguf"] * 2, "the new conversion is read"


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda t: (t / "config.json").write_text('{"model_type": "lla'), id="config cut short"),
        pytest.param(lambda t: (t / gguf_cache.WEIGHTS).unlink(), id="weights missing"),
        pytest.param(lambda t: (t / gguf_cache.WEIGHTS).write_bytes(b"\xff" * 64), id="weights garbage"),
    ],
)
def test_other_damage_is_converted_again_too(fake_gguf, settings, damage):
    folder, loads = fake_gguf
    model, _ = load(folder)
    (target,) = conversions(settings.STYLEGAP_CONVERTED_DIR)
    damage(target)
    again, _ = load(folder)
    assert loads == ["tiny.gguf"] * 2 and same_weights(model, again)


def test_running_out_of_memory_while_reading_a_conversion_keeps_it(fake_gguf, settings, monkeypatch):
    """Only a damaged conversion is removed: a load that fails for want of memory (or any error not
    about the folder's files) is raised as it is, and the good conversion stays for the next load."""
    from transformers import AutoModelForCausalLM

    folder, loads = fake_gguf
    load(folder)
    (target,) = conversions(settings.STYLEGAP_CONVERTED_DIR)
    real = AutoModelForCausalLM.from_pretrained.__func__

    def out_of_memory(cls, *args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", classmethod(out_of_memory))
    with pytest.raises(torch.OutOfMemoryError):
        load(folder)
    assert gguf_cache.is_complete(target) and loads == ["tiny.gguf"]
    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", classmethod(real))
    load(folder)
    assert loads == ["tiny.gguf"], "the kept conversion is read"


def test_an_unwritable_place_or_weights_over_the_limit_load_from_the_file_and_keep_nothing(
    fake_gguf, settings, tmp_path, caplog
):
    folder, loads = fake_gguf
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    settings.STYLEGAP_CONVERTED_DIR = blocker / "converted"
    with caplog.at_level(logging.WARNING, logger=gguf_cache.__name__):
        model, tokenizer = load(folder)
    assert "cannot be kept" in caplog.text and model is not None and tokenizer is not None
    load(folder)
    assert loads == ["tiny.gguf"] * 2

    settings.STYLEGAP_CONVERTED_DIR = tmp_path / "converted"
    settings.STYLEGAP_CONVERTED_MAX_BYTES = 1000
    with caplog.at_level(logging.INFO, logger=gguf_cache.__name__):
        load(folder)
    assert "over STYLEGAP_CONVERTED_MAX_BYTES" in caplog.text
    assert conversions(tmp_path / "converted") == [] and loads == ["tiny.gguf"] * 3


def test_the_least_recently_used_conversions_make_room_for_a_new_one(fake_gguf, settings):
    folder, loads = fake_gguf
    for i, name in enumerate(("a.gguf", "b.gguf", "c.gguf")):
        (folder / name).write_bytes(b"GGUF" + bytes([i]) * 4096)
    load(folder, name="a.gguf")
    (one,) = conversions(settings.STYLEGAP_CONVERTED_DIR)
    settings.STYLEGAP_CONVERTED_MAX_BYTES = int(2.5 * sum(p.stat().st_size for p in one.iterdir()))
    load(folder, name="b.gguf")
    load(folder, name="a.gguf")  # read: a is now used more recently than b
    load(folder, name="c.gguf")  # a third does not fit beside both: b goes
    assert loads == ["a.gguf", "b.gguf", "c.gguf"]
    kept = {json.loads((p / gguf_cache.MARKER).read_text())["source"] for p in conversions(one.parent)}
    assert kept == {"a.gguf", "c.gguf"}
    load(folder, name="b.gguf")  # converted again, and now a (least recently used) goes
    kept = {json.loads((p / gguf_cache.MARKER).read_text())["source"] for p in conversions(one.parent)}
    assert kept == {"b.gguf", "c.gguf"} and loads[-1] == "b.gguf" and len(loads) == 4


def waiters_on(lock_file: Path) -> int:
    """Processes or threads blocked on a flock of this file (/proc/locks marks a waiter with '->')."""
    inode = lock_file.stat().st_ino
    return sum(1 for line in Path("/proc/locks").read_text().splitlines() if "->" in line and f":{inode} " in line)


def test_loads_at_the_same_time_convert_once(fake_gguf, settings):
    """The second load waits for the first one's conversion (it is seen blocked on the lock file while the
    first converts), then reads the conversion instead of converting again."""
    folder, loads = fake_gguf
    real = gguf_cache.load_from_gguf
    target = gguf_cache.converted_folder(folder / "tiny.gguf", torch.float32)
    lock_file = target.parent / f"{target.name}.lock"
    results, errors = {}, []

    def second_load():
        try:
            results["second"] = load(folder)
        except Exception as exc:  # reported below
            errors.append(exc)

    def first_converts(folder_, gguf_file, dtype):
        if threading.current_thread() is not threading.main_thread():  # only without the lock
            return real(folder_, gguf_file, dtype)
        other = threading.Thread(target=second_load)
        other.start()
        results["thread"] = other
        # Wait for the other load to reach the lock: it advances from 'started' to 'blocked' in a moment.
        deadline = time.monotonic() + 120
        while waiters_on(lock_file) == 0:
            assert other.is_alive(), f"the second load did not wait for the lock: {errors}"
            assert time.monotonic() < deadline, "the second load never reached the lock"
            time.sleep(0.01)
        return real(folder_, gguf_file, dtype)

    gguf_cache.load_from_gguf = first_converts
    try:
        first, _ = load(folder)
    finally:
        gguf_cache.load_from_gguf = real
    results["thread"].join(120)
    assert errors == [] and "second" in results
    assert loads == ["tiny.gguf"], "converted once"
    assert same_weights(first, results["second"][0])
