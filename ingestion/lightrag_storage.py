"""LightRAG's vector storage over Handbook's Qdrant, registered through LightRAG's storage table
(its public extension point), which finds the class by its name (`STORAGE_NAME`). Entities and
relations live in two dense collections beside the chunks', and the chunk namespace is a view of
our chunk collection, so chunks are embedded once.

With `lightrag_adapter`, the only module that imports `lightrag`; the adapter imports it once
LightRAG is known to be installed (an optional extra), and LightRAG loads it by name.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from lightrag.base import BaseVectorStorage
from lightrag.utils import compute_mdhash_id

from handbook.protocols import DenseCollection
from handbook.types import Chunk
from ingestion.lightrag_shared import SharedStore, chunk_id_of, chunk_key


@dataclass
class HandbookQdrantVectorStorage(BaseVectorStorage):  # type: ignore[misc]  # LightRAG is untyped
    """Entities and relations: a dense collection each, written at once (nothing is
    buffered until `index_done_callback`). Chunks: a read-only view of Handbook's chunk
    collection, whose vectors the indexer already made."""

    def __post_init__(self) -> None:
        self._validate_embedding_func()
        kwargs = self.global_config["vector_db_storage_cls_kwargs"]
        self.cosine_better_than_threshold = kwargs["cosine_better_than_threshold"]
        self._shared: SharedStore = kwargs["handbook"]
        self._batch = int(self.global_config["embedding_batch_num"])
        self._points: DenseCollection | None = None

    @property
    def _chunks(self) -> bool:
        return bool(self.namespace == "chunks")

    async def initialize(self) -> None:
        if not self._chunks:
            self._points = await self._shared.store.collection(
                f"graph_{self.namespace}", self._shared.dim
            )

    async def index_done_callback(self) -> None:
        return None

    async def _embed(self, texts: list[str], context: str) -> Any:
        vectors = await self.embedding_func(texts, context=context)
        return np.asarray(vectors, dtype=np.float32)

    async def _query_vector(self, query: str, given: list[float] | None) -> Any:
        if given is not None:
            return np.asarray(given, dtype=np.float32)
        return (await self._embed([query], "query"))[0]

    @staticmethod
    def _chunk_record(chunk: Chunk) -> dict[str, Any]:
        return {
            "id": chunk_key(chunk.doc_id, chunk.id),
            "content": chunk.text,
            "full_doc_id": chunk.doc_id,
            "file_path": chunk.path,
            "created_at": None,
        }

    @staticmethod
    def _record(key: str, payload: dict[str, Any]) -> dict[str, Any]:
        fields = {k: v for k, v in payload.items() if k != "key"}
        return {**fields, "id": key, "created_at": payload.get("created_at")}

    async def upsert(self, data: dict[str, dict[str, Any]]) -> None:
        if self._chunks or not data or self._points is None:
            return  # chunk vectors are Handbook's own
        keys = list(data)
        contents = [str(data[key]["content"]) for key in keys]
        vectors = [
            await self._embed(contents[i : i + self._batch], "document")
            for i in range(0, len(keys), self._batch)
        ]
        now = int(time.time())
        payloads = [
            {**{k: v for k, v in data[key].items() if k in self.meta_fields}, "created_at": now}
            for key in keys
        ]
        await self._points.upsert(keys, np.concatenate(vectors), payloads)

    async def query(
        self, query: str, top_k: int, query_embedding: list[float] | None = None
    ) -> list[dict[str, Any]]:
        vector = await self._query_vector(query, query_embedding)
        threshold = float(self.cosine_better_than_threshold)
        if self._chunks:
            from handbook.types import SearchFilter

            hits = await self._shared.store.search_dense(vector, top_k, SearchFilter())
            return [
                {**self._chunk_record(chunk), "distance": score}
                for chunk, score in hits
                if score >= threshold
            ]
        assert self._points is not None
        found = await self._points.search(vector, top_k, threshold)
        return [{**self._record(key, payload), "distance": score} for key, payload, score in found]

    async def get_by_id(self, id: str) -> dict[str, Any] | None:
        return (await self.get_by_ids([id]))[0]

    async def get_by_ids(self, ids: list[str]) -> list[dict[str, Any] | None]:
        if self._chunks:
            stored = await self._shared.store.get([chunk_id_of(key) for key in ids])
            by_key = {chunk_key(c.doc_id, c.id): self._chunk_record(c) for c, _ in stored}
        else:
            assert self._points is not None
            points = await self._points.get(ids)
            by_key = {key: self._record(key, payload) for key, payload, _ in points}
        return [by_key.get(key) for key in ids]

    async def get_vectors_by_ids(self, ids: list[str]) -> dict[str, list[float]]:
        if self._chunks:
            stored = await self._shared.store.get([chunk_id_of(key) for key in ids])
            return {chunk_key(c.doc_id, c.id): vector for c, vector in stored}
        assert self._points is not None
        points = await self._points.get(ids, vectors=True)
        return {key: vector for key, _, vector in points if vector is not None}

    async def delete(self, ids: list[str]) -> None:
        if self._points is not None:
            await self._points.delete(ids)

    async def delete_entity(self, entity_name: str) -> None:
        if self._points is not None:
            await self._points.delete([compute_mdhash_id(entity_name, prefix="ent-")])

    async def delete_entity_relation(self, entity_name: str) -> None:
        if self._points is not None:
            await self._points.delete_matching("src_id", [entity_name])
            await self._points.delete_matching("tgt_id", [entity_name])

    async def drop(self) -> dict[str, str]:
        if self._points is not None:
            await self._points.clear()
        return {"status": "success", "message": "data dropped"}
