"""Substance fixtures: SmolLM2-135M-Instruct (the packaged GGUF) and the tiny random Llama of the inference tests."""

import pytest

from inference_workers.models import ModelKind, ModelRole
from tests import factories
from tests.inference_workers.conftest import smollm2_tokenizer_dir, tiny_llama_dir  # noqa: F401 - fixtures


@pytest.fixture
def smollm2(db):
    return factories.smollm2(parameter_count=135_000_000)


@pytest.fixture
def tiny_llama(db, tiny_llama_dir):  # noqa: F811 - the imported fixture
    return factories.model(kind=ModelKind.HF_CHECKPOINT, role=ModelRole.IMITATION, server_path=str(tiny_llama_dir))


def wait_until_finished(run, stall_s: float = 900, poll_s: float = 0.5, seen: list | None = None):
    """Wait for a benchmark run to end, failing only when its status and item count stop advancing
    for ``stall_s`` (progress, not a wall-clock deadline: CI machines are busy). Each change of
    (status, items) is appended to ``seen`` when given."""
    import time

    from inference_workers.models import JobStatus

    seen = [] if seen is None else seen
    last_change = time.monotonic()
    while run.status not in {JobStatus.SUCCEEDED, JobStatus.FAILED}:
        time.sleep(poll_s)
        run.refresh_from_db()
        if not seen or seen[-1] != (run.status, run.n_items):
            seen.append((run.status, run.n_items))
            last_change = time.monotonic()
        assert time.monotonic() - last_change < stall_s, f"no progress for {stall_s:.0f} s: {seen}"
    return run
