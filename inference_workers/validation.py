"""Is a registered model usable? Files first (safety), then a smoke generation; the verdict in plain words."""

import logging

from inference_workers.backends.imported import ImportRefused, parse_outputs
from inference_workers.backends.openai_api import ApiError
from inference_workers.checkpoints import CheckpointRefused
from inference_workers.models import LanguageModel, ModelKind

logger = logging.getLogger(__name__)

SMOKE_PROMPT = "Say hello."
SMOKE_TOKENS = 8


def smoke_local(model: LanguageModel) -> str:
    from inference_workers.backends import local
    from inference_workers.registry import weights_spec

    # Loaded outside the job cache: validation runs on the default queue, and a refused model must not linger.
    loaded = local.load_model(weights_spec(model), device="cpu")
    rendered = local.render_prompt(loaded.tokenizer, SMOKE_PROMPT)
    (answer,), _ = local.generate_batch(loaded, [rendered], temperature=0, top_p=1, max_new_tokens=SMOKE_TOKENS, seed=0)
    if answer.completion_tokens < 1:
        raise CheckpointRefused("The smoke generation produced no tokens.")
    return answer.text


def smoke_api(model: LanguageModel) -> str:
    from inference_workers.backends import openai_api
    from inference_workers.jobs import api_endpoint

    endpoint = api_endpoint(model)
    body = openai_api.request_body(
        endpoint,
        [{"role": "user", "content": SMOKE_PROMPT}],
        temperature=0,
        top_p=1,
        max_new_tokens=SMOKE_TOKENS,
        seed=0,
    )
    return openai_api.chat_completion(endpoint, body).text


def check_imported(model: LanguageModel) -> str:
    if not model.checkpoint:
        raise ImportRefused("Upload the answers as a JSONL file (one object a line: prompt_id or prompt, answer).")
    with model.checkpoint.open("rb") as fh:
        answers = parse_outputs(fh)
    return f"{len(answers)} answers"


def validate(model: LanguageModel) -> tuple[bool, str]:
    """(ready?, message). Known refusals keep their own words; anything else is reported with its type."""
    from inference_workers.registry import check_files

    try:
        if model.kind == ModelKind.OPENAI_API:
            said = smoke_api(model)
            return True, f"Ready: the API answered a test request ({said[:80]!r})."
        if model.kind == ModelKind.IMPORTED:
            return True, f"Ready: the file holds {check_imported(model)}."
        check_files(model)
        said = smoke_local(model)
        return True, f"Ready: the weights passed the safety checks and a test generation answered {said[:80]!r}."
    except (CheckpointRefused, ImportRefused) as exc:
        return False, f"Refused: {exc}"
    except ApiError as exc:
        return False, f"Refused: the API test request failed. {exc}"
    except Exception as exc:
        logger.exception("validating model %s failed", model.pk)
        return False, f"Refused: the test generation failed ({type(exc).__name__}: {str(exc)[:500]})."
