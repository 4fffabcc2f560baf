"""Resumable checkpoint upload through gunicorn, as `make run` starts it: time, and the web process's peak memory.

    .venv/bin/python bench/upload.py [--big-mib 2048] [--small-mib 64] [--chunk-mib 64]

A fresh Postgres database (``stylegap_bench_upload``), gunicorn started with bin/run's command line
(``--workers 2 --threads 4``) and one Celery worker on the ``default`` queue (where validation runs). Two
checkpoint archives (a tiny random Llama stored in a zip with random padding, so the worker can validate it)
go through the tus endpoint in the same run: a small one first, then the big one. Each upload is cut off
once: a PATCH announcing the whole file drops its connection 40% of the way in; the client asks HEAD for the
offset and sends the rest in chunks with their own SHA-256 (``Upload-Checksum``). After the last chunk the
worker checks the whole file's SHA-256, unpacks it (archive checks) and validates it.

Reported per file: seconds to upload (creation to the last 204), MiB/s, seconds from then until the worker
said ready (its whole-file hash, unpacking and test generation), and the web processes' peak resident
memory (``VmHWM`` of each gunicorn process, read from /proc after the upload: the kernel's own high-water
mark, no sampling). Peak
memory is monotonic, so the big file's figure minus the small one's is what the big file added: it must be
about zero (memory does not grow with the file's size). Files are deleted at the end.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from bench.postgres import database_url, fresh_database  # noqa: E402

DB_NAME = "stylegap_bench_upload"
DB_URL = database_url(DB_NAME)
PORT = int(os.environ.get("BENCH_PORT", "8124"))
MiB = 1024**2


def log(msg: str) -> None:
    print(msg, flush=True)


def setup_django(var_dir: Path) -> None:
    os.environ.update(
        DATABASE_URL=DB_URL,
        DJANGO_SETTINGS_MODULE="webapp.settings",
        STYLEGAP_VAR_DIR=str(var_dir),
        STYLEGAP_HTTPS="0",
        # Room for the big archive and its unpacked copy.
        STYLEGAP_MAX_UPLOAD_BYTES=str(64 * 1024**3),
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def checkpoint_archive(path: Path, tiny_llama: Path, size_mib: int) -> Path:
    """A zip (stored) of the tiny Llama plus random padding up to ``size_mib``."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for item in sorted(tiny_llama.iterdir()):
            zf.write(item, f"checkpoint/{item.name}")
        left = size_mib * MiB - sum(i.stat().st_size for i in tiny_llama.iterdir())
        with zf.open("checkpoint/padding.txt", "w", force_zip64=True) as out:
            while left > 0:
                out.write(os.urandom(min(8 * MiB, left)))
                left -= 8 * MiB
    return path


def tiny_llama(folder: Path) -> Path:
    from transformers import AutoTokenizer

    from inference_workers.backends.local import SMOLLM2_GGUF, smollm2_folder
    from tests.inference_workers.conftest import build_tiny_llama

    tokenizer = folder / "tokenizer"
    AutoTokenizer.from_pretrained(str(smollm2_folder()), gguf_file=SMOLLM2_GGUF).save_pretrained(tokenizer)
    return build_tiny_llama(folder / "tiny-llama", tokenizer)


def start_site(var_dir: Path) -> tuple[subprocess.Popen, subprocess.Popen]:
    import requests

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    (var_dir / "log").mkdir(parents=True, exist_ok=True)
    worker = subprocess.Popen(  # noqa: S603 - our own celery
        [str(REPO / ".venv/bin/celery"), "-A", "webapp", "worker", "-Q", "default", "--concurrency", "1"]
        + ["--without-gossip", "--without-mingle", "--loglevel", "WARNING"],
        cwd=REPO,
        env=env,
        stdout=open(var_dir / "log" / "worker.log", "a"),  # noqa: SIM115 - handed to the child
        stderr=subprocess.STDOUT,
    )
    # bin/run's command line.
    web = subprocess.Popen(  # noqa: S603 - our own gunicorn
        [str(REPO / ".venv/bin/gunicorn"), "webapp.wsgi:application", "--bind", f"127.0.0.1:{PORT}"]
        + ["--workers", "2", "--threads", "4", "--error-logfile", str(var_dir / "log" / "web.log")],
        cwd=REPO,
        env=env,
    )
    for _ in range(300):
        try:
            if requests.get(f"http://127.0.0.1:{PORT}/healthz", timeout=1).status_code == 200:
                return web, worker
        except requests.RequestException:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not answer")


