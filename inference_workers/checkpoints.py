"""Checkpoint safety: what an uploaded archive or a folder of weights must be before anything loads it.

Uploads are hostile files. A zip is unpacked only after every member is checked (no absolute
paths, no ``..``, no links or devices); a tar is streamed once and each member is checked before its
data is read. Unpacking counts the bytes actually written, so a decompression bomb stops at the size
limit whatever its headers claim, and a tar member whose header already passes the limit is refused
before any of it is decompressed. A checkpoint holds weights as safetensors or GGUF only:
pickle-based files can run code when loaded, and so can a config with ``auto_map`` (it names
Python classes to import), so both are refused.
"""

import hashlib
import json
import shutil
import stat
import struct
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

PICKLE_SUFFIXES = {".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib", ".npy", ".npz"}
CONFIG_FILES = ("config.json", "adapter_config.json", "tokenizer_config.json", "generation_config.json")
GGUF_MAGIC = b"GGUF"
SAFETENSORS_MAX_HEADER = 100 * 1024**2
COPY_CHUNK = 1024**2


class CheckpointRefused(Exception):
    """A checkpoint that must not be loaded; the message is shown to the admin as is."""


@dataclass(frozen=True)
class ArchiveLimits:
    max_upload_bytes: int
    max_unpacked_bytes: int
    max_ratio: float
    max_members: int


MAX_TAR_HEADER_BYTES = 1024**2


class _CappedTarInfo(tarfile.TarInfo):
    """A tar header whose extended parts (pax records, GNU long names) are refused over
    ``MAX_TAR_HEADER_BYTES`` before tarfile reads them: it reads each one whole into memory, whatever
    size the header declares."""

    EXTENDED = {tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE, tarfile.GNUTYPE_LONGNAME,
                tarfile.GNUTYPE_LONGLINK}  # fmt: skip

    def _proc_member(self, tarfile_):
        if self.type in self.EXTENDED and self.size > MAX_TAR_HEADER_BYTES:
            raise CheckpointRefused(
                f"The archive has an extended tar header of {self.size:,} bytes (at most "
                f"{MAX_TAR_HEADER_BYTES:,}); refused."
            )
        return super()._proc_member(tarfile_)


def _open_tar(path: Path) -> tarfile.TarFile:
    return tarfile.open(path, "r|*", tarinfo=_CappedTarInfo)


def archive_kind(path: Path) -> str | None:
    """``zip``, ``tar`` or None (not an archive), judged from the content, not the name. A tar whose first
    header is over the limits raises CheckpointRefused."""
    if zipfile.is_zipfile(path):
        return "zip"
    try:
        with _open_tar(path) as tf:
            tf.next()
        return "tar"
    except (OSError, tarfile.TarError, EOFError):
        return None


def check_member_name(name: str) -> None:
    if "\\" in name or name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise CheckpointRefused(f"The archive holds an absolute or non-portable path ({name!r}); refused.")
    if ".." in PurePosixPath(name).parts:
        raise CheckpointRefused(f"The archive holds a path that climbs out of its folder ({name!r}); refused.")


def unpack_archive(archive: Path, dest: Path, limits: ArchiveLimits) -> None:
    """Check every member of a zip or tar archive, then unpack it into ``dest`` (which must not exist).

    Refused: an upload over ``max_upload_bytes``; absolute or ``..`` paths; symlinks, hard links and
    devices; more than ``max_members`` members; more than ``max_unpacked_bytes`` written in all, or
    written bytes over ``max_ratio`` times the archive's size (a decompression bomb).
    """
    size = archive.stat().st_size
    if size > limits.max_upload_bytes:
        raise CheckpointRefused(
            f"The upload is {size:,} bytes, over the limit of {limits.max_upload_bytes:,} bytes "
            "(STYLEGAP_MAX_UPLOAD_BYTES)."
        )
    budget = min(limits.max_unpacked_bytes, int(max(size, 1) * limits.max_ratio))
    kind = archive_kind(archive)
    if kind is None:
        raise CheckpointRefused("The upload is neither a .zip nor a .tar(.gz) archive.")
    dest.mkdir(parents=True)
    try:
        if kind == "zip":
            _unpack_zip(archive, dest, limits, budget)
        else:
            _unpack_tar(archive, dest, limits, budget)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise


