"""The Protocols every part implements (embedder, loader, vector store, dense collection, graph
index, chat model) and the shapes they exchange. The core: imports no part. Each part's `base`
module re-exports its Protocols beside the registry of its backends."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from handbook.types import (
    Chunk,
    Document,
    GraphContext,
    GraphMode,
    Message,
    SearchFilter,
    SparseVector,
)

__all__ = [
    "ChatModel",
    "Dense",
    "DenseCollection",
    "Embedder",
    "GraphIndex",
    "Hit",
    "Loader",
    "Point",
    "Scored",
    "VectorStore",
    "Vectors",
]

Vectors = npt.NDArray[np.float32]
"""Dense vectors, L2-normalised: one row per text."""
Hit = tuple[Chunk, float]
Dense = npt.NDArray[np.float32]
Point = tuple[str, dict[str, Any], list[float] | None]
"""A keyed point of a `DenseCollection`: key, payload, vector (when asked for)."""
Scored = tuple[str, dict[str, Any], float]


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


@runtime_checkable
class DenseCollection(Protocol):
    """A dense-only collection in the same Qdrant as the chunks, points addressed by string
    keys (the knowledge graph's entity and relation vectors)."""

    async def upsert(
        self, keys: Sequence[str], vectors: Dense, payloads: Sequence[dict[str, Any]]
    ) -> None: ...

    async def get(self, keys: Sequence[str], *, vectors: bool = False) -> list[Point]:
        """The points found, in the order of `keys` (missing keys are left out)."""
        ...

    async def search(self, vector: Dense, limit: int, min_score: float) -> list[Scored]: ...

    async def delete(self, keys: Sequence[str]) -> None: ...

    async def delete_matching(self, field: str, values: Sequence[str]) -> None:
        """Remove every point whose payload `field` is one of `values`."""
        ...

    async def clear(self) -> None: ...


@runtime_checkable
class VectorStore(Protocol):
    """Chunks with a dense and a sparse vector each. Point ids are the chunk ids."""

    name: str

    async def open(self, dim: int) -> None:
        """Create the collection if needed; fail if it exists with another dimension."""
        ...

    async def close(self) -> None:
        """Flush and release files and connections."""
        ...

    async def upsert(
        self,
        chunks: Sequence[Chunk],
        dense: npt.NDArray[np.float32],
        sparse: Sequence[SparseVector],
    ) -> None:
        """Insert or replace chunks; durable when this returns."""
        ...

    async def chunk_ids(self, doc_id: str) -> set[str]:
        """Ids of the chunks stored for one document."""
        ...

    async def delete(self, ids: Sequence[str]) -> None:
        """Remove chunks by id (missing ids are ignored)."""
        ...

    async def delete_document(self, doc_id: str) -> None:
        """Remove every chunk of a document."""
        ...

    async def search_dense(
        self, vector: npt.NDArray[np.float32], limit: int, where: SearchFilter
    ) -> list[Hit]:
        """Nearest chunks by cosine similarity, best first."""
        ...

    async def search_sparse(
        self, vector: SparseVector, limit: int, where: SearchFilter
    ) -> list[Hit]:
        """Best lexical matches (dot product with IDF), best first."""
        ...

    async def get(self, ids: Sequence[str]) -> list[tuple[Chunk, list[float]]]:
        """Chunks by id with their dense vectors, in the order of `ids` (missing left out)."""
        ...

    async def count(self) -> int:
        """Number of stored chunks."""
        ...

    async def collection(self, name: str, dim: int) -> DenseCollection:
        """A dense collection beside the chunks' (created if needed); dropped with them."""
        ...

    async def drop(self) -> None:
        """Delete the whole collection (`handbook reset`); the store is closed afterwards."""
        ...


class GraphIndex(Protocol):
    """The knowledge graph as retrieval sees it."""

    async def query(self, question: str, mode: GraphMode, top_k: int) -> GraphContext:
        """Facts for a question and the chunk ids behind them, best first."""
        ...


@runtime_checkable
class ChatModel(Protocol):
    """Streams an answer to a conversation."""

    name: str
    load_seconds: float | None

    def stream(self, messages: Sequence[Message]) -> AsyncIterator[str]:
        """Yield the answer's text as it is generated. Raises BackendUnavailable when the
        model cannot answer (not installed, server down, timed out)."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` in this model's own tokenizer."""
        ...

    async def load(self) -> None:
        """Load the model now (in-process) or into the server's memory (Ollama), so that the
        first question does not wait for it; records `load_seconds`."""
        ...

    async def close(self) -> None:
        """Free the model (in-process) or the connection (server)."""
        ...
