"""What the embedder backends share: the vector type, L2 normalisation, and a base class for
libraries that encode synchronously. Apart from `ingestion.base` (the Protocol and the registry,
which imports the backends), so that no backend imports the module that registers it."""

from __future__ import annotations

import asyncio

import numpy as np
import numpy.typing as npt

from handbook.config import EmbedderSettings
from handbook.protocols import Vectors


class BlockingEmbedder:
    """Base for embedders whose library encodes synchronously: runs `_encode` off the event
    loop and applies the configured query/document prefixes."""

    def __init__(self, settings: EmbedderSettings) -> None:
        self._settings = settings

    def _encode(self, texts: list[str]) -> Vectors:
        raise NotImplementedError

    async def embed_documents(self, texts: list[str]) -> Vectors:
        prefixed = [self._settings.document_prefix + t for t in texts]
        return await asyncio.to_thread(self._encode, prefixed)

    async def embed_query(self, text: str) -> Vectors:
        vectors = await asyncio.to_thread(self._encode, [self._settings.query_prefix + text])
        first: Vectors = vectors[0]
        return first


def normalise(vectors: npt.NDArray[np.floating]) -> Vectors:
    """L2-normalise rows (cosine similarity becomes a dot product)."""
    arr = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(arr, axis=-1, keepdims=True)
    result: Vectors = (arr / np.maximum(norms, 1e-12)).astype(np.float32)
    return result
