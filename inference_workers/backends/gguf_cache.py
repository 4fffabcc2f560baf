"""GGUF files converted once to safetensors on the worker's disk, so later loads skip the conversion.

transformers loads a GGUF file by parsing its metadata in Python (twice: once for the tokenizer, once
for the weights), building a tensor-name map for every tensor and dequantizing each one: about 35 s for
SmolLM2-135M's 100 MB file on a CPU of the test machines, paid by every worker process that loads it.
The first load converts: the dequantized weights, in the dtype the worker loads them in, are written as
safetensors beside the tokenizer, chat template and configs that transformers read from the file. Later
loads, by any worker process of the machine, read that folder (a fresh process has SmolLM2 ready in
5.6 s instead of 37 s; ``python bench/model_load.py``).

The folder is keyed by the file's SHA-256, the dtype and the transformers version, so a changed file,
another dtype or another converter gets a folder of its own. A conversion is written into a temporary
folder and renamed into place, its marker written last, while a lock file is held: workers that load the
same file at once convert it once (the others wait, then read the folder), and no one reads half a
folder. Nothing here is ever unpickled: the folder is read with ``use_safetensors=True`` and without
remote code, as any checkpoint. The conversions take at most ``STYLEGAP_CONVERTED_MAX_BYTES`` of disk:
the least recently used are removed to make room for a new one. When a conversion would not fit (over
that limit on its own, or too little free disk), or the folder cannot be written or read, the model is
used as transformers loaded it from the GGUF file and the reason is logged. The folders can be deleted
at any time.
"""

import contextlib
import copy
import fcntl
import json
import logging
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings

from inference_workers import checkpoints

logger = logging.getLogger(__name__)

MARKER = "converted.json"
WEIGHTS = "model.safetensors"
# Room left on the disk after a conversion is written.
FREE_DISK_MARGIN = 1024**3

# (device, inode, size, mtime) of a file -> its SHA-256, so a process hashes each file once.
_DIGESTS: dict[tuple[int, int, int, int], str] = {}


