"""Checkpoints from the Hugging Face Hub, fetched with huggingface_hub from a local fake Hub that speaks its file API.

The first tests call the worker's download functions in this process; the last ones register models through
the admin and let the real worker download and validate them.
"""

import json

import pytest
from django.urls import reverse

from inference_workers.checkpoints import CheckpointRefused, validate_hf_checkpoint
from inference_workers.models import LanguageModel, ModelStatus
from inference_workers.sources import hub

from .conftest import FAKE_HUB_TOKEN
from .fake_hub import folder_files
from .test_model_registration import ADD_URL, register, wait_for_verdict

PICKLE = b"\x80\x04\x95 pickled weights"


def tiny_repo(tiny_llama_dir) -> dict[str, bytes]:
    """The tiny Llama's files, plus what a real repo carries beside them and must never be fetched."""
    return {
        **folder_files(tiny_llama_dir),
        "pytorch_model.bin": PICKLE,
        "training_args.bin": PICKLE,
        "README.md": b"# tiny llama\n",
        "modeling_evil.py": b"import os\n",
    }


def test_a_branch_is_pinned_to_its_commit_and_only_allowed_files_are_fetched(fake_hub, tiny_llama_dir, tmp_path):
    files = tiny_repo(tiny_llama_dir)
    commit = fake_hub.add_repo("lab/tiny-llama", files)
    snapshot = hub.resolve("lab/tiny-llama", "main", hub.allow_patterns())
    assert snapshot.commit == commit
    reports = []
    hub.download("lab/tiny-llama", snapshot, tmp_path / "ckpt", lambda done, total: reports.append((done, total)))

    wanted = {
        n
        for n in files
        if n.endswith((".safetensors", ".json", ".jinja")) or n in ("tokenizer.model", "merges.txt", "vocab.txt")
    }
    assert "model.safetensors" in wanted and "config.json" in wanted
    assert fake_hub.fetched() == set(snapshot.files) == wanted
    on_disk = {p.name for p in (tmp_path / "ckpt").iterdir() if not p.name.startswith(".")}
    assert on_disk == wanted
    assert not (tmp_path / "ckpt" / "pytorch_model.bin").exists()
    # Every file was fetched at the commit, never at the moving branch.
    assert all(f"/resolve/{commit}/" in path for method, path in fake_hub.requests if "/resolve/" in path)
    total = sum(len(files[n]) for n in wanted)
    assert reports[0] == (0, total) and reports[-1] == (total, total)
    validate_hf_checkpoint(tmp_path / "ckpt")


def test_validating_again_at_the_same_commit_fetches_nothing_again(fake_hub, tiny_llama_dir, tmp_path):
    fake_hub.add_repo("lab/tiny-llama", folder_files(tiny_llama_dir))
    snapshot = hub.resolve("lab/tiny-llama", "main", hub.allow_patterns())
    hub.download("lab/tiny-llama", snapshot, tmp_path / "ckpt", lambda done, total: None)
    gets = [r for r in fake_hub.requests if r[0] == "GET" and "/resolve/" in r[1]]
    reports = []
    hub.download("lab/tiny-llama", snapshot, tmp_path / "ckpt", lambda done, total: reports.append((done, total)))
    assert [r for r in fake_hub.requests if r[0] == "GET" and "/resolve/" in r[1]] == gets
    total = sum(snapshot.files.values())
    assert reports[-1] == (total, total)


def test_a_repo_holding_only_pytorch_model_bin_is_refused_before_any_download(fake_hub):
    config = json.dumps({"model_type": "llama"}).encode()
    fake_hub.add_repo("lab/pickled", {"config.json": config, "pytorch_model.bin": PICKLE})
    with pytest.raises(CheckpointRefused) as refused:
        hub.resolve("lab/pickled", "main", hub.allow_patterns())
    message = str(refused.value)
    assert "pytorch_model.bin" in message and "pickle" in message and "safetensors" in message
    assert fake_hub.fetched() == set()


