"""Is a generated answer supported by its sources? If not, quote the sources instead.

Small models (the offline profile's 135M one above all) echo the question, loop, or invent
numbers. In technical manuals an invented torque or pressure is the worst possible answer, so
Handbook checks every answer before calling it found:
- every number in the answer must occur in the sources (4,2 and 4.2 count as equal);
- an answer that only restates the question is no answer;
- when question and sources share a language, most of the answer's content words must occur
  in the sources.
An answer that fails is replaced by the extractive answer (generation.extract), so the user
still gets the manual's own words.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

from generation.prompts import is_refusal
from generation.units import MEASURE_UNITS
from handbook.text import STOPWORDS, fold, sentences
from handbook.types import Language, Passage

_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
_QUANTITY = re.compile(rf"(\d+(?:[.,]\d+)?)\s?({MEASURE_UNITS})(?![^\W_])")
_CITATION = re.compile(r"\[\d+\]")
_WORD = re.compile(r"[^\W\d_]{4,}")
_PLAIN_WORD = re.compile(r"[^\W_]+")
MIN_SUPPORT = 0.5
# A new line that starts a list item or a table row.


def _numbers(text: str) -> set[str]:
    return {n.replace(",", ".") for n in _NUMBER.findall(_CITATION.sub(" ", text))}


def _content_words(text: str) -> set[str]:
    return {fold(w) for w in _WORD.findall(text) if w.lower() not in STOPWORDS}


def _quantities(text: str) -> set[tuple[str, str]]:
    """Numbers with the unit written after them: ("120", "nm")."""
    return {
        (number.replace(",", "."), unit.replace(" ", ""))
        for number, unit in _QUANTITY.findall(_CITATION.sub(" ", text))
    }


def numbers_supported(answer: str, text: str) -> bool:
    """Every number in `answer` occurs in `text`, and with the same unit where the answer
    gives one (95 Nm is not supported by "95 ROZ").

    >>> numbers_supported("Your name is Alice.", "My name is Alice.")
    True
    >>> numbers_supported("Use 120 Nm.", "My name is Alice.")
    False
    >>> numbers_supported("Use 95 Nm.", "Super, 95 ROZ. Wheel bolts 120 Nm.")
    False
    >>> numbers_supported("It takes 4,2 l [1].", "Motoröl 4.2 l SAE 5W-30")
    True
    """
    if not _numbers(answer) <= _numbers(text):
        return False
    return _quantities(answer) <= _quantities(text)


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
    sources = "\n".join(
        [*(f"{p.chunk.title}\n{p.chunk.section}\n{p.chunk.text}" for p in passages), conversation]
    )
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


Verdict = Literal["supported", "unsupported", "refusal"]

# Our prompt's delimiters, which small models copy into their answers.
_MARKUP = re.compile(r"</?sources?>|^\s*\[\d+\][^\n]*(?:Seite|page) \d+[^\n]*$", re.I | re.M)


def strip_markup(answer: str) -> str:
    """The answer without the prompt's own markup (source tags, source label lines).

    >>> strip_markup("<source> [1] Radwechsel: mit 120 Nm anziehen [1]. </source>")
    '[1] Radwechsel: mit 120 Nm anziehen [1].'
    """
    return " ".join(_MARKUP.sub(" ", answer).split()) if _MARKUP.search(answer) else answer


def check(
    answer: str,
    question: str,
    evidence: Sequence[Passage],
    language: Language,
    instructions: str,
    conversation: str = "",
) -> Verdict:
    """Whether a generated answer may be shown: supported by the evidence, a refusal ("the
    manuals do not cover it"), or unsupported (then the extractive answer replaces it)."""
    if not answer or repeats_instructions(answer, instructions):
        return "unsupported"
    if is_refusal(answer):
        return "refusal"
    text = strip_markup(answer)
    return (
        "supported"
        if is_supported(text, question, evidence, language, conversation)
        else "unsupported"
    )
