"""Checkpoint safety checks on real archives and real (tiny) checkpoints; no database needed."""

import io
import json
import shutil
import tarfile
import zipfile

import pytest

from inference_workers.backends.local import SMOLLM2_GGUF, smollm2_folder
from inference_workers.checkpoints import (
    ArchiveLimits,
    CheckpointRefused,
    check_safetensors,
    checkpoint_root,
    unpack_archive,
    validate_gguf_checkpoint,
    validate_hf_checkpoint,
    validate_lora_adapter,
)

from .conftest import zip_folder

LIMITS = ArchiveLimits(max_upload_bytes=50 * 1024**2, max_unpacked_bytes=100 * 1024**2, max_ratio=20, max_members=100)


def write_zip(path, members: dict[str, bytes]):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_a_zipped_checkpoint_unpacks_and_passes(tmp_path, tiny_llama_dir):
    archive = zip_folder(tiny_llama_dir, tmp_path / "ckpt.zip")
    unpack_archive(archive, tmp_path / "out", LIMITS)
    root = checkpoint_root(tmp_path / "out")
    assert (root / "config.json").is_file()
    validate_hf_checkpoint(root)


def test_a_tar_gz_checkpoint_unpacks_and_passes(tmp_path, tiny_llama_dir):
    archive = tmp_path / "ckpt.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(tiny_llama_dir, arcname="model")
    unpack_archive(archive, tmp_path / "out", LIMITS)
    validate_hf_checkpoint(checkpoint_root(tmp_path / "out"))


@pytest.mark.parametrize("name", ["../evil.txt", "model/../../evil.txt", "/etc/evil.txt", "C:\\evil.txt"])
def test_an_archive_with_an_escaping_path_is_refused_before_anything_is_written(tmp_path, name):
    archive = write_zip(tmp_path / "a.zip", {"model/config.json": b"{}", name: b"x"})
    with pytest.raises(CheckpointRefused, match="path"):
        unpack_archive(archive, tmp_path / "out", LIMITS)
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "evil.txt").exists()


def test_a_zip_with_a_symlink_is_refused(tmp_path):
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("model/config.json")
        info.external_attr = 0o120777 << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(CheckpointRefused, match="symbolic link"):
        unpack_archive(archive, tmp_path / "out", LIMITS)


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE])
def test_a_tar_with_a_link_is_refused(tmp_path, kind):
    archive = tmp_path / "link.tar"
    with tarfile.open(archive, "w") as tf:
        info = tarfile.TarInfo("model/weights.safetensors")
        info.type = kind
        info.linkname = "/etc/passwd"
        tf.addfile(info)
    with pytest.raises(CheckpointRefused, match="link"):
        unpack_archive(archive, tmp_path / "out", LIMITS)


def test_a_decompression_bomb_is_refused(tmp_path):
    archive = write_zip(tmp_path / "bomb.zip", {"model/model.safetensors": bytes(30 * 1024**2)})
    assert archive.stat().st_size < 100_000
    with pytest.raises(CheckpointRefused, match="decompression bomb"):
        unpack_archive(archive, tmp_path / "out", LIMITS)
    assert not (tmp_path / "out").exists()


class Zeros(io.RawIOBase):
    """``size`` zero bytes, read in chunks: the test never holds the bomb in memory or on disk."""

    def __init__(self, size: int):
        self.left = size

    def readable(self):
        return True

    def read(self, n=-1):
        n = self.left if n is None or n < 0 else min(n, self.left)
        self.left -= n
        return bytes(n)


def test_a_tar_gz_bomb_is_refused_at_its_first_member_not_after_decompressing_it(tmp_path):
    # The first member unpacks to 256 MiB of zeros; the second has a forbidden path. Listing every member
    # before the size check decompresses all 256 MiB to reach the second header, then refuses for the path;
    # streaming refuses for size at the first header, having decompressed nothing of it.
    archive = tmp_path / "bomb.tar.gz"
    with tarfile.open(archive, "w:gz", compresslevel=1) as tf:
        huge = tarfile.TarInfo("model/model.safetensors")
        huge.size = 256 * 1024**2
        tf.addfile(huge, Zeros(huge.size))
        evil = tarfile.TarInfo("/etc/evil.txt")
        evil.size = 1
        tf.addfile(evil, io.BytesIO(b"x"))
    assert archive.stat().st_size < 4 * 1024**2
    with pytest.raises(CheckpointRefused, match="decompression bomb"):
        unpack_archive(archive, tmp_path / "out", LIMITS)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kind", [tarfile.XHDTYPE, tarfile.GNUTYPE_LONGNAME])
