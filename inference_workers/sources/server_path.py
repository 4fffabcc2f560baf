"""A checkpoint already on the worker's disk, accepted only inside the directories an admin listed.

The path is resolved (symbolic links followed, ``..`` removed) before it is compared, so a link inside an
allowed directory that points outside it is refused like the outside path itself.
"""

from pathlib import Path

from django.conf import settings

from inference_workers.checkpoints import CheckpointRefused


def allowed_directories() -> list[Path]:
    """STYLEGAP_CHECKPOINT_DIRS, resolved, and the packaged SmolLM2 folder (the demo model) always."""
    from inference_workers.backends.local import smollm2_folder

    return [Path(d).resolve() for d in settings.STYLEGAP_CHECKPOINT_DIRS] + [smollm2_folder().resolve()]


def allowed_folder(path: str) -> Path:
    """The resolved folder when it lies inside an allowed directory; CheckpointRefused otherwise."""
    if not Path(path).is_absolute():
        raise CheckpointRefused(f"The server path must be absolute ({path!r} is not).")
    resolved = Path(path).resolve()
    allowed = allowed_directories()
    if not any(resolved == d or resolved.is_relative_to(d) for d in allowed):
        listed = ", ".join(str(d) for d in allowed[:-1]) or "(none)"
        raise CheckpointRefused(
            f"The server path {resolved} is outside the checkpoint directories this site allows "
            f"(STYLEGAP_CHECKPOINT_DIRS: {listed})."
        )
    return resolved