def test_a_private_repo_needs_the_token_from_the_named_variable(fake_hub, tiny_llama_dir, monkeypatch, settings):
    fake_hub.add_repo("lab/private", folder_files(tiny_llama_dir), token=FAKE_HUB_TOKEN)
    assert hub.resolve("lab/private", "main", hub.allow_patterns()).files
    monkeypatch.delenv(settings.STYLEGAP_HF_TOKEN_ENV)
    with pytest.raises(CheckpointRefused, match=f"private or gated.*\\${settings.STYLEGAP_HF_TOKEN_ENV}"):
        hub.resolve("lab/private", "main", hub.allow_patterns())


def test_an_unknown_revision_and_a_malformed_repo_id_are_refused_in_words(fake_hub, tiny_llama_dir):
    fake_hub.add_repo("lab/tiny-llama", folder_files(tiny_llama_dir))
    with pytest.raises(CheckpointRefused, match="has no revision 'v9'"):
        hub.resolve("lab/tiny-llama", "v9", hub.allow_patterns())
    with pytest.raises(CheckpointRefused, match="not a Hub repo id"):
        hub.resolve("../../etc", "main", hub.allow_patterns())


def test_a_file_name_that_climbs_out_of_the_folder_is_refused(fake_hub, tiny_llama_dir):
    fake_hub.add_repo("lab/escape", {**folder_files(tiny_llama_dir), "../escape.safetensors": b"x"})
    with pytest.raises(CheckpointRefused, match="climbs out"):
        hub.resolve("lab/escape", "main", hub.allow_patterns())


@pytest.mark.django_db
def test_the_admin_form_needs_a_revision_and_one_source(admin_client):
    response = admin_client.post(
        reverse(ADD_URL), {"name": "no-rev", "kind": "hf_checkpoint", "role": "base", "hub_repo_id": "lab/tiny"}
    )
    assert response.status_code == 200
    assert "Pin a revision" in response.content.decode()
    response = admin_client.post(
        reverse(ADD_URL),
        {
            "name": "two",
            "kind": "hf_checkpoint",
            "role": "base",
            "hub_repo_id": "lab/tiny",
            "hub_revision": "main",
            "server_path": "/srv/checkpoints/x",
        },
    )
    assert "Give one source for the weights" in response.content.decode()
    assert not LanguageModel.objects.exists()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_worker_downloads_a_hub_model_that_becomes_ready_and_refuses_a_pickled_one(
    admin_client, worker, fake_hub, tiny_llama_dir
):
    commit = fake_hub.add_repo("lab/tiny-llama", tiny_repo(tiny_llama_dir), branch="release")
    model = register(
        admin_client, name="hub-llama", kind="hf_checkpoint", hub_repo_id="lab/tiny-llama", hub_revision="release"
    )
    model = wait_for_verdict(model)
    assert model.status == ModelStatus.READY, model.status_message
    assert model.hub_commit == commit
    assert model.download_total_bytes > 0 and model.download_done_bytes == model.download_total_bytes
    assert "pytorch_model.bin" not in fake_hub.fetched()
    page = admin_client.get(reverse("inference:model-detail", args=[model.pk])).content.decode()
    assert commit in page

    fake_hub.add_repo("lab/pickled", {"config.json": b'{"model_type": "llama"}', "pytorch_model.bin": PICKLE})
    pickled = wait_for_verdict(
        register(admin_client, name="hub-pickled", kind="hf_checkpoint", hub_repo_id="lab/pickled", hub_revision="main")
    )
    assert pickled.status == ModelStatus.REFUSED
    assert "holds its weights only as pytorch_model.bin" in pickled.status_message
    status = admin_client.get(reverse("inference:model-status", args=[pickled.pk])).json()
    assert status["finished"] and "pytorch_model.bin" in status["status_message"]
