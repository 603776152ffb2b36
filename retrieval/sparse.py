"""Lexical sparse vectors that work for German and English.

Each text becomes hashed terms (`handbook.text.terms`: folded words, Snowball stems, character
4-grams of long words) with BM25-style saturated term-frequency weights; the store applies IDF.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

from handbook.text import terms
from handbook.types import Language, SparseVector

K1 = 1.2
B = 0.75
AVG_TERMS = 120.0


@lru_cache(maxsize=200_000)
def term_id(term: str) -> int:
    """Stable 32-bit id of a term (Qdrant sparse indices are u32)."""
    return int.from_bytes(hashlib.blake2b(term.encode(), digest_size=4).digest(), "little")


def encode(text: str, language: Language) -> SparseVector:
    """BM25-style document/query vector; IDF is applied by the store's IDF modifier."""
    counts = terms(text, language)
    length = sum(counts.values()) or 1.0
    norm = K1 * (1 - B + B * length / AVG_TERMS)
    weights: dict[int, float] = {}
    for term, tf in counts.items():
        index = term_id(term)
        weights[index] = weights.get(index, 0.0) + tf * (K1 + 1) / (tf + norm)
    indices = sorted(weights)
    return SparseVector(tuple(indices), tuple(weights[i] for i in indices))


def encode_query(text: str, language: Language) -> SparseVector:
    """Queries: each term once (weight 1, n-grams lower), so long questions don't dilute."""
    counts = terms(text, language)
    weights: dict[int, float] = {}
    for term, tf in counts.items():
        index = term_id(term)
        weights[index] = max(weights.get(index, 0.0), min(tf, 1.0))
    indices = sorted(weights)
    return SparseVector(tuple(indices), tuple(weights[i] for i in indices))
