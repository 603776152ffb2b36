"""Hybrid query latency of the embedded store options at 1k, 10k and 50k chunks.

Each store gets the same chunks: 512-dim unit vectors (the offline embedder's size), lexical
vectors made by Handbook's own sparse encoder from word sequences drawn from the sample
manuals (so the term distribution is realistic), and ~800-character payload texts. A hybrid
query is what `handbook search` does: a dense and a sparse search with a filter-free limit of
30 each, fused with DBSF. qdrant-edge is the default; qdrant-local (qdrant-client local mode)
is the baseline in the same run.

    python -m bench.store_latency [--sizes 1000 10000 50000] [--queries 50]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from eval.scoring import percentile
from handbook.config import StoreSettings
from handbook.types import Chunk, SearchFilter
from retrieval import sparse
from retrieval.base import STORES
from retrieval.search import dbsf

ROOT = Path(__file__).resolve().parent.parent
DIM = 512
CANDIDATES = 30


def vocabulary() -> list[str]:
    words: list[str] = []
    for path in (ROOT / "samples" / "manuals").iterdir():
        if path.suffix in (".md", ".txt", ".html"):
            words += re.findall(r"[^\W\d_]{3,}", path.read_text(encoding="utf-8"))
    return words


def make_chunks(n: int, words: list[str], rng: random.Random) -> list[Chunk]:
    chunks = []
    for i in range(n):
        text = " ".join(rng.choices(words, k=110))[:800]
        chunks.append(
            Chunk(f"doc{i % 200}", i, text, "Bench", f"/bench/{i % 200}.md", None, ("S",), "de")
        )
    return chunks


async def measure(backend: str, n: int, queries: int, words: list[str]) -> dict[str, float]:
    rng = random.Random(n)
    nprng = np.random.default_rng(n)
    chunks = make_chunks(n, words, rng)
    dense = nprng.normal(size=(n, DIM)).astype(np.float32)
    dense /= np.linalg.norm(dense, axis=1, keepdims=True)
    lexical = [sparse.encode(c.text, "de") for c in chunks]
    with tempfile.TemporaryDirectory() as tmp:
        store = STORES.create(backend, StoreSettings(backend=backend), Path(tmp))
        await store.open(DIM)
        started = time.perf_counter()
        for i in range(0, n, 1024):
            await store.upsert(chunks[i : i + 1024], dense[i : i + 1024], lexical[i : i + 1024])
        upsert_s = time.perf_counter() - started
        timings = []
        for _ in range(queries):
            vector = nprng.normal(size=DIM).astype(np.float32)
            vector /= np.linalg.norm(vector)
            query = sparse.encode_query(" ".join(rng.choices(words, k=6)), "de")
            started = time.perf_counter()
            dense_hits = await store.search_dense(vector, CANDIDATES, SearchFilter())
            sparse_hits = await store.search_sparse(query, CANDIDATES, SearchFilter())
            dbsf([dense_hits, sparse_hits], (1.0, 0.25))
            timings.append((time.perf_counter() - started) * 1000)
        await store.close()
    timings.sort()
    return {
        "upsert_s": upsert_s,
        "p50": statistics.median(timings),
        "p95": percentile(timings, 0.95),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 50000])
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--backends", nargs="+", default=["qdrant-edge", "qdrant-local"])
    parser.add_argument(
        "--local-max", type=int, default=50000, help="largest size to run qdrant-local at"
    )
    args = parser.parse_args()
    words = vocabulary()
    print("| store | chunks | upsert s | hybrid p50 ms | hybrid p95 ms |")
    print("|---|---|---|---|---|")
    for n in args.sizes:
        for backend in args.backends:
            if backend == "qdrant-local" and n > args.local_max:
                print(f"| {backend} | {n} | not run (--local-max {args.local_max}) | | |")
                continue
            queries = args.queries if backend != "qdrant-local" or n <= 10000 else 10
            r = asyncio.run(measure(backend, n, queries, words))
            print(
                f"| {backend} | {n} | {r['upsert_s']:.1f} | {r['p50']:.1f} | {r['p95']:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
