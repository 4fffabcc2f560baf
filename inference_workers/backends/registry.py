"""Which backend serves which kind of model: one ``register`` line per backend."""

from inference_workers.backends.base import Backend
from inference_workers.backends.imported import ImportedBackend
from inference_workers.backends.local import LocalBackend
from inference_workers.backends.openai_api import ApiBackend

_BY_KIND: dict[str, Backend] = {}


def register(backend: Backend) -> Backend:
    """Serve the backend's kinds with it; a kind another backend already serves is refused."""
    for kind in backend.kinds:
        if kind in _BY_KIND and _BY_KIND[kind] is not backend:
            raise ValueError(f"models of kind {kind!r} already have a backend: {type(_BY_KIND[kind]).__name__}")
    _BY_KIND.update(dict.fromkeys(backend.kinds, backend))
    return backend


def backend_for(model) -> Backend:
    """The backend of a model (or of a kind, given as a string)."""
    kind = model if isinstance(model, str) else model.kind
    try:
        return _BY_KIND[kind]
    except KeyError:
        raise LookupError(f"no generation backend serves models of kind {kind!r}") from None


def load_if_local(model) -> None:
    """Load a local model into this worker's cache (before a shard is claimed); others have nothing to load."""
    backend = backend_for(model)
    if backend.local:
        backend.load(model)


register(LocalBackend())
register(ApiBackend())
register(ImportedBackend())