def test_a_tar_gz_with_a_huge_extended_header_is_refused_before_it_is_read(tmp_path, kind):
    # A pax or GNU long-name header is read whole into memory by tarfile before its member is seen:
    # 256 MiB of header (a few hundred KiB compressed) must be refused from its size, not read.
    import tracemalloc

    archive = tmp_path / "header-bomb.tar.gz"
    with tarfile.open(archive, "w:gz", compresslevel=1) as tf:
        header = tarfile.TarInfo("././@PaxHeader")
        header.type, header.size = kind, 256 * 1024**2
        tf.addfile(header, Zeros(header.size))
    assert archive.stat().st_size < 4 * 1024**2
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointRefused, match="header"):
            unpack_archive(archive, tmp_path / "out", LIMITS)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024**2


def test_a_tar_gz_of_many_members_stops_at_the_budget(tmp_path):
    archive = tmp_path / "many.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        for i in range(60):
            info = tarfile.TarInfo(f"model/part-{i}.safetensors")
            info.size = 2 * 1024**2
            tf.addfile(info, Zeros(info.size))
    with pytest.raises(CheckpointRefused, match="decompression bomb"):
        unpack_archive(archive, tmp_path / "out", LIMITS)
    assert not (tmp_path / "out").exists()


def test_a_bomb_that_lies_about_its_size_stops_at_the_limit(tmp_path):
    archive = write_zip(tmp_path / "bomb.zip", {"model/model.safetensors": bytes(30 * 1024**2)})
    # Rewrite the declared sizes (local header and central directory) to claim 1 KiB.
    data = bytearray(archive.read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        info = zf.infolist()[0]
    real = info.file_size.to_bytes(4, "little")
    data = data.replace(real, (1024).to_bytes(4, "little"))
    archive.write_bytes(bytes(data))
    with pytest.raises((CheckpointRefused, zipfile.BadZipFile)):
        unpack_archive(archive, tmp_path / "out", LIMITS)
    assert not (tmp_path / "out").exists()


def test_an_upload_over_the_size_limit_is_refused(tmp_path):
    archive = write_zip(tmp_path / "big.zip", {"model/x.safetensors": b"0123456789" * 200})
    small = ArchiveLimits(max_upload_bytes=100, max_unpacked_bytes=10**6, max_ratio=100, max_members=10)
    with pytest.raises(CheckpointRefused, match="STYLEGAP_MAX_UPLOAD_BYTES"):
        unpack_archive(archive, tmp_path / "out", small)


def test_too_many_members_are_refused(tmp_path):
    archive = write_zip(tmp_path / "many.zip", {f"f{i}.json": b"{}" for i in range(101)})
    with pytest.raises(CheckpointRefused, match="files"):
        unpack_archive(archive, tmp_path / "out", LIMITS)


@pytest.mark.parametrize("name", ["pytorch_model.bin", "model.pt", "optimizer.pkl", "training_args.bin"])
def test_pickle_weights_are_refused(tmp_path, tiny_llama_dir, name):
    folder = shutil.copytree(tiny_llama_dir, tmp_path / "ckpt")
    (folder / name).write_bytes(b"\x80\x04pickled")
    with pytest.raises(CheckpointRefused, match="pickle"):
        validate_hf_checkpoint(folder)


def test_a_checkpoint_with_only_pickle_weights_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (tmp_path / "pytorch_model.bin").write_bytes(b"\x80\x04")
    with pytest.raises(CheckpointRefused, match="pickle"):
        validate_hf_checkpoint(tmp_path)


@pytest.mark.parametrize("config_name", ["config.json", "tokenizer_config.json"])
def test_a_config_with_auto_map_is_refused(tmp_path, tiny_llama_dir, config_name):
    folder = shutil.copytree(tiny_llama_dir, tmp_path / "ckpt")
    config = json.loads((folder / config_name).read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_evil.EvilForCausalLM"}
    (folder / config_name).write_text(json.dumps(config))
    with pytest.raises(CheckpointRefused, match="auto_map"):
        validate_hf_checkpoint(folder)


def test_a_checkpoint_without_safetensors_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(CheckpointRefused, match="safetensors"):
        validate_hf_checkpoint(tmp_path)


def test_a_malformed_safetensors_file_is_refused(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes((10**9).to_bytes(8, "little") + b"{}")
    with pytest.raises(CheckpointRefused, match="malformed"):
        check_safetensors(path)


def test_a_lora_adapter_passes(tiny_lora_dir):
    validate_lora_adapter(tiny_lora_dir)


def test_smollm2_gguf_passes_and_a_fake_gguf_does_not(tmp_path):
    validate_gguf_checkpoint(smollm2_folder(), SMOLLM2_GGUF)
    (tmp_path / "fake.gguf").write_bytes(b"PK\x03\x04 not gguf")
    with pytest.raises(CheckpointRefused, match="not a GGUF"):
        validate_gguf_checkpoint(tmp_path, "fake.gguf")
    with pytest.raises(CheckpointRefused, match="plain file name"):
        validate_gguf_checkpoint(tmp_path, "../fake.gguf")
