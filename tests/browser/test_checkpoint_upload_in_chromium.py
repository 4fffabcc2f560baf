"""Issue 17, item 5, in Chromium: the upload page's own scripts (upload.js, sha256.js) hash a checkpoint archive,
send it over tus in chunks, get past a chunk the network drops, and the server stores exactly the file chosen."""

import hashlib
import os
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.urls import reverse

from inference_workers import views
from inference_workers.models import CheckpointUpload, LanguageModel, ModelKind, ModelRole

MiB = 1024**2


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_upload_page_resumes_after_a_dropped_chunk(chromium, live_server, admin_client, tmp_path, monkeypatch):
    monkeypatch.setattr(views, "UPLOAD_CHUNK_BYTES", MiB)  # several chunks from a small file
    model = LanguageModel.objects.create(name="browser-llama", kind=ModelKind.HF_CHECKPOINT, role=ModelRole.BASE)
    archive = tmp_path / "checkpoint.zip"
    archive.write_bytes(os.urandom(5 * MiB + 12345))

    context = chromium.new_context()
    host = urlsplit(live_server.url).hostname
    context.add_cookies(
        [{"name": "sessionid", "value": admin_client.cookies["sessionid"].value, "domain": host, "path": "/"}]
    )
    page = context.new_page()
    patches = []

    def drop_the_second_chunk(route):
        patches.append(route.request.headers.get("upload-offset"))
        if len(patches) == 2:
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route(
        "**/models/uploads/**",
        lambda route: drop_the_second_chunk(route) if route.request.method == "PATCH" else route.continue_(),
    )
    page.goto(live_server.url + reverse("inference:model-upload", args=[model.pk]))
    page.set_input_files("#resumable-upload input[type=file]", str(archive))
    page.click("#resumable-upload button")
    # Wait on progress: the model's checkpoint is set once the last chunk's checksum passed; fail only when no
    # chunk was sent for 120 s. Waiting through Playwright lets it run the route handler meanwhile.
    sent, last_chunk_at = 0, time.monotonic()
    while not LanguageModel.objects.get(pk=model.pk).checkpoint:
        page.wait_for_timeout(200)
        if len(patches) != sent:
            sent, last_chunk_at = len(patches), time.monotonic()
        assert time.monotonic() - last_chunk_at < 120, f"no chunk sent for 120 s ({sent} sent)"
    stored = Path(LanguageModel.objects.get(pk=model.pk).checkpoint.path)
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == hashlib.sha256(archive.read_bytes()).hexdigest()
    assert CheckpointUpload.objects.get().completed_at is not None
    # The dropped second chunk was sent again from the offset the server reported, not from the start.
    assert patches[1] == patches[2] == str(MiB)
    assert len(patches) == 7  # six chunks, one of them twice
    context.close()
