"""Resumable checkpoint uploads: a tus 1.0.0 server (Core, Creation, Termination, Checksum, Expiration) in Django views.

Protocol: https://tus.io/protocols/resumable-upload (the browser's client is webapp/static/inference/upload.js).

    OPTIONS /models/uploads/            Tus-Version, Tus-Extension, Tus-Max-Size, Tus-Checksum-Algorithm
    POST    /models/<pk>/uploads/       Upload-Length, Upload-Metadata (filename, sha256): 201 with Location
    HEAD    /models/uploads/<id>/       Upload-Offset: the bytes on disk, where the client resumes
    PATCH   /models/uploads/<id>/       the bytes from Upload-Offset on (Upload-Checksum checks this chunk)
    DELETE  /models/uploads/<id>/       Termination: the partial file and the row are gone

An unfinished upload expires STYLEGAP_UPLOAD_EXPIRE_HOURS after its creation (``Upload-Expires``): it is then
refused (410), and a beat task deletes it with its partial file (``do_delete_expired_uploads``).

A PATCH body is read from the request stream through a 1 MiB buffer and written straight to the partial
file, so the web process holds at most one buffer whatever the chunk's or the file's size (Django's
DATA_UPLOAD_MAX_MEMORY_SIZE and upload handlers never see it: ``request.body`` and ``request.POST`` are never
read). A chunk cut off mid-way keeps what reached the disk, and the client resumes from there. After the last
byte the archive is attached to its model with the SHA-256 announced at creation, and the worker validates it:
the whole file's SHA-256 first (read in the worker, so no web request outlives gunicorn's timeout however large
the file), then the same checks as any upload (``checkpoints.unpack_archive``, ...).
Only accounts that may change models (admins) upload; the session and its CSRF token authenticate each request.
"""

import base64
import binascii
import fcntl
import hashlib
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation, ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from django.utils.http import http_date
from django.utils.text import get_valid_filename

from inference_workers.actions import do_request_validation
from inference_workers.backends.local import LOCAL_KINDS
from inference_workers.models import CheckpointUpload, LanguageModel

TUS_VERSION = "1.0.0"
EXTENSIONS = "creation,termination,checksum,expiration"
CHECKSUMS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "md5": hashlib.md5}
BUFFER = 1024**2
CONTENT_TYPE = "application/offset+octet-stream"
UPLOAD_PERMISSION = "inference_workers.change_languagemodel"


def partial_path(upload: CheckpointUpload) -> Path:
    """Where the bytes received so far lie: under MEDIA_ROOT (never served), on the same disk as checkpoints."""
    return Path(settings.MEDIA_ROOT) / "uploads" / f"{upload.pk}.part"


def expires_at(upload: CheckpointUpload) -> datetime:
    return upload.created_at + timedelta(hours=settings.STYLEGAP_UPLOAD_EXPIRE_HOURS)


def do_delete_expired_uploads() -> int:
    """Unfinished uploads past their expiry, deleted with their partial files; returns how many."""
    cutoff = timezone.now() - timedelta(hours=settings.STYLEGAP_UPLOAD_EXPIRE_HOURS)
    expired = list(CheckpointUpload.objects.filter(completed_at__isnull=True, created_at__lt=cutoff))
    for upload in expired:
        partial_path(upload).unlink(missing_ok=True)
        upload.delete()
    return len(expired)


def received_bytes(upload: CheckpointUpload) -> int:
    if upload.completed_at is not None:
        return upload.length
    try:
        return partial_path(upload).stat().st_size
    except FileNotFoundError:
        return 0


class Refusal(Exception):
    """A request the upload's state refuses; ``response`` says why, in the protocol's terms."""

    def __init__(self, response: HttpResponse):
        self.response = response


@contextmanager
def _sole_writer(upload: CheckpointUpload) -> Iterator[BinaryIO]:
    """The partial file, open for writing under an exclusive lock: one writer per upload, so a second PATCH (a
    client retrying too soon) or a DELETE meanwhile is refused (423), never interleaved."""
    try:
        fh = open(partial_path(upload), "r+b")  # noqa: SIM115 - closed by the with below
    except FileNotFoundError:
        raise Refusal(_tus(404, "The upload's partial file is gone; start again.")) from None
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Refusal(_tus(423, "Another request is writing to this upload; ask HEAD again shortly.")) from None
        # Finished or terminated by the request that held the lock before this one.
        if (
            os.fstat(fh.fileno()).st_nlink == 0
            or not CheckpointUpload.objects.filter(pk=upload.pk, completed_at__isnull=True).exists()
        ):
            raise Refusal(_tus(409, "This upload is complete or terminated."))
        yield fh


