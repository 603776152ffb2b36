"""The vector store protocol, its registry, and helpers shared by the Qdrant backends."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar, runtime_checkable

import numpy as np
import numpy.typing as npt

from handbook.config import StoreSettings
from handbook.registry import Registry
from handbook.types import Chunk, SearchFilter, SparseVector

DENSE = "dense"
SPARSE = "sparse"
T = TypeVar("T")

Hit = tuple[Chunk, float]


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

    async def count(self) -> int:
        """Number of stored chunks."""
        ...

    async def drop(self) -> None:
        """Delete the whole collection (`handbook reset`); the store is closed afterwards."""
        ...


STORES: Registry[VectorStore] = Registry("vector store")


def chunk_payload(chunk: Chunk) -> dict[str, Any]:
    return {
        "doc_id": chunk.doc_id,
        "ordinal": chunk.ordinal,
        "text": chunk.text,
        "title": chunk.title,
        "path": chunk.path,
        "page": chunk.page,
        "heading_path": list(chunk.heading_path),
        "language": chunk.language,
    }


def chunk_from_payload(point_id: str, payload: dict[str, Any]) -> Chunk:
    return Chunk(
        id=str(point_id),
        doc_id=payload["doc_id"],
        ordinal=int(payload["ordinal"]),
        text=payload["text"],
        title=payload["title"],
        path=payload["path"],
        page=payload.get("page"),
        heading_path=tuple(payload.get("heading_path") or ()),
        language=payload["language"],
    )


class SingleThread:
    """Runs a blocking library's calls on one dedicated thread, off the event loop.

    Embedded Qdrant engines are not safe to call from several threads at once.
    """

    def __init__(self, name: str) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)


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
