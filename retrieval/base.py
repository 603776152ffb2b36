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
Dense = npt.NDArray[np.float32]


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


class BlockingStore:
    """The async `VectorStore` methods over an engine with a blocking API.

    Subclasses implement the `_sync_*` methods; they all run on one thread of the store's own.
    """

    name: str

    def __init__(self, thread_name: str) -> None:
        self._thread = SingleThread(thread_name)

    def _sync_open(self, dim: int) -> None:
        raise NotImplementedError

    def _sync_close(self) -> None:
        raise NotImplementedError

    def _sync_upsert(
        self,
        chunks: Sequence[Chunk],
        dense: npt.NDArray[np.float32],
        sparse: Sequence[SparseVector],
    ) -> None:
        raise NotImplementedError

    def _sync_chunk_ids(self, doc_id: str) -> set[str]:
        raise NotImplementedError

    def _sync_delete(self, ids: list[str]) -> None:
        raise NotImplementedError

    def _sync_delete_document(self, doc_id: str) -> None:
        raise NotImplementedError

    def _sync_search(self, using: str, vector: Any, limit: int, where: SearchFilter) -> list[Hit]:
        raise NotImplementedError

    def _sync_count(self) -> int:
        raise NotImplementedError

    def _sync_drop(self) -> None:
        raise NotImplementedError

    async def open(self, dim: int) -> None:
        await self._thread.run(self._sync_open, dim)

    async def close(self) -> None:
        await self._thread.run(self._sync_close)
        self._thread.shutdown()

    async def upsert(
        self,
        chunks: Sequence[Chunk],
        dense: npt.NDArray[np.float32],
        sparse: Sequence[SparseVector],
    ) -> None:
        if chunks:
            await self._thread.run(self._sync_upsert, chunks, dense, sparse)

    async def chunk_ids(self, doc_id: str) -> set[str]:
        return await self._thread.run(self._sync_chunk_ids, doc_id)

    async def delete(self, ids: Sequence[str]) -> None:
        if ids:
            await self._thread.run(self._sync_delete, list(ids))

    async def delete_document(self, doc_id: str) -> None:
        await self._thread.run(self._sync_delete_document, doc_id)

    async def search_dense(
        self, vector: npt.NDArray[np.float32], limit: int, where: SearchFilter
    ) -> list[Hit]:
        return await self._thread.run(self._sync_search, DENSE, vector, limit, where)

    async def search_sparse(
        self, vector: SparseVector, limit: int, where: SearchFilter
    ) -> list[Hit]:
        if not vector.indices:
            return []
        return await self._thread.run(self._sync_search, SPARSE, vector, limit, where)

    async def count(self) -> int:
        return await self._thread.run(self._sync_count)

    async def drop(self) -> None:
        await self._thread.run(self._sync_drop)
        await self.close()


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
