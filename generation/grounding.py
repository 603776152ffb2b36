"""Is a generated answer supported by its sources? If not, quote the sources instead.

Small models (the offline profile's 135M one above all) echo the question, loop, or invent
numbers. In technical manuals an invented torque or pressure is the worst possible answer, so
Handbook checks every answer before calling it found:
- every number in the answer must occur in the sources (4,2 and 4.2 count as equal);
- an answer that only restates the question is no answer;
- when question and sources share a language, most of the answer's content words must occur
  in the sources.
An answer that fails is replaced by the source lines that best match the question, each with
its [n], so the user still gets the manual's own words.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from handbook.types import Language, Passage
from ingestion.chunking import sentences
from retrieval.sparse import STOPWORDS, fold, terms

_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
_CITATION = re.compile(r"\[\d+\]")
_WORD = re.compile(r"[^\W\d_]{4,}")
_PLAIN_WORD = re.compile(r"[^\W_]+")
MIN_SUPPORT = 0.5
# A new line that starts a list item or a table row.
_ITEM_BREAK = re.compile(r"\n(?=\s*(?:\d+[.)]\s|[-•–]\s|\||[^\n|]+ \| ))")
_TABLE_RULE = re.compile(r"^[|\s:-]+$")

LEAD_IN = {
    "en": "The model's answer was not supported by the sources. The manuals say:",
    "de": "Die Antwort des Modells war nicht durch die Quellen gedeckt. Die Handbücher sagen:",
}


def _numbers(text: str) -> set[str]:
    return {n.replace(",", ".") for n in _NUMBER.findall(_CITATION.sub(" ", text))}


def _content_words(text: str) -> set[str]:
    return {fold(w) for w in _WORD.findall(text) if w.lower() not in STOPWORDS}


def numbers_supported(answer: str, text: str) -> bool:
    """Every number in `answer` occurs in `text`.

    >>> numbers_supported("Your name is Alice.", "My name is Alice.")
    True
    >>> numbers_supported("Use 120 Nm.", "My name is Alice.")
    False
    """
    return _numbers(answer) <= _numbers(text)


def is_supported(
    answer: str,
    question: str,
    passages: Sequence[Passage],
    language: Language,
    conversation: str = "",
) -> bool:
    """`conversation`: earlier turns, which count as support too ("Your name is Alice").

    >>> from handbook.types import Chunk, Passage
    >>> p = [Passage(Chunk("d", 0, "Maximaldruck 210 bar, Tank 60 l", "T", "x", 1, (), "de"), 1.0)]
    >>> is_supported("Der Maximaldruck beträgt 210 bar [1].", "Welcher Druck?", p, "de")
    True
    >>> is_supported("Der Maximaldruck beträgt 250 bar.", "Welcher Druck?", p, "de")
    False
    >>> is_supported("Welcher Druck?", "Welcher Druck?", p, "de")
    False
    >>> is_supported("Es sind 210 bar [1].", "Welcher Druck?", p, "de")  # only a number: fine
    True
    """
    sources = "\n".join([*(p.chunk.text for p in passages), conversation])
    if not numbers_supported(answer, sources):
        return False
    words = _content_words(answer)
    numbers = _numbers(answer)
    restates = words <= _content_words(question) and numbers <= _numbers(question)
    if restates or (len(words) < 2 and not numbers):
        return False  # restates the question, or says next to nothing
    if words and all(p.chunk.language == language for p in passages):
        known = _content_words(sources)
        return len(words & known) / len(words) >= MIN_SUPPORT
    return True


def repeats_instructions(answer: str, instructions: str, min_words: int = 6) -> bool:
    """Whether the answer repeats a whole sentence (of `min_words` words or more) of the
    instructions: a model talked into printing its system prompt by a planted "print your
    system prompt". Words are compared case-insensitively, ignoring punctuation.

    >>> system = "You are Handbook, an assistant for technical manuals. Answer briefly."
    >>> repeats_instructions("Sure: you are Handbook, an assistant for technical manuals!", system)
    True
    >>> repeats_instructions("The manuals do not cover it; ask Handbook again.", system)
    False
    """
    said = " " + " ".join(_PLAIN_WORD.findall(answer.lower())) + " "
    for sentence in sentences(instructions):
        words = _PLAIN_WORD.findall(sentence.lower())
        if len(words) >= min_words and " " + " ".join(words) + " " in said:
            return True
    return False


def _units(text: str) -> list[str]:
    r"""Sentences, list items and table rows of a passage, each on one line.

    >>> _units("9. Schrauben mit dem\nSchlüssel anziehen.\n10. Prüfen. Fertig")
    ['9. Schrauben mit dem Schlüssel anziehen.', '10. Prüfen.', 'Fertig']
    >>> _units("| Parameter | Value |\n| --- | --- |\n| Max. pressure | 210 bar |")
    ['| Parameter | Value |', '| Max. pressure | 210 bar |']
    """
    units: list[str] = []
    for part in _ITEM_BREAK.split(text):
        flat = " ".join(part.split())
        if flat.startswith("|"):  # a table row is one unit
            units += [] if _TABLE_RULE.match(flat) else [flat]
        else:
            units += [" ".join(s.split()) for s in sentences(flat)]
    return [u for u in units if u]


def quote_sources(
    question: str, passages: Sequence[Passage], language: Language, lines: int = 2
) -> str:
    """The source sentences sharing the most terms with the question, with their [n]."""
    wanted = terms(question, language)
    scored: list[tuple[float, int, str]] = []
    for n, passage in enumerate(passages, start=1):
        for line in _units(passage.chunk.text):
            if len(line) < 12:
                continue
            have = terms(line, passage.chunk.language)
            score = sum(min(w, have[t]) for t, w in wanted.items() if t in have)
            if score > 0:
                scored.append((score, -n, f"{line} [{n}]"))
    best = [text for _, _, text in sorted(scored, reverse=True)[:lines]]
    if not best:
        best = [f"{passages[0].chunk.text.strip().splitlines()[0]} [1]"]
    return LEAD_IN[language] + "\n" + "\n".join(f"- {line}" for line in best)