def _bomb_message(budget: int, limits: ArchiveLimits) -> str:
    return (
        f"The archive unpacks to more than {budget:,} bytes (limits: {limits.max_unpacked_bytes:,} bytes in all, "
        f"{limits.max_ratio:g} times the archive's size): it looks like a decompression bomb; refused."
    )


def _copy_limited(src, target: Path, written: int, budget: int, limits: ArchiveLimits) -> int:
    with open(target, "wb") as out:
        while chunk := src.read(COPY_CHUNK):
            written += len(chunk)
            if written > budget:
                raise CheckpointRefused(_bomb_message(budget, limits))
            out.write(chunk)
    return written


def _unpack_zip(archive: Path, dest: Path, limits: ArchiveLimits, budget: int) -> None:
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        if len(infos) > limits.max_members:
            limit = limits.max_members
            raise CheckpointRefused(f"The archive holds {len(infos):,} files, over the limit of {limit:,}.")
        for info in infos:
            check_member_name(info.filename)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise CheckpointRefused(f"The archive holds a symbolic link ({info.filename!r}); refused.")
            # Zips written without Unix attributes carry permission bits but no file type: those are files.
            if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
                raise CheckpointRefused(f"The archive holds a special file ({info.filename!r}); refused.")
        declared = sum(i.file_size for i in infos)
        if declared > budget:
            raise CheckpointRefused(_bomb_message(budget, limits))
        written = 0
        for info in infos:
            target = dest / info.filename
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src:
                written = _copy_limited(src, target, written, budget, limits)


def _unpack_tar(archive: Path, dest: Path, limits: ArchiveLimits, budget: int) -> None:
    """Stream the tar (compressed or not) once, member by member: each header is checked (name, type, count,
    and its size against what is left of the budget) before a byte of its data is decompressed, so a bomb is
    refused at its first oversized member, not after decompressing it to find the next header."""
    with _open_tar(archive) as tf:
        written = count = 0
        for member in tf:
            count += 1
            if count > limits.max_members:
                raise CheckpointRefused(f"The archive holds more than {limits.max_members:,} files; refused.")
            check_member_name(member.name)
            if member.issym() or member.islnk():
                raise CheckpointRefused(f"The archive holds a link ({member.name!r}); refused.")
            if not (member.isfile() or member.isdir()):
                raise CheckpointRefused(f"The archive holds a special file ({member.name!r}); refused.")
            target = dest / member.name
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            if written + member.size > budget:
                raise CheckpointRefused(_bomb_message(budget, limits))
            target.parent.mkdir(parents=True, exist_ok=True)
            src = tf.extractfile(member)
            if src is None:
                raise CheckpointRefused(f"Cannot read {member.name!r} from the archive.")
            with src:
                written = _copy_limited(src, target, written, budget, limits)


def file_sha256(path: Path) -> str:
    """The file's SHA-256 in hex, read through a 1 MiB buffer."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(COPY_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def check_sha256(path: Path, expected: str) -> None:
    """The file's SHA-256 must be the one announced when its upload began."""
    actual = file_sha256(path)
    if actual != expected:
        raise CheckpointRefused(
            f"The uploaded file's SHA-256 is {actual}, not the {expected} announced when its upload "
            "began: it was changed or damaged on the way. Upload it again."
        )


def checkpoint_root(folder: Path) -> Path:
    """The folder that holds the weights: the archive's top folder when it has just one."""
    entries = [p for p in folder.iterdir() if not p.name.startswith(".") and p.name != "__MACOSX"]
    if len(entries) == 1 and entries[0].is_dir():
        return checkpoint_root(entries[0])
    return folder


