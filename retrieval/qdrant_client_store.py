"""Qdrant through qdrant-client: a server (`store.url`, production) or local mode (`path`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from handbook.config import StoreSettings
from handbook.errors import BackendUnavailable, ConfigError, StoreLocked
from handbook.protocols import Hit, Point, Scored
from handbook.types import Chunk, SearchFilter, SparseVector
from retrieval.store_common import (
    DENSE,
    KEY,
    SPARSE,
    BlockingStore,
    chunk_from_payload,
    chunk_payload,
    chunks_in_order,
    named_vectors,
    point_id,
    query_vector,
)

BATCH = 256


class QdrantClientStore(BlockingStore):
    def __init__(self, settings: StoreSettings, path: Path | None) -> None:
        super().__init__("qdrant")
        self._settings = settings
        self._path = path
        self._collection = settings.collection
        self.name = f"qdrant-local:{path}" if path else f"qdrant:{settings.url}"
        self._client: Any = None

    # --- lifecycle -------------------------------------------------------------------------

    def _connect(self) -> Any:
        from qdrant_client import QdrantClient

        try:
            if self._path is not None:
                self._path.mkdir(parents=True, exist_ok=True)
                return QdrantClient(path=str(self._path))
            return QdrantClient(url=self._settings.url, api_key=self._settings.api_key, timeout=30)
        except RuntimeError as exc:
            if "already accessed" in str(exc):
                raise StoreLocked(
                    f"The index at {self._path} is open in another process. Stop it first."
                ) from exc
            raise

    def _sync_open(self, dim: int) -> None:
        from qdrant_client import models

        self._client = self._connect()
        try:
            exists = self._client.collection_exists(self._collection)
        except Exception as exc:  # httpx/grpc errors differ by transport
            raise BackendUnavailable(
                f"Qdrant at {self._settings.url} does not answer ({type(exc).__name__}). "
                "Start it (docker compose up -d qdrant) or check store.url."
            ) from exc
        if exists:
            info = self._client.get_collection(self._collection)
            vectors = info.config.params.vectors
            size = vectors[DENSE].size if isinstance(vectors, dict) else None
            if size != dim:
                raise ConfigError(
                    f"The index holds {size}-dimensional vectors, but the embedder makes {dim}. "
                    "It was built with another embedding model: run `handbook reset` and index "
                    "again, or switch embedder.backend back."
                )
            return
        self._client.create_collection(
            self._collection,
            vectors_config={DENSE: models.VectorParams(size=dim, distance=models.Distance.COSINE)},
            sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
            **self._cluster(),
        )
        if self._path is None:  # payload indexes are a server feature
            for field in ("doc_id", "language"):
                self._client.create_payload_index(
                    self._collection, field, models.PayloadSchemaType.KEYWORD
                )

    def _cluster(self) -> dict[str, int]:
        """Sharding and replication of new collections (a Qdrant cluster; server only)."""
        if self._path is not None:
            return {}
        options = {
            "shard_number": self._settings.shards,
            "replication_factor": self._settings.replication_factor,
            "write_consistency_factor": self._settings.write_consistency_factor,
        }
        return {name: value for name, value in options.items() if value is not None}

    def _sync_close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _sync_upsert(
        self,
        chunks: Sequence[Chunk],
        dense: npt.NDArray[np.float32],
        sparse: Sequence[SparseVector],
    ) -> None:
        from qdrant_client import models

        points = [
            models.PointStruct(
                id=chunk.id,
                vector=named_vectors(dense[i], sparse[i], models.SparseVector),
                payload=chunk_payload(chunk),
            )
            for i, chunk in enumerate(chunks)
        ]
        for start in range(0, len(points), BATCH):
            self._client.upsert(self._collection, points[start : start + BATCH], wait=True)

    def _sync_chunk_ids(self, doc_id: str) -> set[str]:
        ids: set[str] = set()
        offset = None
        while True:
            points, offset = self._client.scroll(
                self._collection,
                scroll_filter=_filter(SearchFilter(doc_ids=(doc_id,))),
                limit=1024,
                offset=offset,
                with_payload=False,
                with_vectors=False,
            )
            ids.update(str(p.id) for p in points)
            if offset is None:
                return ids

    def _sync_delete(self, ids: list[str]) -> None:
        from qdrant_client import models

        selector = models.PointIdsList(points=list(ids))
        self._client.delete(self._collection, points_selector=selector, wait=True)

    def _sync_delete_document(self, doc_id: str) -> None:
        from qdrant_client import models

        selector = models.FilterSelector(filter=_filter(SearchFilter(doc_ids=(doc_id,))))
        self._client.delete(self._collection, points_selector=selector, wait=True)

    def _sync_search(self, using: str, vector: Any, limit: int, where: SearchFilter) -> list[Hit]:
        from qdrant_client import models

        response = self._client.query_points(
            self._collection,
            query=query_vector(using, vector, models.SparseVector),
            using=using,
            limit=limit,
            query_filter=_filter(where),
            with_payload=True,
        )
        return [
            (chunk_from_payload(str(p.id), p.payload or {}), float(p.score))
            for p in response.points
        ]

    def _sync_get(self, ids: list[str]) -> list[tuple[Chunk, list[float]]]:
        points = self._client.retrieve(
            self._collection, list(ids), with_payload=True, with_vectors=[DENSE]
        )
        return chunks_in_order(ids, points)

    def _sync_count(self) -> int:
        return int(self._client.count(self._collection, exact=True).count)

    def _sync_drop(self) -> None:
        prefix = f"{self._collection}__"
        for described in self._client.get_collections().collections:
            if described.name == self._collection or described.name.startswith(prefix):
                self._client.delete_collection(described.name)

    # --- dense collections beside the chunks' -------------------------------------------

    def _name(self, name: str) -> str:
        return f"{self._collection}__{name}"

    def _sync_open_collection(self, name: str, dim: int) -> None:
        from qdrant_client import models

        if self._client.collection_exists(self._name(name)):
            return
        self._client.create_collection(
            self._name(name),
            vectors_config={DENSE: models.VectorParams(size=dim, distance=models.Distance.COSINE)},
            **self._cluster(),
        )
        if self._path is None:
            self._client.create_payload_index(
                self._name(name), KEY, models.PayloadSchemaType.KEYWORD
            )

    def _sync_c_upsert(self, name: str, points: list[tuple[str, Any, dict[str, Any]]]) -> None:
        from qdrant_client import models

        structs = [
            models.PointStruct(id=pid, vector={DENSE: list(map(float, vector))}, payload=payload)
            for pid, vector, payload in points
        ]
        for start in range(0, len(structs), BATCH):
            self._client.upsert(self._name(name), structs[start : start + BATCH], wait=True)

    def _sync_c_get(self, name: str, keys: list[str], *, vectors: bool) -> list[Point]:
        points = self._client.retrieve(
            self._name(name),
            [point_id(key) for key in keys],
            with_payload=True,
            with_vectors=[DENSE] if vectors else False,
        )
        return [
            (
                str((p.payload or {})[KEY]),
                p.payload or {},
                list(p.vector[DENSE]) if vectors else None,
            )
            for p in points
        ]

    def _sync_c_search(self, name: str, vector: Any, limit: int, min_score: float) -> list[Scored]:
        response = self._client.query_points(
            self._name(name),
            query=list(map(float, vector)),
            using=DENSE,
            limit=limit,
            with_payload=True,
            score_threshold=min_score,
        )
        return [
            (str((p.payload or {})[KEY]), p.payload or {}, float(p.score)) for p in response.points
        ]

    def _sync_c_delete(self, name: str, keys: list[str]) -> None:
        from qdrant_client import models

        selector = models.PointIdsList(points=[point_id(key) for key in keys])
        self._client.delete(self._name(name), points_selector=selector, wait=True)

    def _sync_c_delete_matching(self, name: str, field: str, values: list[str]) -> None:
        from qdrant_client import models

        where = models.Filter(
            must=[models.FieldCondition(key=field, match=models.MatchAny(any=values))]
        )
        self._client.delete(
            self._name(name), points_selector=models.FilterSelector(filter=where), wait=True
        )

    def _sync_c_clear(self, name: str, dim: int) -> None:
        self._client.delete_collection(self._name(name))
        self._sync_open_collection(name, dim)


def _filter(where: SearchFilter) -> Any:
    from qdrant_client import models

    must: list[Any] = []
    if where.doc_ids:
        must.append(
            models.FieldCondition(key="doc_id", match=models.MatchAny(any=list(where.doc_ids)))
        )
    if where.language:
        must.append(
            models.FieldCondition(key="language", match=models.MatchValue(value=where.language))
        )
    return models.Filter(must=must) if must else None
