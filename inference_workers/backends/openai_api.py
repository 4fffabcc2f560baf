"""Proprietary models behind an OpenAI-compatible chat-completions endpoint.

The key is read from the environment variable the model names, at call time, and is never
stored or logged. Requests run in a bounded thread pool; a 429 or 5xx answer (or a dropped
connection) is retried after ``Retry-After`` when the server sends one, else after
``backoff_s * 2**attempt`` (capped at ``max_backoff_s``). Where a request may go and which variable
may hold its key is checked before each request (``inference_workers/egress.py``); an error answer
is reduced to its status line, since its body may be an internal service's.
"""

import http.client
import json
import os
import socket
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from decimal import Decimal
from http import HTTPStatus

from django.conf import settings

from inference_workers.backends.base import (
    SMOKE_PROMPT,
    SMOKE_TOKENS,
    Answer,
    Backend,
    Batch,
    ChatBatch,
    Messages,
    Refused,
    Reply,
    Sampling,
    step_listener,
)
from inference_workers.egress import EgressRefused, Target, check_key_env, parse_base_url, resolve
from inference_workers.models import DecodingConfig, LanguageModel, ModelKind, Prompt

RETRY_STATUSES = {408, 409, 429, 500, 502, 503, 504}
MAX_ANSWER_BYTES = 16 * 1024**2


class ApiError(Exception):
    """A request that failed for good; the message is safe to show (it never holds the key)."""


@dataclass(frozen=True)
class ApiEndpoint:
    base_url: str
    model_id: str
    api_key_env: str = ""
    timeout_s: float = 120.0
    max_attempts: int = 6
    backoff_s: float = 1.0
    max_backoff_s: float = 60.0


@dataclass(frozen=True)
class ApiAnswer:
    text: str
    prompt_tokens: int
    completion_tokens: int
    latency_ms: int
    retries: int


def request_body(endpoint: ApiEndpoint, messages: list[dict], *, temperature, top_p, max_new_tokens, seed) -> dict:
    return {
        "model": endpoint.model_id,
        "messages": messages,
        "temperature": temperature,
        "top_p": top_p,
        "max_tokens": max_new_tokens,
        "seed": seed,
    }


def _retry_after(headers, attempt: int, endpoint: ApiEndpoint) -> float:
    raw = headers.get("Retry-After") if headers else None
    if raw:
        try:
            return min(max(float(raw), 0.0), endpoint.max_backoff_s)
        except ValueError:
            pass
    return min(endpoint.backoff_s * 2**attempt, endpoint.max_backoff_s)


def status_line(status: int) -> str:
    """``HTTP 404 Not Found``: all an error answer is reduced to (its body may be an internal service's)."""
    try:
        return f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


def post_json(target: Target, path: str, data: bytes, headers: dict, timeout_s: float):
    """POST to the address ``resolve`` checked (TLS still verifies the host name); redirects are not followed.

    Returns (status, headers, body); the body is read only for a 200 answer, and at most MAX_ANSWER_BYTES.
    """
    address = resolve(target)
    kind = http.client.HTTPSConnection if target.scheme == "https" else http.client.HTTPConnection
    conn = kind(target.host, target.port, timeout=timeout_s)
    # Connect to the checked address, never to a second DNS answer.
    conn._create_connection = lambda addr, timeout, source=None: socket.create_connection(
        (address, addr[1]), timeout, source
    )
    try:
        conn.request("POST", target.path + path, body=data, headers=headers)
        response = conn.getresponse()
        body = response.read(MAX_ANSWER_BYTES + 1) if response.status == 200 else b""
        if len(body) > MAX_ANSWER_BYTES:
            raise ApiError(f"The API answer is over {MAX_ANSWER_BYTES:,} bytes.")
        return response.status, response.headers, body
    finally:
        conn.close()