def _tus(status: int, message: str = "", **headers) -> HttpResponse:
    response = HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")
    response["Tus-Resumable"] = TUS_VERSION
    response["Cache-Control"] = "no-store"
    for name, value in headers.items():
        response[name.replace("_", "-")] = str(value)
    return response


def _refusal(request: HttpRequest) -> HttpResponse | None:
    """Who may upload, and which protocol version: a response when refused, None when the request may go on."""
    if not request.user.is_authenticated:
        return _tus(401, "Log in first.")
    if not request.user.has_perm(UPLOAD_PERMISSION):
        return _tus(403, "Only admins upload checkpoints.")
    if request.method != "OPTIONS" and request.headers.get("Tus-Resumable") != TUS_VERSION:
        return _tus(412, f"This server speaks tus {TUS_VERSION}.", Tus_Version=TUS_VERSION)
    return None


def parse_metadata(header: str) -> dict[str, str]:
    """``Upload-Metadata``: comma-separated ``key base64(value)`` pairs (a key alone has an empty value)."""
    pairs = {}
    for item in filter(None, (part.strip() for part in header.split(","))):
        key, _, encoded = item.partition(" ")
        try:
            pairs[key] = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise ValueError(f"Upload-Metadata: the value of {key!r} is not base64 of UTF-8 text.") from exc
    return pairs


def options(request: HttpRequest) -> HttpResponse:
    """What this server supports (tus discovery)."""
    return _tus(
        204,
        Tus_Version=TUS_VERSION,
        Tus_Extension=EXTENSIONS,
        Tus_Max_Size=settings.STYLEGAP_MAX_UPLOAD_BYTES,
        Tus_Checksum_Algorithm=",".join(CHECKSUMS),
    )


def create(request: HttpRequest, pk: int) -> HttpResponse:
    """Creation: an empty partial file for the model's archive, of the announced length and SHA-256."""
    if request.method == "OPTIONS":
        return options(request)
    if refused := _refusal(request):
        return refused
    if request.method != "POST":
        return _tus(405, "POST creates an upload.", Allow="POST, OPTIONS")
    model = get_object_or_404(LanguageModel, pk=pk)
    if model.kind not in LOCAL_KINDS:
        return _tus(400, f"{model} is an {model.get_kind_display()} model: it has no checkpoint to upload.")
    try:
        length = int(request.headers.get("Upload-Length", ""))
    except ValueError:
        return _tus(400, "Upload-Length must be a whole number of bytes.")
    try:
        metadata = parse_metadata(request.headers.get("Upload-Metadata", ""))
    except ValueError as exc:
        return _tus(400, str(exc))
    if length <= 0:
        return _tus(400, "Upload-Length must be positive.")
    if length > settings.STYLEGAP_MAX_UPLOAD_BYTES:
        return _tus(
            413, f"The file is {length:,} bytes, over the limit of {settings.STYLEGAP_MAX_UPLOAD_BYTES:,} bytes."
        )
    sha256 = metadata.get("sha256", "").strip().lower()
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        return _tus(400, "Upload-Metadata must give sha256: the whole file's SHA-256, as 64 hex digits.")
    try:
        filename = get_valid_filename(Path(metadata.get("filename", "")).name)[:200]
    except SuspiciousFileOperation:
        filename = "checkpoint"  # "", "." or ".."
    folder = Path(settings.MEDIA_ROOT) / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    if free < length:
        return _tus(507, f"The server has {free:,} bytes free, less than the file's {length:,}.")
    upload = CheckpointUpload(model=model, filename=filename, length=length, sha256=sha256, created_by=request.user)
    try:
        upload.full_clean()
    except ValidationError as exc:
        return _tus(400, "; ".join(exc.messages))
    upload.save()
    partial_path(upload).touch()
    location = reverse("inference:upload", args=[upload.pk])
    return _tus(201, Location=location, Upload_Offset=0, Upload_Expires=http_date(expires_at(upload).timestamp()))


