"""A checkpoint on the worker's disk is accepted only inside the directories STYLEGAP_CHECKPOINT_DIRS lists."""

import pytest
from django.urls import reverse

from inference_workers.backends.local import SMOLLM2_GGUF, check_files, smollm2_folder
from inference_workers.checkpoints import CheckpointRefused
from inference_workers.models import LanguageModel, ModelKind, ModelRole

from .test_model_registration import ADD_URL

pytestmark = pytest.mark.django_db


@pytest.fixture
def allowed(tmp_path, settings):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    settings.STYLEGAP_CHECKPOINT_DIRS = [str(folder)]
    return folder


def post(admin_client, name, path, **extra):
    data = {"name": name, "kind": "hf_checkpoint", "role": "base", "server_path": str(path), **extra}
    return admin_client.post(reverse(ADD_URL), data)


def test_a_folder_inside_a_listed_directory_is_accepted(admin_client, allowed):
    (allowed / "llama").mkdir()
    response = post(admin_client, "inside", allowed / "llama")
    assert response.status_code == 302, response.content.decode()[:2000]
    assert LanguageModel.objects.get(name="inside").server_path == str(allowed / "llama")


@pytest.mark.parametrize("how", ["outside", "climbing", "symlink", "relative"])
def test_a_folder_outside_the_listed_directories_is_refused_and_nothing_is_saved(admin_client, allowed, tmp_path, how):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    path = {
        "outside": outside,
        "climbing": f"{allowed}/../elsewhere",
        "symlink": allowed / "link",
        "relative": "checkpoints/llama",
    }[how]
    if how == "symlink":
        (allowed / "link").symlink_to(outside)
    response = post(admin_client, f"bad-{how}", path)
    assert response.status_code == 200
    page = response.content.decode()
    assert ("must be absolute" if how == "relative" else "outside the checkpoint directories") in page
    assert not LanguageModel.objects.filter(name=f"bad-{how}").exists()


def test_the_packaged_smollm2_folder_stays_allowed(admin_client, allowed):
    response = post(admin_client, "smollm2", smollm2_folder(), kind="gguf", gguf_file=SMOLLM2_GGUF)
    assert response.status_code == 302, response.content.decode()[:2000]


def test_the_worker_checks_again_a_path_saved_before_the_list_changed(allowed, tmp_path):
    # Registered while /elsewhere was allowed; an admin has since narrowed the list.
    model = LanguageModel.objects.create(
        name="stale", kind=ModelKind.HF_CHECKPOINT, role=ModelRole.BASE, server_path=str(tmp_path)
    )
    with pytest.raises(CheckpointRefused, match="STYLEGAP_CHECKPOINT_DIRS"):
        check_files(model)
