"""Text utilities every part shares, for German and English: sentences, folding and the
weighted terms of a text.

Terms per word:
- the folded surface form (lowercase, NFKC, ä->a, ö->o, ü->u, ß->ss), so exact words and codes
  (E01, TON, 5W-30) match whatever the language;
- its Snowball stem in the text's language (Radschrauben -> radschraub, bolts -> bolt);
- for long words, character 4-grams, so parts of German compounds match their standalone
  words ("Radschrauben" shares grams with "Schrauben am Rad") without a dictionary.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections import defaultdict
from functools import lru_cache
from typing import Any

from handbook.types import Language

# A sentence ends at . ! ? : ; followed by space and a word, except after a list number
# ("3.") or a common abbreviation ("ca.", "bzw.").
_SENTENCE = re.compile(
    r"(?<=[.!?:;])(?<!\b\d\.)(?<!\b\d\d\.)(?<!ca\.)(?<!bzw\.)(?<!usw\.)(?<!Nr\.)(?<!z\.B\.)"
    r"(?<!e\.g\.)(?<!i\.e\.)(?<!vs\.)(\s+)(?=[\wÄÖÜ(\"„])"
)

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


def sentences(paragraph: str) -> list[str]:
    r"""Sentences with the whitespace that followed them, so joining restores the text.

    >>> sentences("3. Rad ab. Die Schrauben ca. 120 Nm.\nFertig")
    ['3. Rad ab. ', 'Die Schrauben ca. 120 Nm.\n', 'Fertig']
    """
    parts = _SENTENCE.split(paragraph)
    return [
        parts[i] + (parts[i + 1] if i + 1 < len(parts) else "") for i in range(0, len(parts), 2)
    ]


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