def chat_completion(endpoint: ApiEndpoint, body: dict, sleep=time.sleep) -> ApiAnswer:
    """One chat completion, retried on 429/5xx and connection errors. The key variable and the endpoint are
    checked again here (egress.py), whatever the model's row says."""
    try:
        check_key_env(endpoint.api_key_env)
        target = parse_base_url(endpoint.base_url)
    except EgressRefused as exc:
        raise ApiError(str(exc)) from exc
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if endpoint.api_key_env:
        key = os.environ.get(endpoint.api_key_env, "")
        if not key:
            raise ApiError(f"The environment variable {endpoint.api_key_env} is not set on the worker.")
        headers["Authorization"] = f"Bearer {key}"
    data = json.dumps(body).encode()
    last = ""
    for attempt in range(endpoint.max_attempts):
        started = time.perf_counter()
        try:
            status, answer_headers, raw = post_json(target, "/chat/completions", data, headers, endpoint.timeout_s)
        except EgressRefused as exc:
            raise ApiError(str(exc)) from exc
        except (OSError, http.client.HTTPException) as exc:
            last = f"connection error ({type(exc).__name__})"
            sleep(_retry_after(None, attempt, endpoint))
            continue
        if status != 200:
            last = status_line(status)
            if status not in RETRY_STATUSES:
                raise ApiError(f"The API answered {last}.")
            sleep(_retry_after(answer_headers, attempt, endpoint))
            continue
        latency_ms = int((time.perf_counter() - started) * 1000)
        try:
            payload = json.loads(raw)
            text = payload["choices"][0]["message"]["content"] or ""
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise ApiError("The API answer has no choices[0].message.content.") from exc
        usage = payload.get("usage") or {}
        return ApiAnswer(
            text=text,
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            latency_ms=latency_ms,
            retries=attempt,
        )
    raise ApiError(f"The API kept failing after {endpoint.max_attempts} attempts (last: {last}).")


def chat_completions(endpoint: ApiEndpoint, bodies: list[dict], concurrency: int) -> list[ApiAnswer]:
    """Many completions with at most ``concurrency`` in flight; answers in the order of ``bodies``."""
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        return list(pool.map(lambda body: chat_completion(endpoint, body), bodies))


def cost_usd(prompt_tokens: int, completion_tokens: int, prompt_price, completion_price) -> Decimal:
    """cost = prompt_tokens * prompt_price / 1e6 + completion_tokens * completion_price / 1e6 (prices per Mtok)."""
    total = Decimal(0)
    if prompt_price is not None:
        total += Decimal(prompt_tokens) * Decimal(prompt_price) / Decimal(1_000_000)
    if completion_price is not None:
        total += Decimal(completion_tokens) * Decimal(completion_price) / Decimal(1_000_000)
    return total.quantize(Decimal("0.000001"))


# --- The backend -------------------------------------------------------------------------------------


def api_endpoint(model: LanguageModel) -> ApiEndpoint:
    return ApiEndpoint(
        base_url=model.api_base_url,
        model_id=model.api_model_id,
        api_key_env=model.api_key_env,
        max_attempts=settings.STYLEGAP_API_MAX_ATTEMPTS,
        backoff_s=settings.STYLEGAP_API_BACKOFF_SECONDS,
    )


def api_messages(text: str, system_prompt: str) -> list[dict]:
    return ([{"role": "system", "content": system_prompt}] if system_prompt else []) + [
        {"role": "user", "content": text}
    ]


def answer_chunks(
    model: LanguageModel,
    texts: list[str],
    *,
    system_prompt: str,
    temperature: float,
    top_p: float,
    max_new_tokens: int,
    seed: int,
) -> Iterator[tuple[int, list[ApiAnswer], float]]:
    """Ask the model every text, a few pool-fulls at a time; yields (start, answers, seconds) per chunk.

    Callers record progress and check their cancel flag between chunks.
    """
    sampling = Sampling(temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens, seed=seed)
    return message_chunks(model, [api_messages(text, system_prompt) for text in texts], sampling)


def message_chunks(
    model: LanguageModel, conversations: list[Messages], sampling: Sampling
) -> Iterator[tuple[int, list[ApiAnswer], float]]:
    """Send every conversation with ``STYLEGAP_API_CONCURRENCY`` requests in flight; yields (start, answers,
    seconds) per chunk of ``2 x STYLEGAP_API_CONCURRENCY``, in order.

    The pool keeps working while the caller stores a chunk: the next chunk is queued before one is yielded,
    so no request slot idles between chunks. Closing the generator (a cancel, an error) drops the requests
    not yet sent and waits for those in flight. ``seconds`` is the time the caller waited for the chunk (the
    time it spent storing the previous one left out).
    """
    endpoint = api_endpoint(model)
    concurrency = max(1, settings.STYLEGAP_API_CONCURRENCY)
    chunk = concurrency * 2
    starts = range(0, len(conversations), chunk)
    pool = ThreadPoolExecutor(max_workers=concurrency)

    def submit(start: int) -> list[Future]:
        return [
            pool.submit(
                chat_completion,
                endpoint,
                request_body(
                    endpoint,
                    messages,
                    temperature=sampling.temperature,
                    top_p=sampling.top_p,
                    max_new_tokens=sampling.max_new_tokens,
                    seed=sampling.seed,
                ),
            )
            for messages in conversations[start : start + chunk]
        ]

    try:
        last = time.perf_counter()
        queued = submit(starts[0]) if starts else []
        for i, start in enumerate(starts):
            futures, queued = queued, (submit(starts[i + 1]) if i + 1 < len(starts) else [])
            results = awaited(futures, last)
            now = time.perf_counter()
            yield start, results, now - last
            last = time.perf_counter()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# While a chunk is awaited, the step listener hears the tokens answered so far this often (it throttles itself).
