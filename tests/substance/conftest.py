"""Substance fixtures: SmolLM2-135M-Instruct (the packaged GGUF) and the tiny random Llama of the inference tests."""

import pytest

from inference_workers.backends.local import SMOLLM2_GGUF, smollm2_folder
from inference_workers.models import ModelKind, ModelRole
from tests import factories
from tests.inference_workers.conftest import smollm2_tokenizer_dir, tiny_llama_dir  # noqa: F401 - fixtures


@pytest.fixture
def smollm2(db):
    return factories.model(
        name="smollm2-135m-instruct",
        kind=ModelKind.GGUF,
        role=ModelRole.BASE,
        server_path=str(smollm2_folder()),
        gguf_file=SMOLLM2_GGUF,
        parameter_count=135_000_000,
    )


@pytest.fixture
def tiny_llama(db, tiny_llama_dir):  # noqa: F811 - the imported fixture
    return factories.model(kind=ModelKind.HF_CHECKPOINT, role=ModelRole.IMITATION, server_path=str(tiny_llama_dir))
