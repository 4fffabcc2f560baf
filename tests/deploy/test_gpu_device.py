"""bin/gpu-device, the GPU worker's entrypoint: each replica of `--scale worker-gpu=N` gets a GPU of its own."""

import os
import subprocess
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bin" / "gpu-device"


def replica(locks: Path, *command: str, **env) -> subprocess.Popen:
    """One replica's entrypoint on a host with two GPUs, running ``command``; its stdin stays open."""
    environment = {k: v for k, v in os.environ.items() if k != "STYLEGAP_GPU"}
    environment.update({"STYLEGAP_GPU_COUNT": "2", "STYLEGAP_GPU_LOCKS": str(locks), **env})
    return subprocess.Popen(
        [str(SCRIPT), *command],
        env=environment,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def first_line(process: subprocess.Popen) -> str:
    return process.stdout.readline().strip()


def test_each_replica_takes_a_free_gpu_and_one_too_many_is_refused(tmp_path):
    holding = "echo $CUDA_VISIBLE_DEVICES; read _"  # holds its GPU until its stdin closes
    first = replica(tmp_path, "sh", "-c", holding)
    assert first_line(first) == "0"
    second = replica(tmp_path, "sh", "-c", holding)
    assert first_line(second) == "1"

    third = replica(tmp_path, "sh", "-c", "echo $CUDA_VISIBLE_DEVICES")
    out, err = third.communicate(timeout=30)
    assert third.returncode == 75 and out == "" and "all 2 GPUs are held" in err

    # A replica that exits frees its GPU for the next one.
    first.stdin.close()
    first.wait(30)
    deadline = time.monotonic() + 30
    while True:
        fourth = replica(tmp_path, "sh", "-c", "echo $CUDA_VISIBLE_DEVICES")
        out, _ = fourth.communicate(timeout=30)
        if fourth.returncode == 0 or time.monotonic() > deadline:
            break
    assert out.strip() == "0"
    second.stdin.close()
    second.wait(30)


def test_a_pinned_gpu_is_used_as_is(tmp_path):
    pinned = replica(tmp_path, "sh", "-c", "echo $CUDA_VISIBLE_DEVICES", STYLEGAP_GPU="3")
    out, _ = pinned.communicate(timeout=30)
    assert pinned.returncode == 0 and out.strip() == "3"


def test_compose_runs_the_gpu_worker_through_it_with_the_lock_volume():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    worker = compose["services"]["worker-gpu"]
    assert worker["entrypoint"] == ["/app/bin/gpu-device"]
    assert any(str(v).endswith(":/data/var") for v in worker["volumes"]), "replicas share the lock folder"
    (device,) = worker["deploy"]["resources"]["reservations"]["devices"]
    assert device["count"] == "all", "each replica sees every GPU and takes one"
