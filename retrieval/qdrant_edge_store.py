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

from handbook.config import StoreSettings
from handbook.errors import BackendUnavailable, ConfigError
from handbook.registry import missing_extra
from handbook.types import Chunk, SearchFilter, SparseVector
from retrieval.base import (
    DENSE,
    SPARSE,
    BlockingStore,
    Hit,
    chunk_from_payload,
    chunk_payload,
)

BATCH = 512
CONFIG_FILE = "edge_config.json"


class QdrantEdgeStore(BlockingStore):
    def __init__(self, settings: StoreSettings, path: Path) -> None:
        super().__init__("qdrant-edge")
        self._path = path / settings.collection
        self.name = f"qdrant-edge:{self._path}"
        self._shard: Any = None

    def _sync_open(self, dim: int) -> None:
        try:
            import qdrant_edge as qe
        except ImportError:
            raise missing_extra("qdrant-edge-py", "edge") from None
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
        if self._shard is not None:
            self._shard.flush()
            self._shard.close()
            self._shard = None

    def _sync_upsert(
        self,
        chunks: Sequence[Chunk],
        dense: npt.NDArray[np.float32],
        sparse: Sequence[SparseVector],
    ) -> None:
        import qdrant_edge as qe

        for start in range(0, len(chunks), BATCH):
            points = [
                qe.Point(
                    id=chunk.id,
                    vector={
                        DENSE: dense[i].tolist(),
                        SPARSE: qe.SparseVector(
                            indices=list(sparse[i].indices), values=list(sparse[i].values)
                        ),
                    },
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

        query_vector = (
            qe.SparseVector(indices=list(vector.indices), values=list(vector.values))
            if using == SPARSE
            else vector.tolist()
        )
        results = self._shard.query(
            qe.QueryRequest(
                query=qe.Query.Nearest(query_vector, using=using),
                filter=_filter(where),
                limit=limit,
                with_payload=True,
            )
        )
        return [(chunk_from_payload(str(r.id), r.payload), float(r.score)) for r in results]

    def _sync_count(self) -> int:
        import qdrant_edge as qe

        return int(self._shard.count(qe.CountRequest(exact=True)))

    def _sync_drop(self) -> None:
        import shutil

        self._sync_close()
        shutil.rmtree(self._path, ignore_errors=True)


def _filter(where: SearchFilter) -> Any:
    import qdrant_edge as qe

    must: list[Any] = []
    if where.doc_ids:
        must.append(qe.FieldCondition(key="doc_id", match=qe.MatchAny(any=list(where.doc_ids))))
    if where.language:
        must.append(qe.FieldCondition(key="language", match=qe.MatchValue(value=where.language)))
    return qe.Filter(must=must) if must else None
