"""A checkpoint on the Hugging Face Hub (or a mirror at HF_ENDPOINT), downloaded by the worker with huggingface_hub.

The revision the researcher gives (a commit sha, a branch or a tag) is resolved to its commit once, and every
file is fetched at that commit, so a later push to the branch never changes a registered model's weights.
Only files matching STYLEGAP_HUB_ALLOW_PATTERNS are fetched (safetensors, JSON, tokenizer files): a repo whose
weights are pickle-based (``pytorch_model.bin``) is refused before a byte of it is downloaded. The downloaded
folder then goes through the same checks as an upload (``checkpoints.validate_*``).
"""

import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from django.conf import settings

from inference_workers.checkpoints import PICKLE_SUFFIXES, CheckpointRefused, check_member_name

WEIGHT_SUFFIXES = (".safetensors", ".gguf")
COMMIT_SHA = re.compile(r"^[0-9a-f]{40}$")
# Progress is written at most this often (seconds): a row update per 10 MiB chunk would be thousands.
PROGRESS_EVERY_S = 0.5

Progress = Callable[[int, int], None]  # (bytes on disk so far, bytes in all)


@dataclass(frozen=True)
class HubSnapshot:
    commit: str
    files: dict[str, int]  # the allowed files fetched, with their sizes


def check_repo_reference(repo_id: str, revision: str) -> None:
    """A well-formed ``namespace/name`` repo id and a revision given (CheckpointRefused otherwise)."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        raise CheckpointRefused(f"{repo_id!r} is not a Hub repo id ({exc}).") from exc
    if not revision or any(c.isspace() for c in revision) or ".." in revision:
        raise CheckpointRefused("Pin a revision of the Hub repo: a commit sha, or a branch or tag the worker pins.")


def hub_token() -> str | bool:
    """The read token from the worker's environment variable named by STYLEGAP_HF_TOKEN_ENV; False for none
    (never a token cached in the worker's home folder)."""
    return os.environ.get(settings.STYLEGAP_HF_TOKEN_ENV) or False


def allow_patterns(gguf_file: str = "") -> list[str]:
    return [*settings.STYLEGAP_HUB_ALLOW_PATTERNS, *([gguf_file] if gguf_file else [])]


def resolve(repo_id: str, revision: str, patterns: list[str]) -> HubSnapshot:
    """The commit the revision points to and the allowed files there; refused when nothing safe holds weights."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError
    from huggingface_hub.utils import filter_repo_objects

    check_repo_reference(repo_id, revision)
    api = HfApi(endpoint=settings.STYLEGAP_HF_ENDPOINT, token=hub_token())
    try:
        info = api.model_info(repo_id, revision=revision, files_metadata=True)
    except RevisionNotFoundError as exc:
        raise CheckpointRefused(f"The Hub repo {repo_id} has no revision {revision!r}.") from exc
    except (RepositoryNotFoundError, GatedRepoError) as exc:
        raise CheckpointRefused(
            f"The Hub repo {repo_id} was not found, or it is private or gated and the token in "
            f"${settings.STYLEGAP_HF_TOKEN_ENV} on the worker does not open it."
        ) from exc
    except HfHubHTTPError as exc:
        raise CheckpointRefused(f"The Hub at {settings.STYLEGAP_HF_ENDPOINT} refused: {str(exc)[:300]}") from exc
    if not info.sha or not COMMIT_SHA.match(info.sha):
        raise CheckpointRefused(f"The Hub did not say which commit {revision!r} of {repo_id} is.")
    sizes = {s.rfilename: s.size or 0 for s in info.siblings or []}
    for name in sizes:
        check_member_name(name)
    chosen = sorted(filter_repo_objects(sizes, allow_patterns=patterns))
    if not any(name.endswith(WEIGHT_SUFFIXES) for name in chosen):
        pickled = sorted(n for n in sizes if PurePosixPath(n).suffix.lower() in PICKLE_SUFFIXES)
        if pickled:
            raise CheckpointRefused(
                f"The Hub repo {repo_id} at {info.sha[:12]} holds its weights only as {', '.join(pickled[:3])}: "
                "pickle-based files can run code when loaded, so they are never downloaded. "
                "Pick a revision with .safetensors weights (or convert them) and register that."
            )
        raise CheckpointRefused(f"The Hub repo {repo_id} at {info.sha[:12]} has no .safetensors weights.")
    total = sum(sizes[n] for n in chosen)
    if total > settings.STYLEGAP_MAX_UNPACKED_BYTES:
        raise CheckpointRefused(
            f"The allowed files of {repo_id} come to {total:,} bytes, over the limit of "
            f"{settings.STYLEGAP_MAX_UNPACKED_BYTES:,} bytes (STYLEGAP_MAX_UNPACKED_BYTES)."
        )
    return HubSnapshot(commit=info.sha, files={n: sizes[n] for n in chosen})


def download(repo_id: str, snapshot: HubSnapshot, dest: Path, progress: Progress) -> None:
    """Fetch the snapshot's files at its commit into ``dest``; a file already complete there is kept, a
    partial one resumes. ``progress`` is called as bytes arrive (at most every PROGRESS_EVERY_S) and at the end."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError
    from huggingface_hub.utils import tqdm as hub_tqdm

    total = sum(snapshot.files.values())
    state = {"done": 0, "reported_at": 0.0}

    def advance(n: int) -> None:
        state["done"] += n
        now = time.monotonic()
        if now - state["reported_at"] >= PROGRESS_EVERY_S:
            state["reported_at"] = now
            progress(min(state["done"], total), total)

    class ReportingBar(hub_tqdm):
        # huggingface_hub calls update() with each chunk written, even on a bar it has disabled.
        def update(self, n=1):
            advance(n or 0)
            return super().update(n)

    dest.mkdir(parents=True, exist_ok=True)
    progress(0, total)
    for name, size in snapshot.files.items():
        before = state["done"]
        try:
            hf_hub_download(
                repo_id,
                name,
                revision=snapshot.commit,
                local_dir=dest,
                endpoint=settings.STYLEGAP_HF_ENDPOINT,
                token=hub_token(),
                tqdm_class=ReportingBar,
            )
        except HfHubHTTPError as exc:
            raise CheckpointRefused(f"Downloading {name} from the Hub failed: {str(exc)[:300]}") from exc
        # A file already on disk (an earlier, interrupted validation) counts without being fetched again.
        state["done"] = before + size
    progress(total, total)
