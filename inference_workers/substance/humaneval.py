"""HumanEval: model-written completions checked by each problem's tests, in the sandbox.

The program for one completion is upstream's: ``prompt + completion + "\\n" + test + "\\n" +
"check(<entry_point>)"``. A completion is cut at the first top-level stop sequence (the Codex
paper's). A chat model that answers with a fenced code block defining the whole function is read
too: the block is appended after the prompt, whose own function (a docstring only) it redefines.

Every program runs through :mod:`inference_workers.substance.sandbox`; when the sandbox is
unavailable, :func:`check_completion` raises ``SandboxUnavailable`` and nothing runs.
"""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from stats.intervals import wilson_interval
from stats.pass_at_k import mean_pass_at_k

from .sandbox import Limits, Outcome, require_sandbox, run_python

DATA = Path(__file__).resolve().parents[2] / "data" / "humaneval" / "HumanEval.jsonl.gz"

# How a chat model is asked; a base model gets the prompt itself and continues it.
CHAT_INSTRUCTION = (
    "Complete the following Python function. Reply with the whole function in one Python code block.\n\n"
    "```python\n{prompt}```"
)

STOP_SEQUENCES = ("\ndef ", "\nclass ", "\nif ", "\nprint", "\n#")

_FENCE = re.compile(r"```(?:python|py|python3)?[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)


@dataclass(frozen=True)
class Problem:
    task_id: str
    prompt: str
    canonical_solution: str
    test: str
    entry_point: str

    @property
    def item_id(self) -> str:
        return self.task_id

    @property
    def question(self) -> str:
        return self.prompt


@cache
def problems() -> tuple[Problem, ...]:
    with gzip.open(DATA, "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    return tuple(Problem(r["task_id"], r["prompt"], r["canonical_solution"], r["test"], r["entry_point"]) for r in rows)


def truncate_completion(text: str) -> str:
    """Cut a continuation at the first top-level stop sequence."""
    cut = len(text)
    for stop in STOP_SEQUENCES:
        at = text.find(stop)
        if at != -1:
            cut = min(cut, at)
    return text[:cut]


def program_for(problem: Problem, completion: str) -> str:
    """The program that decides whether ``completion`` solves ``problem``."""
    fenced = _FENCE.search(completion)
    if fenced and re.search(rf"^def\s+{re.escape(problem.entry_point)}\s*\(", fenced.group(1), re.MULTILINE):
        body = "\n" + fenced.group(1)
    elif re.search(rf"^def\s+{re.escape(problem.entry_point)}\s*\(", completion, re.MULTILINE):
        body = "\n" + completion
    else:
        body = truncate_completion(completion)
    return f"{problem.prompt}{body}\n{problem.test}\ncheck({problem.entry_point})\n"


def check_completion(problem: Problem, completion: str, limits: Limits | None = None) -> Outcome:
    """Run the problem's tests on ``completion`` in the sandbox (refused when it is unavailable)."""
    require_sandbox()
    return run_python(program_for(problem, completion), limits)


@dataclass(frozen=True)
class HumanEvalScore:
    problems: int
    samples: int
    passed_samples: int
    pass_at_1: float
    interval: tuple[float, float]
    pass_at_k: dict[int, float]


def score(results: dict[str, list[bool]], ks: tuple[int, ...] = (1, 10, 100)) -> HumanEvalScore:
    """pass@1 (Wilson interval over problems when each has one sample) and pass@k where n >= k.

    ``results`` maps each task id to its samples' pass/fail. With one sample per problem, pass@1 is
    the share of problems solved and its interval is Wilson's over problems. With n > 1 samples,
    pass@k uses the unbiased estimator (Chen et al. 2021), averaged over problems; the interval of
    pass@1 is then Wilson's over all samples (a lower bound on its width: samples of one problem
    are correlated).
    """
    counts = [(len(v), sum(v)) for v in results.values() if v]
    total = sum(n for n, _ in counts)
    passed = sum(c for _, c in counts)
    n_min = min((n for n, _ in counts), default=0)
    if counts and n_min == max(n for n, _ in counts) == 1:
        low, high = wilson_interval(passed, len(counts))
    else:
        low, high = wilson_interval(passed, total)
    return HumanEvalScore(
        problems=len(counts),
        samples=total,
        passed_samples=passed,
        pass_at_1=mean_pass_at_k(counts, 1),
        interval=(low, high),
        pass_at_k={k: mean_pass_at_k(counts, k) for k in ks if n_min >= k and k > 1},
    )
