"""Chat templates rendered where they cannot hang or flood a worker.

A chat template is Jinja code from a researcher (a decoding config's ``chat_template``) or from an
uploaded checkpoint (its tokenizer's own). Jinja's sandbox stops attribute tricks but not work: two
nested ``range(99999)`` loops run for minutes, and ``"x" * 300000000`` makes a 300 MB prompt. So
templates are rendered, exactly as ``transformers`` renders them (its own sandboxed environment), in a
helper process that this process starts once and keeps: it runs under a memory limit
(``STYLEGAP_CHAT_TEMPLATE_MAX_MEMORY_BYTES``), every rendered prompt must stay within
``STYLEGAP_CHAT_TEMPLATE_MAX_CHARS``, and a batch that takes longer than
``STYLEGAP_CHAT_TEMPLATE_TIMEOUT_SECONDS`` gets the helper killed (a fresh one starts for the next batch).
A refusal is a ``TemplateRefused`` whose message says which limit was hit.

Run as ``python -m inference_workers.chat_templates MEMORY_BYTES`` it is the helper: one JSON request a
line on stdin ({template, conversations, context, max_chars}), one JSON answer a line on stdout.
"""

import json
import os
import select
import subprocess
import sys
import threading
import time
from pathlib import Path

from django.conf import settings

REPO = Path(__file__).resolve().parent.parent

STARTUP_S = 120.0
SAMPLE = [{"role": "system", "content": "You are helpful."}, {"role": "user", "content": "Hello?"}]


class TemplateRefused(Exception):
    """A chat template that failed, ran too long, or made too much; the message is shown as is."""


class _Helper:
    """The helper process of this process (a forked Celery child starts its own)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.proc: subprocess.Popen | None = None
        self.pid = self.memory = 0

    def _start(self, memory_bytes: int) -> subprocess.Popen:
        if self.proc is not None and self.pid == os.getpid() and self.memory != memory_bytes:
            self.stop()
        # A forked process (a Celery pool child) starts its own helper; the parent's is the parent's.
        if self.proc is None or self.pid != os.getpid() or self.proc.poll() is not None:
            self.proc = subprocess.Popen(  # noqa: S603 - this module, run by this interpreter
                [sys.executable, "-m", "inference_workers.chat_templates", str(memory_bytes)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                # Nothing of this process's environment (keys, database URL) reaches the template.
                env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": os.pathsep.join([str(REPO), *sys.path])},
            )
            self.pid, self.memory = os.getpid(), memory_bytes
            # Starting (importing transformers) is not rendering: it has its own, generous, wait.
            if self._read_line(self.proc, time.monotonic() + STARTUP_S, 64, "start") != b"ready\n":
                raise TemplateRefused("the chat template's renderer did not start.")
        return self.proc

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def ask(self, request: dict, timeout_s: float, max_bytes: int, memory_bytes: int) -> dict:
        with self.lock:
            try:
                proc = self._start(memory_bytes)
                proc.stdin.write(json.dumps(request).encode() + b"\n")
                proc.stdin.flush()
                line = self._read_line(proc, time.monotonic() + timeout_s, max_bytes)
            except TemplateRefused:
                self.stop()
                raise
            except OSError as exc:  # the helper died (its memory limit, a crash)
                self.stop()
                raise TemplateRefused(f"the chat template's renderer stopped ({exc}).") from exc
        return json.loads(line)

    def _read_line(self, proc: subprocess.Popen, deadline: float, max_bytes: int, doing: str = "render") -> bytes:
        fd = proc.stdout.fileno()
        data = bytearray()
        while not data.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0:
                if doing == "start":
                    raise TemplateRefused(f"the chat template's renderer did not start within {STARTUP_S:g} s.")
                raise TemplateRefused(
                    "the chat template took longer than the limit to render "
                    "(STYLEGAP_CHAT_TEMPLATE_TIMEOUT_SECONDS); it was stopped."
                )
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise TemplateRefused("the chat template's renderer stopped (out of memory, or it crashed).")
            data += chunk
            if len(data) > max_bytes:
                raise TemplateRefused(
                    "the chat template made more text than the limit (STYLEGAP_CHAT_TEMPLATE_MAX_CHARS)."
                )
        return bytes(data)


_HELPER = _Helper()


def render(template: str, conversations: list[list[dict]], context: dict | None = None) -> list[str]:
    """Each conversation rendered by ``template`` with a generation prompt; ``context`` holds the
    tokenizer's special tokens (bos_token, eos_token, ...) as the template sees them."""
    if not conversations:
        return []
    max_chars = settings.STYLEGAP_CHAT_TEMPLATE_MAX_CHARS
    request = {"template": template, "conversations": conversations, "context": context or {}, "max_chars": max_chars}
    # JSON escapes a character in at most 12 bytes (a surrogate pair).
    max_bytes = 12 * max_chars * len(conversations) + 4096
    answer = _HELPER.ask(
        request,
        settings.STYLEGAP_CHAT_TEMPLATE_TIMEOUT_SECONDS,
        max_bytes,
        settings.STYLEGAP_CHAT_TEMPLATE_MAX_MEMORY_BYTES,
    )
    if "error" in answer:
        raise TemplateRefused(answer["error"])
    return answer["ok"]


def check_template(template: str) -> None:
    """Render a sample conversation, as at registration; raises ``TemplateRefused`` in plain words."""
    if template.strip():
        render(template, [SAMPLE], {"bos_token": "<s>", "eos_token": "</s>"})


# --- The helper process ---------------------------------------------------------------------------


def _serve(memory_bytes: int) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    # transformers' own sandboxed environment and context, as apply_chat_template renders, but streamed:
    # a prompt is refused as soon as it passes the size limit, not once it is all made.
    from transformers.utils import chat_template_utils as hf

    out = sys.stdout
    out.write("ready\n")
    out.flush()
    for raw in iter(sys.stdin.buffer.readline, b""):
        request = json.loads(raw)
        limit = request["max_chars"]
        try:
            compiled = hf._compile_jinja_template(request["template"])
            context = hf._plain_template_data(request["context"])
            rendered = []
            for conversation in request["conversations"]:
                messages = hf._alias_reasoning_fields(hf._plain_template_data(conversation))
                parts, size = [], 0
                stream = compiled.generate(
                    messages=messages, tools=None, documents=None, add_generation_prompt=True, **context
                )
                for part in stream:
                    size += len(part)
                    if size > limit:
                        raise TemplateRefused(
                            f"the chat template made a prompt of more than {limit:,} characters "
                            "(STYLEGAP_CHAT_TEMPLATE_MAX_CHARS)."
                        )
                    parts.append(part)
                rendered.append("".join(parts))
            answer = {"ok": rendered}
        except TemplateRefused as exc:
            answer = {"error": str(exc)}
        except MemoryError:
            answer = {
                "error": "the chat template used more memory than the limit (STYLEGAP_CHAT_TEMPLATE_MAX_MEMORY_BYTES)."
            }
        except Exception as exc:
            answer = {"error": f"the chat template failed ({type(exc).__name__}: {str(exc)[:300]})."}
        out.write(json.dumps(answer) + "\n")
        out.flush()


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
