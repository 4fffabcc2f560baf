"""Resumable checkpoint uploads over tus 1.0.0, against the site served over real HTTP (pytest-django's live server).

The 2 GB run through gunicorn, with the web process's memory, is bench/upload.py (BENCHMARKS.md).
"""

import fcntl
import os
import shutil
import time
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from inference_workers.backends.local import check_files, unpacked_folder
from inference_workers.checkpoints import CheckpointRefused
from inference_workers.models import CheckpointUpload, LanguageModel, ModelKind, ModelRole, ModelStatus
from inference_workers.sources.resumable import do_delete_expired_uploads, partial_path

from .test_model_registration import wait_for_verdict
from .tus_client import TUS, TusClient, file_sha256

pytestmark = pytest.mark.django_db(transaction=True)

MiB = 1024**2


def padded_checkpoint_zip(tiny_llama_dir: Path, archive: Path, padding_bytes: int) -> Path:
    """The tiny Llama, stored uncompressed with a file of random bytes beside it, to reach a real upload's size."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        for path in sorted(tiny_llama_dir.iterdir()):
            zf.write(path, f"checkpoint/{path.name}")
        with zf.open("checkpoint/padding.txt", "w") as out:
            for _ in range(padding_bytes // MiB):
                out.write(os.urandom(MiB))
    return archive


def offset_after_the_drop(tus: TusClient, location: str) -> int:
    """The offset once the dropped request has written what it received: it moves past 0, then its writer's
    lock on the partial file is released (a blocking flock here waits for exactly that)."""
    deadline = time.monotonic() + 60
    while tus.offset(location) == 0:
        assert time.monotonic() < deadline, "the dropped request wrote nothing in 60 s"
        time.sleep(0.05)
    with open(partial_path(CheckpointUpload.objects.get()), "rb") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
    return tus.offset(location)


@pytest.fixture
def model():
    return LanguageModel.objects.create(name="uploaded-llama", kind=ModelKind.HF_CHECKPOINT, role=ModelRole.BASE)


@pytest.fixture
def tus(live_server, admin_client, model) -> TusClient:
    return TusClient(live_server.url, admin_client.cookies["sessionid"].value, f"/models/{model.pk}/upload/")


def create_path(model) -> str:
    return reverse("inference:upload-create", args=[model.pk])


@pytest.mark.worker
def test_an_interrupted_50_mb_upload_resumes_is_checked_and_the_worker_validates_it(
    tus, model, worker, tiny_llama_dir, tmp_path
):
    archive = padded_checkpoint_zip(tiny_llama_dir, tmp_path / "tiny-llama.zip", 40 * MiB)
    size = archive.stat().st_size
    assert size > 50 * MiB
    created = tus.create(create_path(model), archive)
    assert created.status_code == 201, created.text
    location = created.headers["Location"]

    tus.cut_off(location, archive, 0, send_bytes=20 * MiB)  # the network drops 20 MiB into the first chunk
    # Chunks of 8 MiB with their own checksums, from wherever the server says the dropped request stopped.
    done = tus.resume(location, archive, chunk_bytes=8 * MiB)
    assert done.status_code == 204, done.text
    assert int(done.headers["Upload-Offset"]) == size

    model.refresh_from_db()
    stored = Path(model.checkpoint.path)
    assert stored.stat().st_size == size and file_sha256(stored) == file_sha256(archive)
    assert CheckpointUpload.objects.get().completed_at is not None
    assert not partial_path(CheckpointUpload.objects.get()).exists()
    model = wait_for_verdict(model)
    assert model.status == ModelStatus.READY, model.status_message


def test_the_offset_survives_a_dropped_connection_and_a_wrong_offset_is_a_conflict(tus, model, tmp_path):
    archive = tmp_path / "a.zip"
    archive.write_bytes(os.urandom(6 * MiB))
    location = tus.create(create_path(model), archive).headers["Location"]
    tus.cut_off(location, archive, 0, send_bytes=2 * MiB)
    # What reached the disk counts.
    offset = offset_after_the_drop(tus, location)
    assert 0 < offset <= 2 * MiB
    wrong = tus.patch(location, offset + 1, b"x")
    assert wrong.status_code == 409 and int(wrong.headers["Upload-Offset"]) == offset
    done = tus.resume(location, archive, chunk_bytes=MiB)
    assert done.status_code == 204 and file_sha256(Path(LanguageModel.objects.get().checkpoint.path)) == file_sha256(
        archive
    )


def test_a_second_writer_is_refused_while_a_chunk_is_being_written(tus, model, tmp_path):
    archive = tmp_path / "a.zip"
    data = os.urandom(3 * MiB)
    archive.write_bytes(data)
    location = tus.create(create_path(model), archive).headers["Location"]
    slow = tus.open_patch(location, 0, len(data))
    slow.send(data[:MiB])
    deadline = time.monotonic() + 60
    while (offset := tus.offset(location)) == 0:  # the slow request holds the lock and has written
        assert time.monotonic() < deadline, "the slow request wrote nothing in 60 s"
        time.sleep(0.05)
    assert tus.patch(location, offset, b"x").status_code == 423
    assert tus.http.delete(tus.base_url + location, headers=tus.headers()).status_code == 423
    slow.send(data[MiB:])
    assert slow.getresponse().status == 204
    model.refresh_from_db()
    assert file_sha256(Path(model.checkpoint.path)) == file_sha256(archive)


def test_a_chunk_larger_than_djangos_memory_limit_is_streamed_to_disk(tus, model, tmp_path, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024  # request.body would refuse anything larger
    archive = tmp_path / "a.zip"
    archive.write_bytes(os.urandom(3 * MiB))
    location = tus.create(create_path(model), archive).headers["Location"]
    response = tus.patch(location, 0, archive.read_bytes())
    assert response.status_code == 204, response.text
    assert int(response.headers["Upload-Offset"]) == 3 * MiB


def test_a_chunk_whose_checksum_fails_is_dropped_whole(tus, model, tmp_path):
    archive = tmp_path / "a.zip"
    archive.write_bytes(os.urandom(2 * MiB))
    location = tus.create(create_path(model), archive).headers["Location"]
    assert tus.patch(location, 0, archive.read_bytes()[:MiB]).status_code == 204
    headers = tus.headers(Upload_Offset=MiB, Content_Type="application/offset+octet-stream")
    headers["Upload-Checksum"] = "sha256 " + "A" * 43 + "="
    response = tus.http.patch(tus.base_url + location, data=archive.read_bytes()[MiB:], headers=headers)
    assert response.status_code == 460
    assert tus.offset(location) == MiB


def test_a_file_whose_sha256_differs_from_the_announced_one_is_refused_before_unpacking(tus, model, tmp_path):
    archive = tmp_path / "a.zip"
    archive.write_bytes(os.urandom(MiB))
    location = tus.create(create_path(model), archive, sha256="0" * 64).headers["Location"]
    assert tus.patch(location, 0, archive.read_bytes()).status_code == 204
    model.refresh_from_db()
    assert model.checkpoint_sha256 == "0" * 64
    shutil.rmtree(unpacked_folder(model), ignore_errors=True)  # left by an earlier run's model of the same pk
    # What the worker's validation runs first (in this process here): the whole file's SHA-256.
    with pytest.raises(CheckpointRefused, match=f"SHA-256 is {file_sha256(archive)}, not the 0000"):
        check_files(model)
    assert not unpacked_folder(model).exists()


def test_an_upload_whose_last_request_died_after_writing_is_attached_by_an_empty_patch(tus, model, tmp_path):
    archive = tmp_path / "a.zip"
    archive.write_bytes(os.urandom(MiB))
    location = tus.create(create_path(model), archive).headers["Location"]
    # As if the web process had been killed between writing the last byte and attaching the file.
    partial_path(CheckpointUpload.objects.get()).write_bytes(archive.read_bytes())
    assert tus.offset(location) == MiB
    model.refresh_from_db()
    assert not model.checkpoint
    assert tus.patch(location, MiB, b"").status_code == 204
    model.refresh_from_db()
    assert file_sha256(Path(model.checkpoint.path)) == file_sha256(archive)
    again = tus.patch(location, MiB, b"")
    assert again.status_code == 409 and "complete" in again.text


def test_termination_removes_the_partial_file(tus, model, tmp_path):
    archive = tmp_path / "a.zip"
    archive.write_bytes(os.urandom(MiB))
    location = tus.create(create_path(model), archive).headers["Location"]
    assert tus.patch(location, 0, archive.read_bytes()[:1000]).status_code == 204
    upload = CheckpointUpload.objects.get()
    assert partial_path(upload).stat().st_size == 1000
    assert tus.http.delete(tus.base_url + location, headers=tus.headers()).status_code == 204
    assert not partial_path(upload).exists()
    assert tus.http.head(tus.base_url + location, headers=tus.headers()).status_code == 404


def test_an_unfinished_upload_expires_and_is_deleted_with_its_partial_file(tus, model, tmp_path, settings):
    archive = tmp_path / "a.zip"
    archive.write_bytes(os.urandom(MiB))
    created = tus.create(create_path(model), archive)
    assert "GMT" in created.headers["Upload-Expires"]
    location = created.headers["Location"]
    assert tus.patch(location, 0, archive.read_bytes()[:1000]).status_code == 204
    finished = tus.create(create_path(model), archive).headers["Location"]
    assert tus.patch(finished, 0, archive.read_bytes()).status_code == 204
    unfinished = CheckpointUpload.objects.get(completed_at__isnull=True)

    later = timezone.now() - timedelta(hours=settings.STYLEGAP_UPLOAD_EXPIRE_HOURS, minutes=1)
    CheckpointUpload.objects.update(created_at=later)
    assert tus.http.head(tus.base_url + location, headers=tus.headers()).status_code == 410
    assert do_delete_expired_uploads() == 1
    assert not partial_path(unfinished).exists()
    assert CheckpointUpload.objects.get().completed_at is not None  # the finished one stays


def test_the_server_refuses_what_the_protocol_and_the_limits_refuse(tus, model, tmp_path, settings):
    archive = tmp_path / "a.zip"
    archive.write_bytes(os.urandom(1000))
    url = tus.base_url + create_path(model)
    options = requests.options(url, timeout=30)
    assert options.headers["Tus-Version"] == "1.0.0"
    assert set(options.headers["Tus-Extension"].split(",")) == {"creation", "termination", "checksum", "expiration"}
    assert "sha256" in options.headers["Tus-Checksum-Algorithm"]

    no_version = tus.http.post(url, headers={"X-CSRFToken": tus.csrf, "Upload-Length": "1000"})
    assert no_version.status_code == 412
    no_checksum = tus.http.post(url, headers=tus.headers(Upload_Length=1000, Upload_Metadata="filename YS56aXA="))
    assert no_checksum.status_code == 400 and "sha256" in no_checksum.text
    settings.STYLEGAP_MAX_UPLOAD_BYTES = 999
    assert tus.create(create_path(model), archive).status_code == 413
    settings.STYLEGAP_MAX_UPLOAD_BYTES = 10**9
    no_csrf = tus.http.post(url, headers={**TUS, "Upload-Length": "1000"})
    assert no_csrf.status_code == 403
    api_model = LanguageModel.objects.create(
        name="api", kind=ModelKind.OPENAI_API, role=ModelRole.BASE, api_base_url="https://x.invalid", api_model_id="m"
    )
    assert tus.create(create_path(api_model), archive).status_code == 400
    assert not CheckpointUpload.objects.exists()


def test_only_admins_upload_and_only_to_their_own_uploads(tus, model, tmp_path, live_server, client, researcher):
    archive = tmp_path / "a.zip"
    archive.write_bytes(os.urandom(1000))
    location = tus.create(create_path(model), archive).headers["Location"]

    anonymous = requests.head(live_server.url + location, headers=TUS, timeout=30)
    assert anonymous.status_code == 401
    client.force_login(researcher)
    assert client.get(reverse("inference:model-upload", args=[model.pk])).status_code == 403
    rita = TusClient(live_server.url, client.cookies["sessionid"].value, f"/models/{model.pk}/")
    assert rita.create(create_path(model), archive).status_code == 403

    other_admin = get_user_model().objects.create_superuser("ada", password="a-long-test-password")
    client.force_login(other_admin)
    ada = TusClient(live_server.url, client.cookies["sessionid"].value, f"/models/{model.pk}/")
    assert ada.http.head(ada.base_url + location, headers=ada.headers()).status_code == 200  # a superuser may
    client.force_login(researcher)
    researcher.user_permissions.add(Permission.objects.get(codename="change_languagemodel"))
    rita = TusClient(live_server.url, client.cookies["sessionid"].value, f"/models/{model.pk}/")
    assert rita.patch(location, 0, archive.read_bytes()).status_code == 404  # not her upload