def file_sha256(path: Path) -> str:
    """``checkpoints.file_sha256``, computed once per file version and process."""
    stat = path.stat()
    key = (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
    if key not in _DIGESTS:
        _DIGESTS[key] = checkpoints.file_sha256(path)
    return _DIGESTS[key]


def converted_folder(gguf_path: Path, dtype) -> Path:
    """Where the conversion of this file, in this dtype, by this transformers version is kept."""
    import transformers

    dtype_name = str(dtype).removeprefix("torch.")
    key = f"{file_sha256(gguf_path)}-{dtype_name}-transformers-{transformers.__version__}"
    return Path(settings.STYLEGAP_CONVERTED_DIR) / key


def is_complete(folder: Path) -> bool:
    return (folder / MARKER).is_file()


def load_gguf(folder: Path, gguf_file: str, dtype):
    """The model and tokenizer of ``folder / gguf_file``: from its converted folder when there is one,
    else from the GGUF file, converting it for the next load (see the module's docstring)."""
    source = Path(folder) / gguf_file
    target = converted_folder(source, dtype)
    if (loaded := _load_converted(target, dtype)) is not None:
        return loaded
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        lock = open(target.parent / f"{target.name}.lock", "a")  # noqa: SIM115 - closed by the with below
    except OSError as exc:
        logger.warning(
            "GGUF conversions cannot be kept in %s (%s); loading %s from the file", target.parent, exc, gguf_file
        )
        return load_from_gguf(folder, gguf_file, dtype)
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        # Another worker may have converted it while this one waited for the lock.
        if (loaded := _load_converted(target, dtype)) is not None:
            return loaded
        model, tokenizer = load_from_gguf(folder, gguf_file, dtype)
        _store(model, tokenizer, target, source)
        return model, tokenizer


def load_from_gguf(folder: Path, gguf_file: str, dtype):
    """transformers' own GGUF load: parse, map and dequantize every tensor (the slow path)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    common = {"trust_remote_code": False, "gguf_file": gguf_file}
    tokenizer = AutoTokenizer.from_pretrained(str(folder), **common)
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=dtype, **common)
    return model, tokenizer


def _load_converted(target: Path, dtype):
    """The converted folder's model and tokenizer; None if there is no complete conversion, or if it cannot
    be read (the folder then removed)."""
    if not is_complete(target):
        return None
    from safetensors import SafetensorError
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(target), trust_remote_code=False)
        model = AutoModelForCausalLM.from_pretrained(
            str(target), dtype=dtype, use_safetensors=True, trust_remote_code=False
        )
    # What a damaged folder raises (a file missing, cut short or garbled: OSError, a JSON or config
    # ValueError, SafetensorError): convert again. Anything else (out of memory, say) is not the
    # folder's fault, and is raised with the conversion kept.
    except (OSError, ValueError, SafetensorError) as exc:
        logger.warning("The converted GGUF folder %s could not be read (%s); converting again", target, exc)
        shutil.rmtree(target, ignore_errors=True)
        return None
    with contextlib.suppress(OSError):  # a read-only folder is still read
        os.utime(target / MARKER)  # the marker's time is the conversion's last use (see _make_room)
    return model, tokenizer


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())


def _make_room(root: Path, keep: Path, size: int) -> bool:
    """Remove the least recently used conversions until ``size`` more bytes fit in
    STYLEGAP_CONVERTED_MAX_BYTES; False where even removing all of them would not make room."""
    limit = settings.STYLEGAP_CONVERTED_MAX_BYTES
    if size > limit:
        return False
    kept = []
    for folder in root.iterdir():
        if folder != keep and folder.is_dir() and is_complete(folder):
            try:
                kept.append(((folder / MARKER).stat().st_mtime, folder, _folder_bytes(folder)))
            except OSError:
                continue  # removed by another worker meanwhile
    kept.sort()
    total = sum(n for _, _, n in kept)
    while kept and total + size > limit:
        _, folder, n = kept.pop(0)
        logger.info("Removing the least recently used GGUF conversion %s (%s bytes)", folder.name, f"{n:,}")
        shutil.rmtree(folder, ignore_errors=True)
        total -= n
    return True


def _weight_bytes(model) -> int:
    seen, total = set(), 0
    for tensor in model.state_dict().values():
        if tensor.data_ptr() not in seen:  # tied weights count once, as safetensors writes them once
            seen.add(tensor.data_ptr())
            total += tensor.numel() * tensor.element_size()
    return total


def _store(model, tokenizer, target: Path, source: Path) -> bool:
    """Write the conversion into ``target`` (the caller holds its lock); False, logged, where it is not kept."""
    from safetensors.torch import save_model

    size = _weight_bytes(model)
    root = target.parent
    if not _make_room(root, target, size):
        logger.info(
            "%s: its %s bytes of converted weights are over STYLEGAP_CONVERTED_MAX_BYTES; not kept",
            source.name,
            f"{size:,}",
        )
        return False
    free = shutil.disk_usage(root).free
    if free < size + FREE_DISK_MARGIN:
        logger.warning("%s: %s bytes free in %s, too few to keep its conversion", source.name, f"{free:,}", root)
        return False
    shutil.rmtree(target, ignore_errors=True)  # a folder without its marker is not a conversion
    for left in root.glob(f".{target.name}.*"):  # a conversion cut short by a killed worker (this key's lock is ours)
        shutil.rmtree(left, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{target.name}."))
    try:
        save_model(model, str(tmp / WEIGHTS), metadata={"format": "pt"})
        config = copy.deepcopy(model.config)
        if hasattr(config, "quantization_config"):
            del config.quantization_config  # the weights are plain tensors now
        config.save_pretrained(tmp)
        model.generation_config.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        marker = {
            "source": source.name,
            "sha256": file_sha256(source),
            "weight_bytes": size,
            "converted_at": datetime.now(UTC).isoformat(),
        }
        (tmp / MARKER).write_text(json.dumps(marker, indent=2) + "\n")
        os.rename(tmp, target)
    except Exception as exc:  # a full disk, a read-only folder: the model loaded from the file still serves
        logger.warning("%s: its conversion could not be written to %s (%s); not kept", source.name, root, exc)
        shutil.rmtree(tmp, ignore_errors=True)
        return False
    logger.info("%s converted to safetensors in %s for the next load", source.name, target)
    return True
