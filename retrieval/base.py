"""The vector store and graph Protocols and the store registry. The backends' shared helpers
live in `retrieval.store_common`, which the backends import instead of this module (no circle)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from handbook.config import StoreSettings
from handbook.registry import Registry
from handbook.types import Chunk, GraphContext, GraphMode, SearchFilter, SparseVector
from retrieval.store_common import Dense, Hit, Point, Scored

__all__ = [
    "STORES",
    "Dense",
    "DenseCollection",
    "GraphIndex",
    "Hit",
    "Point",
    "Scored",
    "VectorStore",
]


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


STORES: Registry[VectorStore] = Registry("vector store")


class GraphIndex(Protocol):
    """The knowledge graph as retrieval sees it."""

    async def query(self, question: str, mode: GraphMode, top_k: int) -> GraphContext:
        """Facts for a question and the chunk ids behind them, best first."""
        ...


def _register_builtins() -> None:
    def qdrant_local(settings: StoreSettings, path: Any) -> VectorStore:
        from retrieval.qdrant_client_store import QdrantClientStore

        return QdrantClientStore(settings, path=path)

    def qdrant_server(settings: StoreSettings, path: Any) -> VectorStore:
        from retrieval.qdrant_client_store import QdrantClientStore

        return QdrantClientStore(settings, path=None)

    def qdrant_edge(settings: StoreSettings, path: Any) -> VectorStore:
        from retrieval.qdrant_edge_store import QdrantEdgeStore

        return QdrantEdgeStore(settings, path=path)

    STORES.register("qdrant-local", qdrant_local)
    STORES.register("qdrant", qdrant_server)
    STORES.register("qdrant-edge", qdrant_edge)


_register_builtins()
