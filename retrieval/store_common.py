"""What the vector store backends share: the shapes of hits and points, point keys, the chunk
payload, and adapters that run a blocking engine on one thread of its own. Apart from
`retrieval.base` (the table of store backends, which imports them), so that no backend
imports the module that registers it."""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from handbook.protocols import Dense, Hit, Point, Scored
from handbook.types import Chunk, SearchFilter, SparseVector

DENSE = "dense"
SPARSE = "sparse"
T = TypeVar("T")

KEY = "key"


def point_id(key: str) -> str:
    """Qdrant point ids are UUIDs or integers: a stable UUID for any string key."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"handbook:{key}"))


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


def named_vectors(
    dense: npt.NDArray[np.float32], sparse: SparseVector, make_sparse: Callable[..., Any]
) -> dict[str, Any]:
    """A chunk's two named vectors, the sparse one in the client library's type."""
    return {DENSE: dense.tolist(), SPARSE: sparse_in(sparse, make_sparse)}


def query_vector(using: str, vector: Any, make_sparse: Callable[..., Any]) -> Any:
    """The query for the named vector `using`: a list of floats, or the library's sparse type."""
    return sparse_in(vector, make_sparse) if using == SPARSE else vector.tolist()


def sparse_in(vector: SparseVector, make_sparse: Callable[..., Any]) -> Any:
    return make_sparse(indices=list(vector.indices), values=list(vector.values))


def chunks_in_order(ids: Sequence[str], records: Sequence[Any]) -> list[tuple[Chunk, list[float]]]:
    """The chunks and dense vectors of retrieved `records`, in the order of `ids`; ids that
    were not found are left out."""
    found = {
        str(r.id): (chunk_from_payload(str(r.id), r.payload or {}), list(r.vector[DENSE]))
        for r in records
    }
    return [found[i] for i in ids if i in found]


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

    def _sync_get(self, ids: list[str]) -> list[tuple[Chunk, list[float]]]:
        raise NotImplementedError

    def _sync_count(self) -> int:
        raise NotImplementedError

    def _sync_drop(self) -> None:
        raise NotImplementedError

    # A `DenseCollection` beside the chunks': same engine, same thread.

    def _sync_open_collection(self, name: str, dim: int) -> None:
        raise NotImplementedError

    def _sync_c_upsert(self, name: str, points: list[tuple[str, Any, dict[str, Any]]]) -> None:
        raise NotImplementedError

    def _sync_c_get(self, name: str, keys: list[str], *, vectors: bool) -> list[Point]:
        raise NotImplementedError

    def _sync_c_search(self, name: str, vector: Any, limit: int, min_score: float) -> list[Scored]:
        raise NotImplementedError

    def _sync_c_delete(self, name: str, keys: list[str]) -> None:
        raise NotImplementedError

    def _sync_c_delete_matching(self, name: str, field: str, values: list[str]) -> None:
        raise NotImplementedError

    def _sync_c_clear(self, name: str, dim: int) -> None:
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

    async def get(self, ids: Sequence[str]) -> list[tuple[Chunk, list[float]]]:
        if not ids:
            return []
        return await self._thread.run(self._sync_get, list(ids))

    async def count(self) -> int:
        return await self._thread.run(self._sync_count)

    async def collection(self, name: str, dim: int) -> BlockingCollection:
        await self._thread.run(self._sync_open_collection, name, dim)
        return BlockingCollection(self, name, dim)

    async def drop(self) -> None:
        await self._thread.run(self._sync_drop)
        await self.close()


class BlockingCollection:
    """A `DenseCollection` whose calls run on its store's thread."""

    def __init__(self, store: BlockingStore, name: str, dim: int) -> None:
        self._store = store
        self._name = name
        self._dim = dim

    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await self._store._thread.run(functools.partial(fn, self._name, *args, **kwargs))

    async def upsert(
        self, keys: Sequence[str], vectors: Dense, payloads: Sequence[dict[str, Any]]
    ) -> None:
        points = [
            (point_id(key), vectors[i], {**payloads[i], KEY: key}) for i, key in enumerate(keys)
        ]
        if points:
            await self._run(self._store._sync_c_upsert, points)

    async def get(self, keys: Sequence[str], *, vectors: bool = False) -> list[Point]:
        if not keys:
            return []
        found = await self._run(self._store._sync_c_get, list(keys), vectors=vectors)
        by_key = {point[0]: point for point in found}
        return [by_key[key] for key in keys if key in by_key]

    async def search(self, vector: Dense, limit: int, min_score: float) -> list[Scored]:
        return await self._run(self._store._sync_c_search, vector, limit, min_score)

    async def delete(self, keys: Sequence[str]) -> None:
        if keys:
            await self._run(self._store._sync_c_delete, list(keys))

    async def delete_matching(self, field: str, values: Sequence[str]) -> None:
        if values:
            await self._run(self._store._sync_c_delete_matching, field, list(values))

    async def clear(self) -> None:
        await self._run(self._store._sync_c_clear, self._dim)
