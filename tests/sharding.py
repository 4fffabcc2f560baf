"""Two real worker processes on one queue, for the tests of jobs shared by many workers (inference_workers/shards.py).

Each worker runs one torch thread (two share this machine's cores) and a short shard lease, so that a killed
worker's shard is taken over within seconds; the shard sizes are set for the workers (which cut the shards)
and for this process (which counts the deliveries to queue) alike.
"""

import uuid
from contextlib import contextmanager

from django.conf import settings

from inference_workers.models import Shard, ShardStatus
from inference_workers.shards import POLL_S
from tests.conftest import WorkerProcess, database_url
from tests.waiting import wait_advancing

LEASE_S = 10
# A lapsed lease is taken over at the survivor's next look: every shards.POLL_S while it waits, or when it
# finishes the shard it is on (the margin adds the longest of its shards); plus this much for a busy machine.
TAKEOVER_SLACK_S = 5
SHARD_SETTINGS = {"STYLEGAP_SHARD_PROMPTS": 5, "STYLEGAP_SHARD_BENCHMARK_ITEMS": 5, "STYLEGAP_SHARD_JUDGING_ITEMS": 6}


def worker_env(extra: dict | None = None) -> dict:
    return {
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "STYLEGAP_TORCH_THREADS": "1",
        "STYLEGAP_SHARD_LEASE_SECONDS": str(LEASE_S),
        **{name: str(value) for name, value in SHARD_SETTINGS.items()},
        **(extra or {}),
    }


@contextmanager
def two_workers(prefix: str, env: dict | None = None):
    """A fresh queue (only these workers listen on it) and two workers on it; both stopped on the way out."""
    queue = f"{prefix}-{uuid.uuid4().hex[:6]}"
    db_url = database_url(settings.DATABASES["default"])
    workers = [WorkerProcess(db_url, queues=queue, env=worker_env(env)) for _ in range(2)]
    try:
        for w in workers:
            w.start()
        yield queue, workers
    finally:
        for w in workers:
            w.stop()


def held_by(worker: WorkerProcess, shards) -> list[Shard]:
    """The shards whose holder (``node/pid``) is this worker process's node."""
    return [s for s in shards if s.worker.startswith(f"{worker.name}/")]


def kill_one_mid_shard(workers: list[WorkerProcess], shards_of_job) -> tuple[WorkerProcess, Shard]:
    """Once both workers have stored items, SIGKILL the one holding a shard part-way done; returns it and
    that shard as it was left (running, its lease not yet lapsed)."""

    def reading():
        shards = list(shards_of_job())
        both_stored = all(sum(s.done for s in held_by(w, shards)) > 0 for w in workers)
        held = [s for w in workers for s in held_by(w, shards)]
        mid = [s for s in held if s.status == ShardStatus.RUNNING and 0 < s.done < s.size]
        return [(s.index, s.status, s.done, s.worker) for s in shards], (mid[0] if both_stored and mid else None)

    _, shard = wait_advancing(reading, lambda value: value[1] is not None, "a worker part-way through a shard")
    (victim,) = [w for w in workers if shard.worker.startswith(f"{w.name}/")]
    victim.kill()
    left = type(shard).objects.get(pk=shard.pk)
    assert left.status == ShardStatus.RUNNING and left.worker == shard.worker and 0 < left.done < left.size, left
    return victim, left


def assert_taken_over(shard: Shard, victim: WorkerProcess, survivor: WorkerProcess) -> float:
    """The killed worker's shard was finished by the survivor, taken over within the lease time of the
    victim's last heartbeat plus the survivor's longest shard (it may be on one when the lease lapses; lapsed
    shards come first after it), measured from the shards' own timestamps. Returns those seconds."""
    shard.refresh_from_db()
    assert shard.status == ShardStatus.DONE and shard.done == shard.size, shard
    assert shard.previous_worker.startswith(f"{victim.name}/") and shard.worker.startswith(f"{survivor.name}/")
    assert shard.attempts == 2
    survivors = type(shard).objects.filter(job_id=shard.job_id, worker=shard.worker).exclude(pk=shard.pk)
    longest = max(((s.finished_at - s.claimed_at).total_seconds() for s in survivors), default=0.0)
    seconds = shard.seconds_to_takeover
    assert seconds is not None and seconds + 1 >= LEASE_S, seconds
    assert seconds <= LEASE_S + longest + POLL_S + TAKEOVER_SLACK_S, (seconds, longest)
    return seconds
