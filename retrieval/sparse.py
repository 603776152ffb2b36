"""Lexical sparse vectors that work for German and English.

Each text becomes hashed terms with BM25-style saturated term-frequency weights; the store applies
IDF. Terms per word:
- the folded surface form (lowercase, NFKC, ä->a, ö->o, ü->u, ß->ss), so exact words and codes
  (E01, TON, 5W-30) match whatever the language;
- its Snowball stem in the text's language (Radschrauben -> radschraub, bolts -> bolt);
- for long words, character 4-grams, so parts of German compounds match their standalone
  words ("Radschrauben" shares grams with "Schrauben am Rad") without a dictionary.
"""

from __future__ import annotations

import hashlib
import re
import threading
import unicodedata
from collections import defaultdict
from functools import lru_cache
from typing import Any

from handbook.types import Language, SparseVector

K1 = 1.2
B = 0.75
AVG_TERMS = 120.0
NGRAM = 4
NGRAM_MIN_WORD = 9
NGRAM_WEIGHT = 0.35

_WORD = re.compile(r"[^\W_]+(?:[-.,/][^\W_]+)*", re.UNICODE)
_FOLD = str.maketrans({"ä": "a", "ö": "o", "ü": "u", "ß": "ss"})

STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "how",
        "i",
        "in",
        "is",
        "it",
        "of",
        "on",
        "or",
        "the",
        "this",
        "to",
        "was",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "with",
        "do",
        "does",
        "can",
        "my",
        "me",
        "you",
        "your",
        "aber",
        "als",
        "am",
        "an",
        "auf",
        "aus",
        "bei",
        "bin",
        "bis",
        "da",
        "das",
        "dass",
        "dem",
        "den",
        "der",
        "des",
        "die",
        "du",
        "ein",
        "eine",
        "einem",
        "einen",
        "einer",
        "es",
        "fur",
        "für",
        "hat",
        "ich",
        "im",
        "in",
        "ist",
        "ja",
        "mit",
        "nach",
        "nicht",
        "oder",
        "sie",
        "sind",
        "so",
        "um",
        "und",
        "von",
        "vom",
        "was",
        "welche",
        "welcher",
        "welches",
        "wie",
        "wir",
        "wo",
        "zu",
        "zum",
        "zur",
        "man",
        "wird",
        "werden",
        "kann",
        "muss",
    ]
)

_stemmers: dict[str, Any] = {}
_stem_lock = threading.Lock()


def _stemmer(language: Language) -> Any:
    with _stem_lock:
        if language not in _stemmers:
            import snowballstemmer

            _stemmers[language] = snowballstemmer.stemmer(
                "german" if language == "de" else "english"
            )
        return _stemmers[language]


@lru_cache(maxsize=100_000)
def _stem(word: str, language: Language) -> str:
    """Snowball stem, folded. Cached: the pure-Python stemmer was half of indexing time, and
    manuals repeat their vocabulary."""
    stem: str = _stemmer(language).stemWord(word)
    return stem.translate(_FOLD)


def fold(word: str) -> str:
    """
    >>> fold("Größe")
    'grosse'
    >>> fold("Ölablaßschraube")
    'olablassschraube'
    """
    return unicodedata.normalize("NFKC", word).lower().translate(_FOLD)


@lru_cache(maxsize=200_000)
def term_id(term: str) -> int:
    """Stable 32-bit id of a term (Qdrant sparse indices are u32)."""
    return int.from_bytes(hashlib.blake2b(term.encode(), digest_size=4).digest(), "little")


def terms(text: str, language: Language) -> dict[str, float]:
    """Weighted terms of a text (weights before saturation).

    >>> t = terms("Die Radschrauben mit 120 Nm anziehen", "de")
    >>> t["w:radschrauben"], t["s:radschraub"] > 0, "w:die" in t
    (1.0, True, False)
    """
    counts: defaultdict[str, float] = defaultdict(float)
    lowered = unicodedata.normalize("NFKC", text).lower()
    for match in _WORD.finditer(lowered):
        for term, weight in _word_terms(match.group(), language):
            counts[term] += weight
    return counts


@lru_cache(maxsize=200_000)
def _word_terms(raw: str, language: Language) -> tuple[tuple[str, float], ...]:
    """The terms one lowercased word contributes (cached: manuals repeat their words)."""
    if raw in STOPWORDS:
        return ()
    word = raw.translate(_FOLD)
    out = [("w:" + word, 1.0)]
    if word.isalpha():
        stem = _stem(raw, language)
        if stem != word:
            out.append(("s:" + stem, 1.0))
        if len(word) >= NGRAM_MIN_WORD:
            out += [
                ("g:" + word[i : i + NGRAM], NGRAM_WEIGHT) for i in range(len(word) - NGRAM + 1)
            ]
    return tuple(out)


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
