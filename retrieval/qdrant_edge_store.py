"""Qdrant Edge (`qdrant-edge-py`): Qdrant's own engine in-process. The embedded default.

Chosen over qdrant-client's local mode by benchmark (bench/store_latency.py, bench/README.md):
local mode scans every point in Python, Edge runs Qdrant's segment engine with its HNSW and
sparse indexes. Same collection layout as the server backend: a named dense vector (cosine) and
a named sparse vector with Qdrant's IDF modifier.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from handbook.backends import missing_package
from handbook.config import StoreSettings
from handbook.errors import BackendUnavailable, ConfigError, DiskFull
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

BATCH = 512
CONFIG_FILE = "edge_config.json"


class QdrantEdgeStore(BlockingStore):
    def __init__(self, settings: StoreSettings, path: Path) -> None:
        super().__init__("qdrant-edge")
        self._path = path / settings.collection
        self._min_free_mb = settings.min_free_mb
        self.name = f"qdrant-edge:{self._path}"
        self._shard: Any = None
        self._shards: dict[str, Any] = {}  # the dense collections beside the chunks'

    def _sync_open(self, dim: int) -> None:
        try:
            import qdrant_edge as qe
        except ImportError:
            raise missing_package("qdrant-edge-py") from None
        self._ensure_space()
        try:
            if (self._path / CONFIG_FILE).is_file():
                self._shard = qe.EdgeShard.load(str(self._path))
                self._check_dim(dim)
                return
            self._path.mkdir(parents=True, exist_ok=True)
            config = qe.EdgeConfig(
                vectors={DENSE: qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine)},
                sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
            )
            self._shard = qe.EdgeShard.create(str(self._path), config)
            for field in ("doc_id", "language"):
                self._shard.update(
                    qe.UpdateOperation.create_field_index(field, qe.PayloadSchemaType.Keyword)
                )
        except ConfigError:
            raise
        except Exception as exc:  # the engine raises plain exceptions with its own text
            raise BackendUnavailable(
                f"Could not open the index at {self._path}: {exc}. If another program has it "
                "open, stop that program; if the folder is damaged, run `handbook reset` and "
                "index again."
            ) from exc

    def _ensure_space(self) -> None:
        """Refuse before Qdrant writes: it maps its write-ahead log into memory (32 MB files,
        created on open), and a write to a mapped page the full disk cannot back kills the
        process with SIGBUS, without a message."""
        import shutil

        folder = next(p for p in (self._path, *self._path.parents) if p.exists())
        free_mb = shutil.disk_usage(folder).free / 2**20
        if free_mb < self._min_free_mb:
            raise DiskFull(
                f"Only {free_mb:.0f} MB are free on the disk that holds {self._path}; the "
                f"index needs {self._min_free_mb:g} MB free to be written safely "
                "(store.min_free_mb). Free some space and run the command again: nothing "
                "was changed, and an interrupted `handbook index` resumes where it stopped."
            )

    def _check_dim(self, dim: int) -> None:
        import json

        config = json.loads((self._path / CONFIG_FILE).read_text())
        size = (config.get("vectors", {}).get(DENSE) or {}).get("size")
        if size is not None and int(size) != dim:
            raise ConfigError(
                f"The index holds {size}-dimensional vectors, but the embedder makes {dim}. "
                "It was built with another embedding model: run `handbook reset` and index "
                "again, or switch embedder.backend back."
            )

    def _sync_close(self) -> None:
        failed: Exception | None = None
        for shard in [self._shard, *self._shards.values()]:
            if shard is not None:
                try:
                    shard.flush()
                except Exception as exc:  # the write-ahead log still has every write
                    failed = failed or exc
                shard.close()
        self._shard = None
        self._shards = {}
        if failed is not None and "os error 28" in str(failed):  # ENOSPC, in Rust's words
            raise DiskFull(
                f"The disk that holds {self._path} is full. Free some space and run the "
                "command again: what was written is kept, and `handbook index` resumes."
            ) from failed
        if failed is not None:
            raise failed

    def _sync_upsert(
        self,
        chunks: Sequence[Chunk],
        dense: npt.NDArray[np.float32],
        sparse: Sequence[SparseVector],
    ) -> None:
        import qdrant_edge as qe

        self._ensure_space()
        for start in range(0, len(chunks), BATCH):
            points = [
                qe.Point(
                    id=chunk.id,
                    vector=named_vectors(dense[i], sparse[i], qe.SparseVector),
                    payload=chunk_payload(chunk),
                )
                for i, chunk in enumerate(chunks[start : start + BATCH], start=start)
            ]
            self._shard.update(qe.UpdateOperation.upsert_points(points))
        # No flush here: Edge's write-ahead log already survives a killed process (tested:
        # SIGKILL without flush or close lost nothing); segments are flushed on close.

    def _sync_chunk_ids(self, doc_id: str) -> set[str]:
        import qdrant_edge as qe

        ids: set[str] = set()
        offset = None
        while True:
            records, offset = self._shard.scroll(
                qe.ScrollRequest(
                    offset=offset,
                    limit=1024,
                    filter=_filter(SearchFilter(doc_ids=(doc_id,))),
                    with_payload=False,
                    with_vector=False,
                )
            )
            ids.update(str(r.id) for r in records)
            if offset is None:
                return ids

    def _sync_delete(self, ids: list[str]) -> None:
        import qdrant_edge as qe

        point_ids: list[Any] = list(ids)
        self._shard.update(qe.UpdateOperation.delete_points(point_ids))

    def _sync_delete_document(self, doc_id: str) -> None:
        import qdrant_edge as qe

        where = _filter(SearchFilter(doc_ids=(doc_id,)))
        self._shard.update(qe.UpdateOperation.delete_points_by_filter(where))

    def _sync_search(self, using: str, vector: Any, limit: int, where: SearchFilter) -> list[Hit]:
        import qdrant_edge as qe

        results = self._shard.query(
            qe.QueryRequest(
                query=qe.Query.Nearest(query_vector(using, vector, qe.SparseVector), using=using),
                filter=_filter(where),
                limit=limit,
                with_payload=True,
            )
        )
        return [(chunk_from_payload(str(r.id), r.payload), float(r.score)) for r in results]

    def _sync_get(self, ids: list[str]) -> list[tuple[Chunk, list[float]]]:
        records = self._shard.retrieve(list(ids), with_payload=True, with_vector=True)
        return chunks_in_order(ids, records)

    def _sync_count(self) -> int:
        import qdrant_edge as qe

        return int(self._shard.count(qe.CountRequest(exact=True)))

    def _sync_drop(self) -> None:
        import shutil

        self._sync_close()
        for path in [self._path, *self._path.parent.glob(f"{self._path.name}__*")]:
            shutil.rmtree(path, ignore_errors=True)

    # --- dense collections beside the chunks' (one Edge shard each) ---------------------

    def _collection_path(self, name: str) -> Path:
        return self._path.parent / f"{self._path.name}__{name}"

    def _sync_open_collection(self, name: str, dim: int) -> None:
        import qdrant_edge as qe

        if name in self._shards:
            return
        self._ensure_space()
        path = self._collection_path(name)
        if (path / CONFIG_FILE).is_file():
            self._shards[name] = qe.EdgeShard.load(str(path))
            return
        path.mkdir(parents=True, exist_ok=True)
        config = qe.EdgeConfig(
            vectors={DENSE: qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine)}
        )
        shard = qe.EdgeShard.create(str(path), config)
        shard.update(qe.UpdateOperation.create_field_index(KEY, qe.PayloadSchemaType.Keyword))
        self._shards[name] = shard

    def _sync_c_upsert(self, name: str, points: list[tuple[str, Any, dict[str, Any]]]) -> None:
        import qdrant_edge as qe

        self._ensure_space()
        for start in range(0, len(points), BATCH):
            batch = [
                qe.Point(id=pid, vector={DENSE: list(map(float, vector))}, payload=payload)
                for pid, vector, payload in points[start : start + BATCH]
            ]
            self._shards[name].update(qe.UpdateOperation.upsert_points(batch))

    def _sync_c_get(self, name: str, keys: list[str], *, vectors: bool) -> list[Point]:
        ids: list[Any] = [point_id(key) for key in keys]
        records = self._shards[name].retrieve(ids, with_payload=True, with_vector=vectors)
        return [
            (r.payload[KEY], r.payload, list(r.vector[DENSE]) if vectors else None) for r in records
        ]

    def _sync_c_search(self, name: str, vector: Any, limit: int, min_score: float) -> list[Scored]:
        import qdrant_edge as qe

        results = self._shards[name].query(
            qe.QueryRequest(
                query=qe.Query.Nearest(list(map(float, vector)), using=DENSE),
                limit=limit,
                with_payload=True,
                score_threshold=min_score,
            )
        )
        return [(r.payload[KEY], r.payload, float(r.score)) for r in results]

    def _sync_c_delete(self, name: str, keys: list[str]) -> None:
        import qdrant_edge as qe

        ids: list[Any] = [point_id(key) for key in keys]
        self._shards[name].update(qe.UpdateOperation.delete_points(ids))

    def _sync_c_delete_matching(self, name: str, field: str, values: list[str]) -> None:
        import qdrant_edge as qe

        where = qe.Filter(must=[qe.FieldCondition(key=field, match=qe.MatchAny(any=values))])
        self._shards[name].update(qe.UpdateOperation.delete_points_by_filter(where))

    def _sync_c_clear(self, name: str, dim: int) -> None:
        import shutil

        shard = self._shards.pop(name, None)
        if shard is not None:
            shard.close()
        shutil.rmtree(self._collection_path(name), ignore_errors=True)
        self._sync_open_collection(name, dim)


def _filter(where: SearchFilter) -> Any:
    import qdrant_edge as qe

    must: list[Any] = []
    if where.doc_ids:
        must.append(qe.FieldCondition(key="doc_id", match=qe.MatchAny(any=list(where.doc_ids))))
    if where.language:
        must.append(qe.FieldCondition(key="language", match=qe.MatchValue(value=where.language)))
    return qe.Filter(must=must) if must else None