def _refuse_unsafe_files(folder: Path) -> None:
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            raise CheckpointRefused(f"The checkpoint holds a symbolic link ({path.name}); refused.")
        if path.suffix.lower() in PICKLE_SUFFIXES:
            raise CheckpointRefused(
                f"The checkpoint holds {path.name}, a pickle-based file that can run code when loaded. "
                "Convert the weights to safetensors (or GGUF) and upload again."
            )


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointRefused(f"{path.name} is not valid JSON ({exc}).") from exc
    if not isinstance(data, dict):
        raise CheckpointRefused(f"{path.name} is not a JSON object.")
    return data


def _refuse_remote_code(folder: Path) -> None:
    for name in CONFIG_FILES:
        path = folder / name
        if path.is_file() and "auto_map" in _read_json(path):
            raise CheckpointRefused(
                f"{name} has an auto_map: it asks to run the checkpoint's own Python code, "
                "which stylegap never does (no trust_remote_code). Use a standard architecture."
            )


def check_safetensors(path: Path) -> None:
    """A safetensors file opens with an 8-byte little-endian header length, then a JSON header."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        raw = fh.read(8)
        if len(raw) < 8:
            raise CheckpointRefused(f"{path.name} is too short to be a safetensors file.")
        (n,) = struct.unpack("<Q", raw)
        if n > SAFETENSORS_MAX_HEADER or 8 + n > size:
            raise CheckpointRefused(f"{path.name} has a malformed safetensors header.")
        try:
            header = json.loads(fh.read(n))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CheckpointRefused(f"{path.name} has a malformed safetensors header.") from exc
    if not isinstance(header, dict):
        raise CheckpointRefused(f"{path.name} has a malformed safetensors header.")


def check_gguf(path: Path) -> None:
    with open(path, "rb") as fh:
        if fh.read(4) != GGUF_MAGIC:
            raise CheckpointRefused(f"{path.name} is not a GGUF file.")


def validate_hf_checkpoint(folder: Path) -> None:
    """A Hugging Face checkpoint: config.json, safetensors weights, nothing pickled, no remote code."""
    _refuse_unsafe_files(folder)
    if not (folder / "config.json").is_file():
        raise CheckpointRefused("The checkpoint has no config.json.")
    _refuse_remote_code(folder)
    weights = sorted(folder.glob("*.safetensors"))
    if not weights:
        raise CheckpointRefused("The checkpoint has no .safetensors weights.")
    for path in weights:
        check_safetensors(path)


def validate_lora_adapter(folder: Path) -> None:
    """A PEFT LoRA adapter: adapter_config.json and adapter_model.safetensors."""
    _refuse_unsafe_files(folder)
    if not (folder / "adapter_config.json").is_file():
        raise CheckpointRefused("The adapter has no adapter_config.json.")
    _refuse_remote_code(folder)
    config = _read_json(folder / "adapter_config.json")
    if str(config.get("peft_type", "")).upper() != "LORA":
        raise CheckpointRefused(f"The adapter is of type {config.get('peft_type')!r}, not LoRA.")
    weights = folder / "adapter_model.safetensors"
    if not weights.is_file():
        raise CheckpointRefused("The adapter has no adapter_model.safetensors.")
    check_safetensors(weights)


def validate_gguf_checkpoint(folder: Path, gguf_file: str) -> None:
    """A GGUF file inside ``folder``, named by ``gguf_file`` (a plain file name)."""
    if not gguf_file or PurePosixPath(gguf_file).name != gguf_file:
        raise CheckpointRefused("Name the GGUF file (a plain file name inside the checkpoint folder).")
    path = folder / gguf_file
    if not path.is_file():
        raise CheckpointRefused(f"There is no {gguf_file} in the checkpoint folder.")
    if path.is_symlink():
        raise CheckpointRefused(f"{gguf_file} is a symbolic link; refused.")
    check_gguf(path)
    _refuse_remote_code(folder)
