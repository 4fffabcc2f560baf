"""Checkpoints built on the spot: a tiny random-weights Llama (safetensors + SmolLM2's tokenizer), a LoRA over it."""

import os
import socket
import zipfile
from pathlib import Path

import pytest
from django.conf import settings

from .fake_hub import FakeHub

# The session worker inherits the environment at start: the API key a test model names must be there.
TEST_API_KEY_ENV = "STYLEGAP_API_KEY_TEST"
os.environ.setdefault(TEST_API_KEY_ENV, "sk-test-not-a-real-key")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The fake Hub (fake_hub.py) listens on a port chosen now, so the session worker, started later with this
# environment, downloads from it too; the token is the one its private repos ask for.
FAKE_HUB_PORT = _free_port()
os.environ["HF_ENDPOINT"] = f"http://127.0.0.1:{FAKE_HUB_PORT}"
settings.STYLEGAP_HF_ENDPOINT = os.environ["HF_ENDPOINT"]
FAKE_HUB_TOKEN = "hf_fake_test_token"
os.environ[settings.STYLEGAP_HF_TOKEN_ENV] = FAKE_HUB_TOKEN


@pytest.fixture
def fake_hub():
    with FakeHub(FAKE_HUB_PORT) as hub:
        yield hub


@pytest.fixture(scope="session")
def smollm2_tokenizer_dir(tmp_path_factory) -> Path:
    import torch

    from inference_workers.backends.gguf_cache import load_gguf
    from inference_workers.backends.local import SMOLLM2_GGUF, smollm2_folder

    folder = tmp_path_factory.mktemp("smollm2-tokenizer")
    # Through the session's conversion of the GGUF file, which the worker's loads of SmolLM2 read too.
    _, tokenizer = load_gguf(smollm2_folder(), SMOLLM2_GGUF, torch.float32)
    tokenizer.save_pretrained(folder)
    return folder


def build_tiny_llama(folder: Path, tokenizer_dir: Path, seed: int = 0, max_position_embeddings: int = 512) -> Path:
    """A 2-layer Llama with hidden size 32 and random weights (seeded), saved as safetensors with a tokenizer."""
    import shutil

    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=max_position_embeddings,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(folder, safe_serialization=True)
    for item in tokenizer_dir.iterdir():
        shutil.copy(item, folder / item.name)
    return folder


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory, smollm2_tokenizer_dir) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"), smollm2_tokenizer_dir)


@pytest.fixture(scope="session")
def tiny_lora_dir(tmp_path_factory, tiny_llama_dir) -> Path:
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaForCausalLM

    base = LlamaForCausalLM.from_pretrained(tiny_llama_dir)
    adapter = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    folder = tmp_path_factory.mktemp("tiny-lora")
    adapter.save_pretrained(folder, safe_serialization=True)
    return folder


def zip_folder(folder: Path, archive: Path, top: str = "checkpoint") -> Path:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, f"{top}/{path.relative_to(folder)}")
    return archive
