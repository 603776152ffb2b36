"""Each grounding rule on its own: every case below is rejected by exactly one rule and passes
all the others, so switching any one rule off fails its test. These check our own logic (the
model's words are the input); tests that run real models say whether they check the model or
the fallback."""

from __future__ import annotations

from generation.grounding import check, is_supported, numbers_supported, strip_markup
from generation.prompts import SYSTEM
from handbook.types import Chunk, Language, Passage

DE = [Passage(Chunk("d", 0, "Maximaldruck 210 bar, Tank 60 l.", "HP-200", "x", 1, (), "de"), 1.0)]
EN = [
    Passage(
        Chunk("e", 0, "The ZX-9 pump delivers 40 l/min at 210 bar.", "ZX-9", "y", 2, (), "en"),
        1.0,
    )
]


def supported(answer: str, question: str, passages: list[Passage], language: Language) -> bool:
    return is_supported(answer, question, passages, language)


def test_a_right_answer_passes_every_rule() -> None:
    assert supported("Der Maximaldruck beträgt 210 bar [1].", "Welcher Druck?", DE, "de")
    assert supported("The ZX-9 pump delivers 40 l/min [1].", "How much flow?", EN, "en")


def test_rule_every_number_in_the_sources() -> None:
    # Its words are grounded (maximaldruck) and it is no restatement: only the number fails.
    assert not supported("Der Maximaldruck beträgt 250 bar.", "Welcher Druck?", DE, "de")


def test_rule_a_number_keeps_its_unit() -> None:
    # 60 is in the sources, but as litres: an invented pressure with a borrowed number.
    assert numbers_supported("60 bar", "Tank 60 l.") is False
    assert not supported("Der Maximaldruck beträgt 60 bar.", "Welcher Druck?", DE, "de")


def test_rule_restating_the_question_is_no_answer() -> None:
    assert not supported("Welcher Maximaldruck gilt.", "Welcher Maximaldruck gilt?", DE, "de")


def test_rule_next_to_nothing_is_no_answer() -> None:
    # One grounded word, no number, not the question's words: says nothing.
    assert not supported("Maximaldruck.", "Welcher Druck?", DE, "de")


def test_rule_most_words_must_be_in_the_sources() -> None:
    # The number (ZX-9) is there, but praise the manual never gives is not.
    answer = "The ZX-9 is praised for its efficiency and reliability."
    assert not supported(answer, "Is the ZX-9 good?", EN, "en")


def test_check_rejects_an_answer_that_repeats_the_system_prompt() -> None:
    system = SYSTEM["en"]
    text = "The ZX-9 pump delivers 40 l/min through the filter housing to the pressure port."
    sources = [Passage(Chunk("e", 0, text, "ZX-9", "y", 2, (), "en"), 1.0)]
    grounded = (
        "The ZX-9 pump delivers 40 l/min through the filter housing to the pressure port [1]."
    )
    assert check(grounded, "How much flow?", sources, "en", system) == "supported"
    # Its words are mostly grounded (7 of 11), so only the repetition rule catches it.
    leaked = f"{grounded} {system.split('. ')[0]}."
    assert check(leaked, "How much flow?", sources, "en", system) == "unsupported"


def test_check_tells_a_refusal_from_an_unsupported_answer() -> None:
    system = SYSTEM["en"]
    assert check("The manuals do not cover this.", "Flow?", EN, "en", system) == "refusal"
    assert check("", "Flow?", EN, "en", system) == "unsupported"
    assert check("It makes 99 l/min.", "Flow?", EN, "en", system) == "unsupported"


def test_the_prompts_markup_never_reaches_the_user() -> None:
    answer = "<source> [1] Radwechsel: mit 120 Nm anziehen [1]. </source>"
    assert strip_markup(answer) == "[1] Radwechsel: mit 120 Nm anziehen [1]."
    label = "[1] HP-200, page 3, 2 Data\nMaximaldruck 210 bar [1]."
    assert strip_markup(label) == "Maximaldruck 210 bar [1]."
    assert strip_markup("Plain answer [1].") == "Plain answer [1]."
