"""Where a registered model's weights live on the worker, and how each kind is checked before use."""

import os
import shutil
from pathlib import Path

from django.conf import settings

from inference_workers import checkpoints
from inference_workers.backends.local import WeightsSpec
from inference_workers.models import LanguageModel, ModelKind


def unpacked_folder(model: LanguageModel) -> Path:
    """Uploads are unpacked here, one folder per model, outside anything served over HTTP."""
    return Path(settings.MEDIA_ROOT) / "models" / str(model.pk)


def archive_limits() -> checkpoints.ArchiveLimits:
    return checkpoints.ArchiveLimits(
        max_upload_bytes=settings.STYLEGAP_MAX_UPLOAD_BYTES,
        max_unpacked_bytes=settings.STYLEGAP_MAX_UNPACKED_BYTES,
        max_ratio=settings.STYLEGAP_MAX_UNPACK_RATIO,
        max_members=settings.STYLEGAP_MAX_ARCHIVE_MEMBERS,
    )


def weights_folder(model: LanguageModel) -> Path:
    if model.server_path:
        return Path(model.server_path)
    return checkpoints.checkpoint_root(unpacked_folder(model))


def gguf_name(model: LanguageModel) -> str:
    if model.gguf_file:
        return model.gguf_file
    return Path(model.checkpoint.name).name if model.checkpoint else ""


def weights_spec(model: LanguageModel) -> WeightsSpec:
    if model.kind == ModelKind.LORA:
        return WeightsSpec(folder=weights_folder(model), base=weights_spec(model.base))
    if model.kind == ModelKind.GGUF:
        return WeightsSpec(folder=weights_folder(model), gguf_file=gguf_name(model))
    return WeightsSpec(folder=weights_folder(model))


def cache_key(model: LanguageModel) -> tuple:
    """A re-uploaded checkpoint gets a new file name, hence a new key: a stale copy is never served."""
    base = cache_key(model.base) if model.base_id else None
    return (model.pk, model.checkpoint.name if model.checkpoint else "", model.server_path, model.gguf_file, base)


def prepare_upload(model: LanguageModel) -> None:
    """Unpack (or, for a bare GGUF file, link) the uploaded checkpoint into the model's folder."""
    if not model.checkpoint:
        raise checkpoints.CheckpointRefused("Upload a checkpoint or give a server path.")
    upload = Path(model.checkpoint.path)
    dest = unpacked_folder(model)
    shutil.rmtree(dest, ignore_errors=True)
    limits = archive_limits()
    if model.kind == ModelKind.GGUF and checkpoints.archive_kind(upload) is None:
        if upload.stat().st_size > limits.max_upload_bytes:
            raise checkpoints.CheckpointRefused(
                f"The upload is over the limit of {limits.max_upload_bytes:,} bytes (STYLEGAP_MAX_UPLOAD_BYTES)."
            )
        dest.mkdir(parents=True)
        try:
            os.link(upload, dest / upload.name)
        except OSError:
            shutil.copyfile(upload, dest / upload.name)
        return
    checkpoints.unpack_archive(upload, dest, limits)


def check_files(model: LanguageModel) -> None:
    """Refuse (CheckpointRefused) anything unsafe or incomplete; unpack uploads first."""
    if model.kind not in {ModelKind.HF_CHECKPOINT, ModelKind.GGUF, ModelKind.LORA}:
        return
    if not model.server_path:
        prepare_upload(model)
    folder = weights_folder(model)
    if not folder.is_dir():
        raise checkpoints.CheckpointRefused(f"The folder {folder} does not exist on the worker.")
    if model.kind == ModelKind.HF_CHECKPOINT:
        checkpoints.validate_hf_checkpoint(folder)
    elif model.kind == ModelKind.GGUF:
        checkpoints.validate_gguf_checkpoint(folder, gguf_name(model))
    else:
        if model.base is None or model.base.status != "ready" or not model.base.is_local:
            raise checkpoints.CheckpointRefused("A LoRA adapter needs a local base model that is ready.")
        checkpoints.validate_lora_adapter(folder)