def gunicorn_pids(master: int) -> list[int]:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [master, *map(int, children)]


def peak_rss_mib(pids: list[int]) -> dict[int, float]:
    """Each process's high-water resident set (VmHWM), in MiB."""
    peaks = {}
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peaks[pid] = int(line.split()[1]) / 1024
    return peaks


def upload_once(client, model, archive: Path, chunk_bytes: int) -> dict:
    from django.urls import reverse

    from inference_workers.models import LanguageModel, ModelStatus
    from tests.inference_workers.tus_client import file_sha256

    size = archive.stat().st_size
    t0 = time.monotonic()
    sha256 = file_sha256(archive)
    t_hash = time.monotonic() - t0
    t0 = time.monotonic()
    created = client.create(reverse("inference:upload-create", args=[model.pk]), archive, sha256=sha256)
    assert created.status_code == 201, created.text
    location = created.headers["Location"]
    client.cut_off(location, archive, 0, send_bytes=int(size * 0.4) // MiB * MiB)
    done = client.resume(location, archive, chunk_bytes=chunk_bytes)
    t_upload = time.monotonic() - t0
    assert done.status_code == 204, done.text
    t0 = time.monotonic()
    while (model := LanguageModel.objects.get(pk=model.pk)).status not in (ModelStatus.READY, ModelStatus.REFUSED):
        time.sleep(0.5)
    assert model.status == ModelStatus.READY, model.status_message
    return {"bytes": size, "hash_s": t_hash, "upload_s": t_upload, "validate_s": time.monotonic() - t0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--big-mib", type=int, default=2048)
    parser.add_argument("--small-mib", type=int, default=64)
    parser.add_argument("--chunk-mib", type=int, default=64)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="stylegap-bench-upload-"))
    var_dir = work / "var"
    web = worker = None
    try:
        log(f"==> fresh database {DB_NAME}, var dir {var_dir}")
        fresh_database(DB_NAME)
        setup_django(var_dir)
        from django.contrib.auth import get_user_model
        from django.test import Client

        from inference_workers.models import LanguageModel, ModelKind, ModelRole
        from tests.inference_workers.tus_client import TusClient

        llama = tiny_llama(work)
        sizes = {"small": args.small_mib, "big": args.big_mib}
        archives = {name: checkpoint_archive(work / f"{name}.zip", llama, mib) for name, mib in sizes.items()}
        log("==> archives: " + ", ".join(f"{n} {p.stat().st_size:,} bytes" for n, p in archives.items()))

        admin = get_user_model().objects.create_superuser("bench-admin", password=None)
        session = Client()
        session.force_login(admin)
        web, worker = start_site(var_dir)
        pids = gunicorn_pids(web.pid)
        client = TusClient(f"http://127.0.0.1:{PORT}", session.cookies["sessionid"].value, "/models/")
        log(f"==> gunicorn pids {pids}; peak RSS at start (MiB): {peak_rss_mib(pids)}")

        rows = []
        for name, archive in archives.items():
            model = LanguageModel.objects.create(
                name=f"bench-{name}", kind=ModelKind.HF_CHECKPOINT, role=ModelRole.BASE
            )
            result = upload_once(client, model, archive, args.chunk_mib * MiB)
            peaks = peak_rss_mib(pids)
            result |= {"name": name, "peak_rss_mib": max(peaks.values()), "peaks": peaks}
            rows.append(result)
            log(
                f"{name:>5}: {result['bytes'] / MiB:8.0f} MiB  client hash {result['hash_s']:6.1f} s  "
                f"upload {result['upload_s']:6.1f} s ({result['bytes'] / MiB / result['upload_s']:6.1f} MiB/s, "
                f"one cut-off at 40%)  worker ready after {result['validate_s']:6.1f} s  "
                f"web peak RSS {result['peak_rss_mib']:6.1f} MiB (per process: "
                + ", ".join(f"{v:.1f}" for v in peaks.values())
                + ")"
            )
        small, big = rows
        growth = big["peak_rss_mib"] - small["peak_rss_mib"]
        ratio = big["peak_rss_mib"] / small["peak_rss_mib"]
        log(f"==> file size x{big['bytes'] / small['bytes']:.1f}; web peak RSS x{ratio:.3f} (+{growth:.1f} MiB)")
    finally:
        for proc in (web, worker):
            if proc is not None:
                proc.terminate()
                proc.wait(30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
