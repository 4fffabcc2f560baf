"""The one interface of a generation backend: how one kind of model is checked and asked.

A backend says which model kinds it serves and on which Celery queue; it validates a registered
model, turns a job's prompts into answers batch by batch (the job runner stores each batch, writes
progress and checks the cancel flag in between), and may answer benchmark questions greedily.
Callers never test a model's kind: they ask ``backend_for(model)`` (registry.py).
"""

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from inference_workers.models import DecodingConfig, LanguageModel, Prompt

# The Celery task (tasks.py) that runs a generation job of any backend; the built-in backends keep
# the names their tasks had before there was one interface.
GENERATION_TASK = "inference_workers.tasks.run_generation_job"

SMOKE_PROMPT = "Say hello."
SMOKE_TOKENS = 8


class Refused(Exception):
    """The model cannot be used, or cannot do what was asked; the message is shown to the researcher as is."""


@dataclass(frozen=True)
class Answer:
    prompt: Prompt
    text: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_ms: int | None = None


@dataclass(frozen=True)
class Batch:
    """Answers produced in one go, with the seconds spent generating them and what they cost."""

    answers: list[Answer]
    seconds: float = 0.0
    cost_usd: Decimal = Decimal(0)
    api_requests: int = 0
    api_retries: int = 0


class Backend:
    kinds: tuple[str, ...] = ()
    queue: str = "default"
    task: str = GENERATION_TASK
    # The weights are in this worker's memory: log-likelihoods (TruthfulQA MC1), a base for a LoRA.
    local: bool = False
    # Answers produced elsewhere: they share one "imported" decoding config and cannot answer new questions.
    imported: bool = False

    def validate(self, model: LanguageModel) -> str:
        """Check the model can be used (files, endpoint, a test generation); the message saying it is ready.

        Raises ``Refused`` with the reason, in words the researcher can act on.
        """
        return "Ready."

    def generate(self, model: LanguageModel, config: DecodingConfig, prompts: list[Prompt]) -> Iterator[Batch]:
        """Answer ``prompts`` under ``config``, one batch at a time."""
        raise NotImplementedError

    def answer(
        self, model: LanguageModel, questions: list[str], max_new_tokens: int
    ) -> Iterator[tuple[list[int], list[str]]]:
        """Greedy answers to benchmark questions, one batch at a time: (indices into ``questions``, texts)."""
        raise Refused(f"{model} cannot answer new questions.")

    def load(self, model: LanguageModel):
        """The model loaded in this worker, for scoring by its own log-likelihoods (local backends only)."""
        raise Refused(f"{model} has no weights in this worker.")

    def cost(self, model: LanguageModel, prompt_tokens: int, completion_tokens: int) -> Decimal:
        """What answering cost in US dollars; free unless the backend bills."""
        return Decimal(0)
