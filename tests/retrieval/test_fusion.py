"""Fusion of the dense and the lexical list: DBSF normalisation, weights, the language-aware
lexical weight, and the `naive` and `sparse` modes on the real index of the sample manuals.
The dense side alone scores well on the samples, so these tests hold the lexical side and the
fusion to account directly: breaking either fails one of them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from app.handbook import Handbook
from handbook.types import Chunk, RetrievalMode
from retrieval.search import SearchResult, _normalised, dbsf, lexical_weight, rrf
from tests.conftest import make_settings


def chunk(n: int, language: str = "en") -> Chunk:
    return Chunk("d", n, f"text {n}", "T", "p.md", None, (), language)  # type: ignore[arg-type]


def test_dbsf_maps_mean_plus_minus_three_std_to_zero_one() -> None:
    hits = [(chunk(0), 1.0), (chunk(1), 2.0), (chunk(2), 3.0)]
    values = _normalised(hits)
    std = (2 / 3) ** 0.5
    assert values == pytest.approx([(1 - (2 - 3 * std)) / (6 * std), 0.5, 1 - values[0]])
    # One score, or all equal: no division by zero, everything in the middle.
    assert _normalised([(chunk(0), 0.7)]) == [0.5]
    assert _normalised([]) == []


def test_dbsf_sums_weighted_contributions_of_both_lists() -> None:
    a, b, c = chunk(0), chunk(1), chunk(2)
    dense = [(a, 0.9), (b, 0.5), (c, 0.1)]
    lexical = [(c, 12.0), (b, 6.0), (a, 0.0)]
    fused = {x.text: score for x, score, _ in dbsf([dense, lexical], [1.0, 0.5])}
    d, s = _normalised(dense), _normalised(lexical)
    assert fused["text 0"] == pytest.approx(d[0] + 0.5 * s[2])
    assert fused["text 2"] == pytest.approx(d[2] + 0.5 * s[0])
    # With the lexical list weighted fully, its winner overtakes the dense winner.
    order = [x.text for x, _, _ in dbsf([dense, lexical], [1.0, 1.5])]
    assert order[0] == "text 2"
    ranks = {x.text: r for x, _, r in dbsf([dense, lexical])}
    assert ranks["text 2"] == [3, 1], "each chunk keeps its rank in both lists"


def test_rrf_uses_ranks_not_scores() -> None:
    a, b = chunk(0), chunk(1)
    fused = rrf([[(a, 100.0), (b, 99.0)], [(b, 0.1)]], k=60)
    assert [x.text for x, _, _ in fused] == ["text 1", "text 0"]
    assert fused[0][1] == pytest.approx(1 / 62 + 1 / 61)


def test_lexical_weight_follows_the_share_of_hits_in_the_questions_language() -> None:
    hits = [(chunk(i, "de" if i < 8 else "en"), 1.0 - i / 10) for i in range(12)]
    assert lexical_weight(hits, "de", 0.5) == pytest.approx(0.5 * 8 / 10)
    assert lexical_weight(hits, "en", 0.5) == pytest.approx(0.5 * 2 / 10)
    assert lexical_weight(hits[:8], "en", 0.5) == 0.0


def search(home: Path, query: str, mode: RetrievalMode) -> SearchResult:
    async def work() -> SearchResult:
        async with Handbook(make_settings(home)) as hb:
            return await (await hb.retriever()).search(query, k=5, mode=mode)

    return asyncio.run(work())


def test_modes_use_the_lists_they_name(indexed_home: Path) -> None:
    query = "Teilenummer Ölfiltereinsatz"
    naive = search(indexed_home, query, "naive").passages
    sparse = search(indexed_home, query, "sparse").passages
    hybrid = search(indexed_home, query, "hybrid").passages
    assert naive and all(p.sparse_rank is None and p.dense_rank for p in naive)
    assert sparse and all(p.dense_rank is None and p.sparse_rank for p in sparse)
    assert any(p.dense_rank and p.sparse_rank for p in hybrid), "hybrid fuses both lists"


def test_a_part_number_only_the_lexical_list_finds_is_ranked_first_in_hybrid(
    indexed_home: Path,
) -> None:
    # A part number means nothing to a sentence embedder; the lexical list finds it exactly.
    query = "NW 1K3 115 562"
    lexical = search(indexed_home, query, "sparse").passages
    assert "1K3 115 562" in lexical[0].chunk.text
    hybrid = search(indexed_home, query, "hybrid").passages
    assert "1K3 115 562" in hybrid[0].chunk.text
    assert hybrid[0].sparse_rank == 1
