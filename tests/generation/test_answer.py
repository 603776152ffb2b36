"""The answer service over the real index, with a scripted chat model registered through the real
registry (the model's words are the input under test here; the real models are tested in
test_chat_backends.py and test_cli.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from app.handbook import Handbook
from generation.events import Done, Replaced, Token
from handbook.errors import BackendUnavailable
from handbook.types import Answer
from tests.conftest import make_settings


def ask(home: Path, question: str) -> tuple[Answer, list[object]]:
    async def work() -> tuple[Answer, list[object]]:
        settings = make_settings(home, CHAT__BACKEND="scripted")
        async with Handbook(settings) as hb:
            events = [e async for e in (await hb.answerer()).stream(question)]
        done = events[-1]
        assert isinstance(done, Done)
        return done.answer, events

    return asyncio.run(work())


def test_supported_answer_is_kept_with_citations(indexed_home: Path, scripted) -> None:  # type: ignore[no-untyped-def]
    scripted.script = "The HP-200 press reaches a maximum pressure of 210 bar [1]."
    answer, events = ask(indexed_home, "What is the maximum pressure of the HP-200 press?")
    assert answer.found and answer.answer == scripted.script
    assert answer.task == "SPEC"
    assert not any(isinstance(e, Replaced) for e in events)
    assert any(c.path.endswith("hydraulic_press_hp200.md") for c in answer.citations)
    prompt = scripted.calls[0][-1].content
    assert "<sources>" in prompt and "[1]" in prompt, "numbered, delimited sources"
    assert "Answer in English" in scripted.calls[0][0].content


def test_invented_number_is_replaced_by_quotes_from_the_sources(
    indexed_home: Path, scripted
) -> None:  # type: ignore[no-untyped-def]
    scripted.script = "Die Radschrauben werden mit 95 Nm angezogen."
    answer, events = ask(indexed_home, "Mit welchem Drehmoment werden die Radschrauben angezogen?")
    assert any(isinstance(e, Replaced) for e in events)
    assert answer.model_answer == scripted.script
    assert "95 Nm" not in answer.answer and "Laut den Handbüchern" in answer.answer
    assert answer.answer.startswith("Die Antwort des Modells war nicht durch die Quellen gedeckt.")
    replaced = next(e for e in events if isinstance(e, Replaced))
    assert replaced.reason == "unsupported" and replaced.text == answer.answer
    assert "120 Nm" in answer.answer, "the manual's value, from its table"
    assert "[1]" in answer.answer or "[2]" in answer.answer
    assert "Antworte auf Deutsch" in scripted.calls[0][0].content


def test_copied_prompt_markup_is_cleaned_not_rejected(indexed_home: Path, scripted) -> None:  # type: ignore[no-untyped-def]
    scripted.script = "<source> The maximum working pressure is 210 bar [1]. </source>"
    answer, events = ask(indexed_home, "What is the maximum pressure of the HP-200 press?")
    replaced = [e for e in events if isinstance(e, Replaced)]
    assert [e.reason for e in replaced] == ["cleaned"]
    assert answer.found and answer.answer_mode == "generate"
    assert answer.answer == "The maximum working pressure is 210 bar [1]."


def test_loops_are_cut_at_the_first_repetition(indexed_home: Path, scripted) -> None:  # type: ignore[no-untyped-def]
    scripted.script = "Check the oil level. " * 30
    _, events = ask(indexed_home, "How do I check the hydraulic oil level of the HP-200?")
    streamed = "".join(e.text for e in events if isinstance(e, Token))
    assert streamed.count("Check the oil level.") == 1


def test_off_topic_question_is_declined_without_the_model(indexed_home: Path, scripted) -> None:  # type: ignore[no-untyped-def]
    answer, _ = ask(indexed_home, "Who won the football world cup in 1954?")
    assert not answer.found and answer.citations == ()
    assert "do not contain" in answer.answer
    assert scripted.calls == [], "the model is not asked"


def test_model_refusal_means_not_found(indexed_home: Path, scripted) -> None:  # type: ignore[no-untyped-def]
    scripted.script = "The manuals do not cover this question."
    answer, _ = ask(indexed_home, "How much can the Kompakt 3 tow?")
    assert not answer.found and answer.citations == ()


def test_auto_answers_from_the_manuals_when_the_model_cannot_be_reached(
    indexed_home: Path, scripted
) -> None:  # type: ignore[no-untyped-def]
    scripted.fail_calls_after = 0  # the server is down before the first call
    answer, events = ask(indexed_home, "What is the maximum pressure of the HP-200 press?")
    assert answer.found and answer.answer_mode == "extract" and "210 bar" in answer.answer
    assert [e.text for e in events if isinstance(e, Token)] == [answer.answer]


def test_a_model_failing_mid_answer_or_when_asked_for_is_an_error(
    indexed_home: Path, scripted
) -> None:  # type: ignore[no-untyped-def]
    question = "What is the maximum pressure of the HP-200 press?"
    scripted.script = "The maximum working pressure is 210 bar [1]."
    scripted.fail_after = 2  # tokens were shown: nothing is silently swapped in
    with pytest.raises(BackendUnavailable):
        ask(indexed_home, question)
    scripted.fail_after = None
    scripted.fail_calls_after = 0

    async def generate() -> None:
        settings = make_settings(indexed_home, CHAT__BACKEND="scripted")
        async with Handbook(settings) as hb:
            await (await hb.answerer()).ask(question, answer_mode="generate")

    with pytest.raises(BackendUnavailable):
        asyncio.run(generate())
