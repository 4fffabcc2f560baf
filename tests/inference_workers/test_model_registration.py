"""An admin registers models; a real worker validates each, and it becomes ready or is refused in plain words."""

import json
import os
import shutil
import zipfile

import pytest
from django.urls import reverse

from inference_workers.backends.local import SMOLLM2_GGUF, smollm2_folder
from inference_workers.models import LanguageModel, ModelStatus
from tests.waiting import wait_advancing

from .chat_server import ChatServer
from .conftest import TEST_API_KEY_ENV, zip_folder

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

ADD_URL = "admin:inference_workers_languagemodel_add"


def register(admin_client, **fields) -> LanguageModel:
    data = {"role": "imitation", **fields}
    response = admin_client.post(reverse(ADD_URL), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    return LanguageModel.objects.get(name=fields["name"])


def wait_for_verdict(model: LanguageModel) -> LanguageModel:
    """Wait while the model's validation advances (status, message, bytes downloaded) until it is ready or
    refused; fails only when nothing changes for five minutes."""

    def reading():
        return (
            LanguageModel.objects.filter(pk=model.pk)
            .values_list("status", "status_message", "download_done_bytes")
            .get()
        )

    wait_advancing(reading, lambda state: state[0] in {ModelStatus.READY, ModelStatus.REFUSED}, f"{model} validated")
    model.refresh_from_db()
    return model


def test_an_uploaded_checkpoint_and_a_lora_adapter_over_it_become_ready(
    admin_client, worker, tmp_path, tiny_llama_dir, tiny_lora_dir
):
    archive = zip_folder(tiny_llama_dir, tmp_path / "tiny-llama.zip")
    with open(archive, "rb") as fh:
        base = register(
            admin_client,
            name="tiny-llama",
            kind="hf_checkpoint",
            role="base",
            checkpoint=fh,
            base_model_name="Llama (random)",
            parameter_count="1600000",
        )
    base = wait_for_verdict(base)
    assert base.status == ModelStatus.READY, base.status_message
    assert "test generation answered" in base.status_message

    adapter_zip = zip_folder(tiny_lora_dir, tmp_path / "tiny-lora.zip", top="adapter")
    with open(adapter_zip, "rb") as fh:
        adapter = register(
            admin_client,
            name="tiny-lora",
            kind="lora",
            base=str(base.pk),
            checkpoint=fh,
            imitation_data_source="ShareGPT",
            imitation_data_tokens="1000",
        )
    adapter = wait_for_verdict(adapter)
    assert adapter.status == ModelStatus.READY, adapter.status_message


def test_smollm2_as_gguf_and_an_api_model_become_ready(admin_client, worker):
    gguf = register(
        admin_client, name="smollm2", kind="gguf", server_path=str(smollm2_folder()), gguf_file=SMOLLM2_GGUF
    )
    with ChatServer(os.environ[TEST_API_KEY_ENV], failures=[429]) as server:
        api = register(
            admin_client,
            name="gpt-test",
            kind="openai_api",
            role="proprietary",
            api_base_url=server.base_url,
            api_model_id="gpt-test",
            api_key_env=TEST_API_KEY_ENV,
        )
        api = wait_for_verdict(api)
    assert api.status == ModelStatus.READY, api.status_message
    assert server.statuses == [429, 200]
    gguf = wait_for_verdict(gguf)
    assert gguf.status == ModelStatus.READY, gguf.status_message


def _unsafe_archive(tmp_path, tiny_llama_dir, how: str):
    folder = shutil.copytree(tiny_llama_dir, tmp_path / how)
    archive = tmp_path / f"{how}.zip"
    if how == "pickle":
        (folder / "pytorch_model.bin").write_bytes(b"\x80\x04\x95pickle")
        for weights in folder.glob("*.safetensors"):
            weights.unlink()
    elif how == "auto_map":
        config = json.loads((folder / "config.json").read_text())
        config["auto_map"] = {"AutoModelForCausalLM": "modeling_evil.Evil"}
        (folder / "config.json").write_text(json.dumps(config))
    zip_folder(folder, archive)
    if how == "traversal":
        with zipfile.ZipFile(archive, "a") as zf:
            zf.writestr("checkpoint/../../../escaped.txt", "gotcha")
    return archive


@pytest.mark.parametrize(
    ("how", "words"),
    [
        ("pickle", "pickle-based file"),
        ("traversal", "climbs out of its folder"),
        ("auto_map", "auto_map"),
    ],
)
def test_unsafe_checkpoints_are_refused_and_the_admin_sees_why(
    admin_client, worker, tmp_path, tiny_llama_dir, how, words
):
    archive = _unsafe_archive(tmp_path, tiny_llama_dir, how)
    with open(archive, "rb") as fh:
        model = register(admin_client, name=f"unsafe-{how}", kind="hf_checkpoint", checkpoint=fh)
    model = wait_for_verdict(model)
    assert model.status == ModelStatus.REFUSED
    assert words in model.status_message
    page = admin_client.get(reverse("admin:inference_workers_languagemodel_change", args=[model.pk]))
    assert words in page.content.decode()
    assert not (tmp_path.parent / "escaped.txt").exists()
