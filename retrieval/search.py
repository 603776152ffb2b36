"""Hybrid retrieval: dense + sparse candidates fused into one ranking."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from handbook.config import RetrievalSettings
from handbook.language import detect_language
from handbook.types import Chunk, Language, Passage, RetrievalMode, SearchFilter
from ingestion.base import Embedder
from retrieval import sparse
from retrieval.base import Hit, VectorStore


@dataclass(frozen=True)
class SearchResult:
    query: str
    language: Language
    passages: tuple[Passage, ...]
    best_dense: float
    """Highest cosine similarity among dense candidates: the relevance signal."""

    @property
    def relevant(self) -> bool:
        return bool(self.passages)


Fused = list[tuple[Chunk, float, list[int | None]]]


def _fuse(
    rankings: Sequence[Sequence[Hit]],
    weights: Sequence[float] | None,
    contribution: Callable[[Sequence[Hit]], list[float]],
) -> Fused:
    """Sum each list's weighted per-hit contributions; keep every chunk's rank in each list."""
    scores: dict[str, float] = {}
    chunks: dict[str, Chunk] = {}
    ranks: dict[str, list[int | None]] = {}
    weights = weights or [1.0] * len(rankings)
    for list_index, ranking in enumerate(rankings):
        for rank, ((chunk, _), value) in enumerate(
            zip(ranking, contribution(ranking), strict=True), start=1
        ):
            scores[chunk.id] = scores.get(chunk.id, 0.0) + weights[list_index] * value
            chunks[chunk.id] = chunk
            ranks.setdefault(chunk.id, [None] * len(rankings))[list_index] = rank
    order = sorted(scores, key=lambda cid: (-scores[cid], chunks[cid].path, chunks[cid].ordinal))
    return [(chunks[cid], scores[cid], ranks[cid]) for cid in order]


def rrf(rankings: Sequence[Sequence[Hit]], k: int, weights: Sequence[float] | None = None) -> Fused:
    """Weighted reciprocal rank fusion: score = sum over lists of weight / (k + rank).

    >>> from handbook.types import Chunk
    >>> a = Chunk("d", 0, "a", "t", "p", None, (), "en")
    >>> b = Chunk("d", 1, "b", "t", "p", None, (), "en")
    >>> [(c.text, round(s, 4)) for c, s, _ in rrf([[(a, .9), (b, .5)], [(b, 3.0)]], 60)]
    [('b', 0.0325), ('a', 0.0164)]
    """
    return _fuse(rankings, weights, lambda hits: [1.0 / (k + r) for r in range(1, len(hits) + 1)])


def _normalised(hits: Sequence[Hit]) -> list[float]:
    """Scores mapped from [mean - 3 std, mean + 3 std] to [0, 1] (DBSF)."""
    if not hits:
        return []
    values = [s for _, s in hits]
    mean = sum(values) / len(values)
    std = (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5 or 1.0
    low = mean - 3 * std
    return [(v - low) / (6 * std) for v in values]


def dbsf(rankings: Sequence[Sequence[Hit]], weights: Sequence[float] | None = None) -> Fused:
    """Distribution-based score fusion: per-list normalised scores, weighted and summed."""
    return _fuse(rankings, weights, _normalised)


class Retriever:
    def __init__(self, embedder: Embedder, store: VectorStore, settings: RetrievalSettings) -> None:
        self._embedder = embedder
        self._store = store
        self._settings = settings

    async def search(
        self,
        query: str,
        k: int | None = None,
        where: SearchFilter | None = None,
        mode: RetrievalMode = "hybrid",
        *,
        keep_irrelevant: bool = True,
    ) -> SearchResult:
        """Top-k passages for a query. With keep_irrelevant=False an off-topic query gets none."""
        k = k or self._settings.k
        where = where or SearchFilter()
        language = detect_language(query)
        limit = max(self._settings.candidates, k)

        async def dense() -> list[Hit]:
            if mode == "sparse":
                return []
            return await self._store.search_dense(
                await self._embedder.embed_query(query), limit, where
            )

        async def lexical() -> list[Hit]:
            if mode == "naive":
                return []
            return await self._store.search_sparse(
                sparse.encode_query(query, language), limit, where
            )

        dense_hits, sparse_hits = await asyncio.gather(dense(), lexical())
        # Lexical matches cannot cross languages: when the best dense hits are in another
        # language than the question, the lexical list finds the wrong documents. Its weight
        # follows the share of the top dense hits written in the question's language.
        top = dense_hits[:10]
        same = sum(c.language == language for c, _ in top) / len(top) if top else 1.0
        weights = (1.0, self._settings.sparse_weight * same)
        best_dense = dense_hits[0][1] if dense_hits else 0.0
        if mode == "naive":
            fused = [(c, s, [i, None]) for i, (c, s) in enumerate(dense_hits, start=1)]
        elif mode == "sparse":
            fused = [(c, s, [None, i]) for i, (c, s) in enumerate(sparse_hits, start=1)]
        elif self._settings.fusion == "dbsf":
            fused = dbsf([dense_hits, sparse_hits], weights)
        else:
            fused = rrf([dense_hits, sparse_hits], self._settings.rrf_k, weights)
        passages = tuple(
            Passage(chunk, score, ranks[0], ranks[1]) for chunk, score, ranks in fused[:k]
        )
        if not keep_irrelevant and mode != "sparse" and best_dense < self._settings.min_dense_score:
            passages = ()
        return SearchResult(query, language, passages, best_dense)
