"""Measures of one answer: key-fact recall and a local faithfulness heuristic (shared by the
chat benchmark and the answer-quality benchmark)."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from handbook.types import Passage

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
CITED = re.compile(r"\[(\d{1,2})\]")


def normal(text: str) -> str:
    """Lower case, single spaces, decimal commas as points ("4,2 l" = "4.2 l")."""
    text = re.sub(r"(\d),(\d)", r"\1.\2", text.lower())
    return " ".join(text.split())


def key_fact_recall(answer: str, facts: Sequence[str]) -> float:
    """Share of the key facts the answer states; `a|b` is a fact with alternatives.

    >>> key_fact_recall("Die Ölmenge beträgt 4,2 l (5W-30).", ["4.2 l", "5W-30", "Filter"])
    0.6666666666666666
    >>> key_fact_recall("Run apt-get dist-upgrade.", ["apt full-upgrade|apt-get dist-upgrade"])
    1.0
    """
    if not facts:
        return 0.0
    text = normal(answer)
    return sum(any(normal(alt) in text for alt in fact.split("|")) for fact in facts) / len(facts)


def faithfulness(answer: str, passages: Sequence[Passage]) -> float | None:
    """The documented heuristic (module docstring); None when the answer has no sentence."""
    sources = normal(" ".join(p.chunk.text for p in passages))
    source_words = set(re.findall(r"\w{4,}", sources))
    source_numbers = set(_NUMBER.findall(sources))
    sentences = [s for s in re.split(r"(?<=[.!?])\s+|\n", answer) if len(s.split()) >= 3]
    if not sentences:
        return None
    supported = 0
    for sentence in sentences:
        text = normal(CITED.sub("", sentence))
        words = set(re.findall(r"\w{4,}", text))
        numbers = set(_NUMBER.findall(text))
        overlap = len(words & source_words) / len(words) if words else 1.0
        if numbers <= source_numbers and overlap >= 0.6:
            supported += 1
    return supported / len(sentences)


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile; NaN for no values. The benchmarks' p50/p95.

    >>> percentile([1.0, 2.0, 3.0, 4.0], 0.5), percentile([1.0, 2.0, 3.0, 4.0], 0.95)
    (2.0, 4.0)
    """
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]
