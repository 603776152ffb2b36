"""One contract, every vector store backend. The server run needs HANDBOOK_TEST_QDRANT_URL."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import numpy as np
import pytest

from handbook.config import StoreSettings
from handbook.errors import ConfigError
from handbook.protocols import VectorStore
from handbook.types import Chunk, SearchFilter
from retrieval import sparse
from retrieval.base import STORES

DIM = 8

BACKENDS = [
    pytest.param("qdrant-edge", id="edge"),
    pytest.param("qdrant-local", id="local"),
    pytest.param("qdrant", id="server", marks=pytest.mark.live),
]


def make_store(backend: str, path: Path, collection: str = "test") -> VectorStore:
    if backend == "qdrant":
        url = os.environ.get("HANDBOOK_TEST_QDRANT_URL")
        if not url:
            pytest.skip("set HANDBOOK_TEST_QDRANT_URL to run against a Qdrant server")
        collection = f"test-{uuid.uuid4().hex[:8]}"
        settings = StoreSettings(backend=backend, url=url, collection=collection)
    else:
        settings = StoreSettings(backend=backend, collection=collection)
    return STORES.create(backend, settings, path)


def chunk(doc: str, n: int, text: str, language: str = "de") -> Chunk:
    return Chunk(doc, n, text, doc.upper(), f"/{doc}.pdf", n + 1, ("H",), language)  # type: ignore[arg-type]


def vectors(chunks: list[Chunk]) -> np.ndarray:
    rng = np.random.default_rng(0)
    v = rng.normal(size=(len(chunks), DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def sparse_of(chunks: list[Chunk]) -> list:  # type: ignore[type-arg]
    return [sparse.encode(c.text, c.language) for c in chunks]


CHUNKS = [
    chunk("a", 0, "Radschrauben mit 120 Nm anziehen"),
    chunk("a", 1, "Motoröl 5W-30, 4,2 Liter"),
    chunk("b", 0, "Tighten the wheel bolts to 120 Nm", "en"),
    chunk("b", 1, "Hydraulic oil HLP 46, tank 60 litres", "en"),
]


@pytest.mark.parametrize("backend", BACKENDS)
def test_store_contract(backend: str, tmp_path: Path) -> None:
    async def scenario() -> None:
        store = make_store(backend, tmp_path / "q")
        await store.open(DIM)
        dense = vectors(CHUNKS)
        await store.upsert(CHUNKS, dense, sparse_of(CHUNKS))
        await store.upsert(CHUNKS, dense, sparse_of(CHUNKS))  # idempotent: same ids
        assert await store.count() == 4
        assert await store.chunk_ids("a") == {CHUNKS[0].id, CHUNKS[1].id}

        hits = await store.search_dense(dense[2], 2, SearchFilter())
        assert hits[0][0] == CHUNKS[2] and hits[0][1] == pytest.approx(1.0, abs=1e-4)
        only_de = await store.search_dense(dense[2], 4, SearchFilter(language="de"))
        assert {c.language for c, _ in only_de} == {"de"}
        only_b = await store.search_dense(dense[0], 4, SearchFilter(doc_ids=("b",)))
        assert {c.doc_id for c, _ in only_b} == {"b"}

        lexical = await store.search_sparse(
            sparse.encode_query("Radschraube", "de"), 3, SearchFilter()
        )
        assert lexical[0][0].id == CHUNKS[0].id
        assert await store.search_sparse(sparse.encode_query("", "de"), 3, SearchFilter()) == []

        await store.delete([CHUNKS[1].id, "00000000-0000-0000-0000-000000000000"])
        assert await store.chunk_ids("a") == {CHUNKS[0].id}
        await store.delete_document("b")
        assert await store.count() == 1
        await store.close()

        reopened = make_store(backend, tmp_path / "q") if backend != "qdrant" else None
        if reopened is not None:  # data survives close/open
            await reopened.open(DIM)
            assert await reopened.count() == 1
            with pytest.raises(ConfigError, match="dimensional"):
                other = make_store(backend, tmp_path / "q")
                await reopened.close()
                await other.open(DIM * 2)
            await other.close()

        dropped = make_store(backend, tmp_path / "q")
        await dropped.open(DIM)
        await dropped.drop()
        fresh = make_store(backend, tmp_path / "q")
        await fresh.open(DIM)
        assert await fresh.count() == 0
        await fresh.close()

    asyncio.run(scenario())