def resource(request: HttpRequest, upload_id) -> HttpResponse:
    """HEAD (where to resume), PATCH (more bytes) and DELETE (termination) of one upload."""
    if request.method == "OPTIONS":
        return options(request)
    if refused := _refusal(request):
        return refused
    upload = CheckpointUpload.objects.select_related("model").filter(pk=upload_id).first()
    if upload is None or (upload.created_by_id != request.user.pk and not request.user.is_superuser):
        return _tus(404, "No such upload.")
    if upload.completed_at is None and timezone.now() >= expires_at(upload):
        return _tus(410, "This upload expired; start again.")
    if request.method == "HEAD":
        return _tus(200, Upload_Offset=received_bytes(upload), Upload_Length=upload.length)
    if request.method == "PATCH":
        return _patch(request, upload)
    if request.method == "DELETE":
        if upload.completed_at is not None:
            upload.delete()  # the archive is the model's now; only the record of its upload goes
            return _tus(204)
        try:
            with _sole_writer(upload):
                partial_path(upload).unlink()
                upload.delete()
        except Refusal as refusal:
            return refusal.response
        return _tus(204)
    return _tus(405, "HEAD, PATCH or DELETE.", Allow="HEAD, PATCH, DELETE, OPTIONS")


def _patch(request: HttpRequest, upload: CheckpointUpload) -> HttpResponse:
    if request.content_type != CONTENT_TYPE:
        return _tus(415, f"Content-Type must be {CONTENT_TYPE}.")
    if upload.completed_at is not None:
        return _tus(409, "This upload is complete.", Upload_Offset=upload.length)
    try:
        offset = int(request.headers.get("Upload-Offset", ""))
        content_length = int(request.META.get("CONTENT_LENGTH") or "")
    except ValueError:
        return _tus(400, "Upload-Offset and Content-Length must be whole numbers of bytes.")
    checksum = None
    if header := request.headers.get("Upload-Checksum"):
        algorithm, _, expected = header.partition(" ")
        if algorithm not in CHECKSUMS:
            return _tus(400, f"Upload-Checksum: {algorithm!r} is not one of {', '.join(CHECKSUMS)}.")
        checksum = (CHECKSUMS[algorithm](), expected.strip())
    path = partial_path(upload)
    try:
        with _sole_writer(upload) as fh:
            return _write_chunk(request, upload, fh, path, offset, content_length, checksum)
    except Refusal as refusal:
        return refusal.response


def _write_chunk(
    request: HttpRequest,
    upload: CheckpointUpload,
    fh: BinaryIO,
    path: Path,
    offset: int,
    content_length: int,
    checksum: tuple | None,
) -> HttpResponse:
    """Write the request's body at ``offset``, BUFFER bytes at a time as they arrive; attach the archive to
    its model once the last byte is in."""
    on_disk = os.fstat(fh.fileno()).st_size
    if offset != on_disk:
        message = f"Upload-Offset is {offset}, but {on_disk} bytes are on the server."
        return _tus(409, message, Upload_Offset=on_disk)
    if offset + content_length > upload.length:
        return _tus(413, f"The chunk ends past the announced length of {upload.length:,} bytes.")
    fh.seek(offset)
    left = content_length
    while left:
        try:
            data = request.read(min(BUFFER, left))
        except OSError:
            break  # the client went away: what reached the disk stays, and it resumes from there
        if not data:
            break
        fh.write(data)
        if checksum:
            checksum[0].update(data)
        left -= len(data)
    fh.flush()
    if checksum and (left or base64.b64encode(checksum[0].digest()).decode() != checksum[1]):
        fh.truncate(offset)  # a chunk that does not match its checksum is dropped whole
        return _tus(460, "Checksum mismatch: the chunk was dropped; send it again.", Upload_Offset=offset)
    received = fh.tell()
    if received == upload.length:
        # An empty PATCH at the end also lands here: it attaches a file whose last request died after writing.
        do_attach_uploaded_checkpoint(upload, path)
        return _tus(204, Upload_Offset=received)
    return _tus(204, Upload_Offset=received, Upload_Expires=http_date(expires_at(upload).timestamp()))


def do_attach_uploaded_checkpoint(upload: CheckpointUpload, path: Path) -> None:
    """Move the complete archive beside the admin's uploads, make it the model's only weights source with the
    SHA-256 announced at creation, and queue its validation: the worker checks that SHA-256 over the whole
    file (a long read, kept out of the web request), then the archive checks, then a test generation."""
    now = timezone.now()
    relative = Path("checkpoints") / f"{now:%Y}" / f"{now:%m}" / f"{upload.pk.hex[:12]}-{upload.filename}"
    target = Path(settings.MEDIA_ROOT) / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(path, target)
    with transaction.atomic():
        LanguageModel.objects.filter(pk=upload.model_id).update(
            checkpoint=str(relative),
            checkpoint_sha256=upload.sha256,
            server_path="",
            hub_repo_id="",
            hub_revision="",
            hub_commit="",
        )
        CheckpointUpload.objects.filter(pk=upload.pk).update(completed_at=now)
        upload.completed_at = now
        do_request_validation(LanguageModel.objects.get(pk=upload.model_id))
