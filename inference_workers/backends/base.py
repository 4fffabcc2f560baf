"""The one interface of a generation backend: how one kind of model is checked and asked.

A backend says which model kinds it serves and on which Celery queue; it validates a registered
model, turns a job's prompts into answers batch by batch (the job runner stores each batch, writes
progress and checks the cancel flag in between), and may answer benchmark questions greedily.
Callers never test a model's kind: they ask ``backend_for(model)`` (registry.py).

A backend that decodes token by token also reports each step of the running batch to whoever listens
(``listening_to_steps``), so progress and the heartbeat advance inside a long batch; the interface of
``generate`` and ``answer`` stays as it is, and a backend that cannot see steps reports nothing.
"""

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings

from inference_workers.models import DecodingConfig, LanguageModel, Prompt

# The Celery task (tasks.py) that runs a generation job of any backend; the built-in backends keep
# the names their tasks had before there was one interface.
GENERATION_TASK = "inference_workers.tasks.run_generation_job"

SMOKE_PROMPT = "Say hello."
SMOKE_TOKENS = 8


# (completion tokens generated so far in the running batch, seconds it has been generating). It may raise to
# abandon the batch (a cancel): its answers are then never yielded.
StepListener = Callable[[int, float], None]

_step_listener: ContextVar[StepListener | None] = ContextVar("step_listener", default=None)


@contextmanager
def listening_to_steps(listener: StepListener) -> Iterator[None]:
    """Call ``listener`` on every decoding step a backend reports while the block runs."""
    token = _step_listener.set(listener)
    try:
        yield
    finally:
        _step_listener.reset(token)


def at_most_every_interval(listener: StepListener) -> StepListener:
    """``listener`` called on the first step and then at most once every STYLEGAP_STEP_PROGRESS_EVERY_S, so a
    fast decoder does not write progress to the database at every step."""
    every_s, last = settings.STYLEGAP_STEP_PROGRESS_EVERY_S, -float("inf")

    def on_step(tokens: int, seconds: float) -> None:
        nonlocal last
        now = time.perf_counter()
        if now - last < every_s:
            return
        last = now
        listener(tokens, seconds)

    return on_step


def step_listener() -> StepListener | None:
    """Who listens to decoding steps now, if anyone (a backend skips its per-step work when no one does)."""
    return _step_listener.get()


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


@dataclass(frozen=True)
class Sampling:
    """Decoding settings for ``Backend.chat``: greedy unless the temperature is above 0."""

    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int = 512
    seed: int = 0


@dataclass(frozen=True)
class Reply:
    text: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_ms: int | None = None


@dataclass(frozen=True)
class ChatBatch:
    """Replies to some of the conversations given to ``Backend.chat``: ``indices`` into them, one per reply."""

    indices: list[int]
    replies: list[Reply]
    seconds: float = 0.0
    cost_usd: Decimal = Decimal(0)
    api_requests: int = 0
    api_retries: int = 0


# A conversation: chat messages {"role": "system" | "user" | "assistant", "content": str}.
Messages = list[dict]


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

    def chat(self, model: LanguageModel, conversations: list[Messages], sampling: Sampling) -> Iterator[ChatBatch]:
        """The model's next message in each conversation, one batch at a time (any order; ``indices`` say which)."""
        raise Refused(f"{model} cannot answer new messages.")

    def load(self, model: LanguageModel):
        """The model loaded in this worker, for scoring by its own log-likelihoods (local backends only)."""
        raise Refused(f"{model} has no weights in this worker.")

    def cost(self, model: LanguageModel, prompt_tokens: int, completion_tokens: int) -> Decimal:
        """What answering cost in US dollars; free unless the backend bills."""
        return Decimal(0)
