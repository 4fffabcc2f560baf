"""A generation backend is one class and one ``register`` line; callers ask the registry, never the kind."""

import ast
from pathlib import Path

import pytest

from inference_workers import jobs
from inference_workers.actions import decoding_config_for, do_start_generation_job
from inference_workers.backends.base import Answer, Backend, Batch
from inference_workers.backends.registry import backend_for, register
from inference_workers.models import JobStatus, ModelKind, Response
from tests import factories


class EchoBackend(Backend):
    """Answers every prompt with the prompt itself."""

    kinds = ("echo",)

    def generate(self, model, config, prompts):
        yield Batch([Answer(prompt, prompt.text) for prompt in prompts])


register(EchoBackend())


@pytest.mark.django_db
def test_a_registered_backend_runs_a_job_through_the_real_job_path():
    prompt_set = factories.prompt_set()
    prompts = [factories.prompt(prompt_set) for _ in range(3)]
    model = factories.model(kind="echo")
    config = decoding_config_for(temperature=0, top_p=1, max_new_tokens=8, seed=0)
    job = do_start_generation_job(model, prompt_set, config)

    assert jobs.run_job(job.pk) == JobStatus.SUCCEEDED
    answers = {r.prompt_id: r.text for r in Response.objects.filter(job=job)}
    assert answers == {p.pk: p.text for p in prompts}
    job.refresh_from_db()
    assert (job.done, job.total) == (3, 3)


def test_every_model_kind_has_one_backend_and_a_kind_cannot_have_two():
    assert {backend_for(kind).queue for kind in ModelKind} == {"gpu", "api", "default"}
    with pytest.raises(ValueError, match="already have a backend"):
        register(EchoBackend())


def test_actions_enqueue_by_task_name_and_never_import_the_task_modules():
    app = Path(__file__).resolve().parents[2] / "inference_workers"
    for path in [app / "actions.py", app / "substance" / "actions.py", *app.glob("backends/*.py")]:
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                imported |= {node.module or "", *(f"{node.module}.{a.name}" for a in node.names)}
            elif isinstance(node, ast.Import):
                imported |= {a.name for a in node.names}
        assert not {m for m in imported if m.endswith(".tasks")}, path
