"""Hybrid retrieval: dense + sparse candidates fused into one ranking."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from handbook.config import RetrievalSettings
from handbook.errors import NotIndexed
from handbook.language import detect_language
from handbook.protocols import Embedder, GraphIndex, Hit, VectorStore
from handbook.types import (
    Chunk,
    GraphFact,
    GraphMode,
    Language,
    Passage,
    RetrievalMode,
    SearchFilter,
    SearchHit,
)
from retrieval import sparse

# Our retrieval modes that use the graph, and the LightRAG mode each asks it for.
GRAPH_QUERY: dict[str, GraphMode] = {"local": "local", "global": "global", "mix": "hybrid"}


@dataclass(frozen=True)
class Fact:
    """A graph fact for the prompt, citing the passages (1-based) it was extracted from."""

    name: str
    text: str
    sources: tuple[int, ...]


@dataclass(frozen=True)
class SearchResult:
    query: str
    language: Language
    passages: tuple[Passage, ...]
    best_dense: float
    """Highest cosine similarity among dense candidates: the relevance signal."""
    facts: tuple[Fact, ...] = ()

    @property
    def relevant(self) -> bool:
        return bool(self.passages)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of `handbook search --json` and of the API."""
        return {
            "query": self.query,
            "language": self.language,
            "results": [SearchHit.of(p).to_dict() for p in self.passages],
            "facts": [
                {"name": f.name, "text": f.text, "sources": list(f.sources)} for f in self.facts
            ],
        }


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


_WORDS = re.compile(r"(?<![\w-])[^\W\d_]{3,}(?![\w-])")


def lexical_weight(
    dense_hits: Sequence[Hit], language: Language, weight: float, query: str = ""
) -> float:
    """The lexical list's weight in fusion. Lexical matches of words cannot cross languages:
    when the best dense hits are in another language than the question, the lexical list
    finds the wrong documents. So `weight` is scaled by the share of the top ten dense hits
    written in the question's language. A query of codes and numbers (a part number, a fault
    code) has no language: its lexical matches count in full.

    >>> from handbook.types import Chunk
    >>> de, en = (Chunk("d", i, "t", "t", "p", None, (), g) for i, g in ((0, "de"), (1, "en")))
    >>> lexical_weight([(de, .9), (en, .8), (en, .7), (en, .6)], "en", 0.5)
    0.375
    >>> lexical_weight([], "de", 0.5)
    0.5
    >>> lexical_weight([(de, .9)], "en", 0.5, "NW 1K3 115 562")
    1.0
    """
    if query and len(_WORDS.findall(query)) <= 1 and any(c.isdigit() for c in query):
        return max(1.0, weight)
    top = dense_hits[:10]
    same = sum(c.language == language for c, _ in top) / len(top) if top else 1.0
    return weight * same


class Retriever:
    def __init__(
        self,
        embedder: Embedder,
        store: VectorStore,
        settings: RetrievalSettings,
        graph: GraphIndex | None = None,
    ) -> None:
        self._embedder = embedder
        self._store = store
        self._settings = settings
        self._graph = graph

    async def search(
        self,
        query: str,
        k: int | None = None,
        where: SearchFilter | None = None,
        mode: RetrievalMode = "hybrid",
        *,
        keep_irrelevant: bool = True,
    ) -> SearchResult:
        """Top-k passages for a query. With keep_irrelevant=False an off-topic query gets none.

        Graph modes: `local` (entities like the question, and their chunks), `global`
        (relations), `mix` (hybrid passages plus the graph's facts).
        """
        k = k or self._settings.k
        where = where or SearchFilter()
        if mode in ("local", "global"):
            return await self._graph_search(query, k, where, mode)
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
        weights = (
            1.0,
            lexical_weight(dense_hits, language, self._settings.sparse_weight, query),
        )
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
        if mode == "mix" and passages:
            return await self._with_facts(query, language, passages, best_dense, k, where)
        return SearchResult(query, language, passages, best_dense)

    def _graph_or_fail(self) -> GraphIndex:
        if self._graph is None:
            raise NotIndexed(
                "The graph modes (local, global, mix) need the knowledge graph: run "
                "`handbook graph build` (or `handbook index --graph`) first."
            )
        return self._graph

    async def _graph_search(
        self, query: str, k: int, where: SearchFilter, mode: RetrievalMode
    ) -> SearchResult:
        """Passages are the chunks behind the graph's best entities (local) or relations."""
        context = await self._graph_or_fail().query(query, GRAPH_QUERY[mode], k)
        chunks = await self._chunks(context.chunk_ids, where)
        passages = tuple(Passage(c, 1.0 / rank) for rank, c in enumerate(chunks[:k], start=1))
        facts = _cite(context.facts, passages, self._settings.graph_facts)
        best = 1.0 if passages else 0.0  # the graph found them: relevant by construction
        return SearchResult(query, detect_language(query), passages, best, facts)

    async def _with_facts(
        self,
        query: str,
        language: Language,
        passages: tuple[Passage, ...],
        best_dense: float,
        k: int,
        where: SearchFilter,
    ) -> SearchResult:
        """`mix`: the hybrid passages, plus the graph's facts with the chunks they come from
        (a fact whose chunks are not among the passages brings its first chunk along, up to
        `graph_extra_passages` of them)."""
        context = await self._graph_or_fail().query(query, GRAPH_QUERY["mix"], k)
        have = {p.chunk.id for p in passages}
        wanted: list[str] = []
        for fact in context.facts[: self._settings.graph_facts]:
            if fact.chunk_ids and not have.intersection(fact.chunk_ids):
                first = fact.chunk_ids[0]
                if first not in wanted and len(wanted) < self._settings.graph_extra_passages:
                    wanted.append(first)
        extra = await self._chunks(tuple(wanted), where)
        lowest = passages[-1].score
        passages += tuple(Passage(c, lowest / 2) for c in extra)
        facts = _cite(context.facts, passages, self._settings.graph_facts)
        return SearchResult(query, language, passages, best_dense, facts)

    async def _chunks(self, ids: tuple[str, ...], where: SearchFilter) -> list[Chunk]:
        found = [chunk for chunk, _ in await self._store.get(list(dict.fromkeys(ids)))]
        return [
            c
            for c in found
            if (not where.doc_ids or c.doc_id in where.doc_ids)
            and (not where.language or c.language == where.language)
        ]


def _cite(
    facts: tuple[GraphFact, ...], passages: tuple[Passage, ...], limit: int
) -> tuple[Fact, ...]:
    """The first `limit` facts that some passage supports, each citing those passages.

    >>> from handbook.types import Chunk
    >>> p = Passage(Chunk("d", 0, "Die Pumpe speist das Ventil.", "t", "p", 3, (), "de"), 1.0)
    >>> f = [GraphFact("Pumpe", "fördert Öl", (p.chunk.id,)), GraphFact("X", "y", ("other",))]
    >>> _cite(tuple(f), (p,), 5)
    (Fact(name='Pumpe', text='fördert Öl', sources=(1,)),)
    """
    number = {p.chunk.id: n for n, p in enumerate(passages, start=1)}
    cited = []
    for fact in facts:
        sources = tuple(sorted({number[c] for c in fact.chunk_ids if c in number}))
        if sources:
            cited.append(Fact(fact.name, fact.text, sources))
        if len(cited) == limit:
            break
    return tuple(cited)