WAIT_STEP_S = 0.1


def awaited(futures: list[Future], started: float) -> list[ApiAnswer]:
    """The futures' answers in order. Meanwhile whoever listens to steps (``listening_to_steps``) hears the
    completion tokens of the chunk's answers back so far, as a local model's decoding steps report them: a
    job's progress, its heartbeat and its shard's lease advance during a long chunk (slow or long answers,
    back-offs), and a cancel raised by the listener stops the wait."""
    listener = step_listener()
    results: list[ApiAnswer] = []
    for future in futures:
        while listener is not None and not future.done():
            listener(sum(r.completion_tokens for r in results), time.perf_counter() - started)
            wait([future], timeout=WAIT_STEP_S)
        results.append(future.result())
    return results


class ApiBackend(Backend):
    kinds = (ModelKind.OPENAI_API,)
    queue = "api"
    task = "inference_workers.tasks.call_api_job"

    def validate(self, model: LanguageModel) -> str:
        endpoint = api_endpoint(model)
        messages = [{"role": "user", "content": SMOKE_PROMPT}]
        body = request_body(endpoint, messages, temperature=0, top_p=1, max_new_tokens=SMOKE_TOKENS, seed=0)
        try:
            said = chat_completion(endpoint, body).text
        except ApiError as exc:
            raise Refused(f"the API test request failed. {exc}") from exc
        return f"Ready: the API answered a test request ({said[:80]!r})."

    def cost(self, model: LanguageModel, prompt_tokens: int, completion_tokens: int) -> Decimal:
        return cost_usd(prompt_tokens, completion_tokens, model.prompt_price_per_mtok, model.completion_price_per_mtok)

    def generate(self, model: LanguageModel, config: DecodingConfig, prompts: list[Prompt]) -> Iterator[Batch]:
        chunks = answer_chunks(
            model,
            [p.text for p in prompts],
            system_prompt=config.system_prompt,
            temperature=config.temperature,
            top_p=config.top_p,
            max_new_tokens=config.max_new_tokens,
            seed=config.seed,
        )
        for start, results, seconds in chunks:
            part = prompts[start : start + len(results)]
            retries = sum(r.retries for r in results)
            yield Batch(
                [
                    Answer(p, r.text, r.prompt_tokens, r.completion_tokens, r.latency_ms)
                    for p, r in zip(part, results, strict=True)
                ],
                seconds=seconds,
                cost_usd=self.cost(
                    model, sum(r.prompt_tokens for r in results), sum(r.completion_tokens for r in results)
                ),
                api_requests=len(results) + retries,
                api_retries=retries,
            )

    def chat(self, model: LanguageModel, conversations: list[Messages], sampling: Sampling) -> Iterator[ChatBatch]:
        for start, results, seconds in message_chunks(model, conversations, sampling):
            retries = sum(r.retries for r in results)
            yield ChatBatch(
                list(range(start, start + len(results))),
                [Reply(r.text, r.prompt_tokens, r.completion_tokens, r.latency_ms) for r in results],
                seconds=seconds,
                cost_usd=self.cost(
                    model, sum(r.prompt_tokens for r in results), sum(r.completion_tokens for r in results)
                ),
                api_requests=len(results) + retries,
                api_retries=retries,
            )

    def answer(self, model: LanguageModel, questions: list[str], max_new_tokens: int):
        chunks = answer_chunks(
            model, questions, system_prompt="", temperature=0.0, top_p=1.0, max_new_tokens=max_new_tokens, seed=0
        )
        for start, results, _seconds in chunks:
            yield list(range(start, start + len(results))), [r.text for r in results]
