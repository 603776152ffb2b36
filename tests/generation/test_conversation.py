"""Sessions, history strategies and model residency over the real index and SQLite, with the
scripted model (what it answers is input here; real models are tested in their own modules)."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest

from app.handbook import Handbook
from bench.support.scripted_chat import remembers_names
from generation.events import Done, Summarized
from generation.history import Turn, fit, select
from generation.residency import Residency
from generation.sessions import SessionNotFound
from handbook.config import HistorySettings
from handbook.errors import BackendUnavailable
from handbook.types import Answer, Message, Role
from tests.conftest import make_settings

DRAIN = "What is the maximum pressure of the HP-200 press?"


def chat(
    home: Path, questions: Sequence[str], session: str | None = None, **env: str
) -> tuple[str, list[Answer]]:
    """Ask `questions` in one session; returns the session id and the answers."""

    async def work() -> tuple[str, list[Answer]]:
        settings = make_settings(home, CHAT__BACKEND="scripted", **env)
        async with Handbook(settings) as hb:
            session_id = session or hb.sessions.create().id
            conversation = await hb.conversation()
            answers = []
            for question in questions:
                async for event in conversation.stream(session_id, question):
                    if isinstance(event, Done):
                        answers.append(event.answer)
            return session_id, answers

    return asyncio.run(work())


def sent(call: Sequence[Message]) -> str:
    return "\n".join(m.content for m in call)


@pytest.mark.parametrize(
    ("strategy", "remembered"), [("window", True), ("truncate", True), ("none", False)]
)
def test_my_name_is_alice(own_index: Path, scripted, strategy: str, remembered: bool) -> None:  # type: ignore[no-untyped-def]
    scripted.respond = remembers_names
    _, answers = chat(
        own_index, ["My name is Alice.", "What is my name?"], HISTORY__STRATEGY=strategy
    )
    assert ("Alice" in answers[1].answer) is remembered, answers[1]
    assert ("Alice" in sent(scripted.calls[-1])) is remembered
    assert not answers[1].found and answers[1].citations == (), "not from the manuals"


def test_truncate_keeps_the_last_turns(own_index: Path, scripted) -> None:  # type: ignore[no-untyped-def]
    scripted.script = "The HP-200 press reaches 210 bar [1]."
    questions = [f"Question {n}: {DRAIN}" for n in range(4)]
    chat(own_index, questions, HISTORY__STRATEGY="truncate", HISTORY__TURNS="2")
    last = scripted.calls[-1]
    history = [m.content for m in last[1:-1]]
    assert [h for h in history if h.startswith("Question")] == questions[1:3]
    assert [m.role for m in last[1:-1]] == [Role.USER, Role.ASSISTANT] * 2


def test_window_fits_the_token_budget_with_the_models_tokenizer() -> None:
    from generation.llamacpp import LlamaCppChat
    from handbook.config import ChatSettings

    model = LlamaCppChat(ChatSettings())
    try:
        turns = [
            Turn(f"Question number {n} about the press?", "Answer " * (10 * n)) for n in range(6)
        ]
        for budget in (64, 200, 400):
            kept = select(
                turns, HistorySettings(strategy="window", budget_tokens=budget), model.count_tokens
            )
            used = sum(t.tokens(model.count_tokens) for t in kept.kept)
            assert used <= budget
            older = kept.older[-1].tokens(model.count_tokens) if kept.older else 0
            assert not kept.older or used + older > budget, "the next older turn would not fit"
            assert kept.kept == tuple(turns[len(kept.older) :]), "the newest turns, whole"
        # The same text counts differently in another tokenizer: counts are the model's own.
        assert model.count_tokens("Drehmoment der Radschrauben") != len(
            ["Drehmoment", "der", "Radschrauben"]
        )
    finally:
        asyncio.run(model.close())


def test_fit_keeps_nothing_when_one_turn_is_over_budget() -> None:
    turns = [Turn("q " * 50, "a " * 50)]
    assert fit(turns, 10, lambda t: len(t.split())).kept == ()


def test_history_longer_than_the_context_is_cut_to_fit(own_index: Path, scripted) -> None:  # type: ignore[no-untyped-def]
    scripted.script = "The HP-200 press reaches 210 bar [1]."
    long = "Please remember this long remark about hydraulics. " * 60  # ~480 words per turn
    session, _ = chat(own_index, [long, long], HISTORY__STRATEGY="truncate")
    _, answers = chat(
        own_index, [DRAIN], session, HISTORY__STRATEGY="truncate", CHAT__CONTEXT_TOKENS="1024"
    )
    assert answers[0].found
    prompt = scripted.calls[-1]
    assert sum(len(m.content.split()) for m in prompt) <= 1024 - 200
    assert prompt[-1].content.endswith(DRAIN), "the question and its sources stay"


def test_summarize_condenses_older_turns_once(own_index: Path, scripted) -> None:  # type: ignore[no-untyped-def]
    def respond(messages: Sequence[Message]) -> str:
        if messages[0].content.startswith("Summarize"):
            return "The user Alice asked about the HP-200 press."
        return "The HP-200 press reaches 210 bar [1]."

    scripted.respond = respond
    env = {"HISTORY__STRATEGY": "summarize", "HISTORY__BUDGET_TOKENS": "64"}
    long = f"{DRAIN} {DRAIN} {DRAIN}"  # ~30 words: two turns do not fit 64 tokens
    session, _ = chat(own_index, [f"My name is Alice. {long}", long, long], **env)
    summaries = [c for c in scripted.calls if c[0].content.startswith("Summarize")]
    assert summaries and "Alice" in summaries[0][1].content
    last = scripted.calls[-1]
    assert any(m.role == Role.SYSTEM and "The user Alice" in m.content for m in last[1:])

    async def stored() -> tuple[str, int]:
        async with Handbook(make_settings(own_index)) as hb:
            history = hb.sessions.history(session)
            return history.summary, history.summary_upto

    summary, upto = asyncio.run(stored())
    assert summary.startswith("The user Alice") and upto >= 1


def test_summary_is_reused_while_no_new_turn_drops_out(own_index: Path, scripted) -> None:  # type: ignore[no-untyped-def]
    scripted.respond = lambda m: (
        "Short." if m[0].content.startswith("Summ") else "It is 210 bar [1]."
    )

    async def events(session: str) -> list[object]:
        settings = make_settings(
            own_index,
            CHAT__BACKEND="scripted",
            HISTORY__STRATEGY="summarize",
            HISTORY__BUDGET_TOKENS="64",
        )
        async with Handbook(settings) as hb:
            return [e async for e in (await hb.conversation()).stream(session, DRAIN)]

    long = f"{DRAIN} {DRAIN} {DRAIN} {DRAIN}"  # 36 words: two such turns exceed 64 tokens
    session, _ = chat(own_index, [long, long])
    first = asyncio.run(events(session))
    assert any(isinstance(e, Summarized) for e in first), "two turns fit no more: summarize"
    calls = len(scripted.calls)
    # Same turns drop out as before (the new short turn fits beside the newest): no new summary.
    second = asyncio.run(events(session))
    assert not any(isinstance(e, Summarized) for e in second)
    assert len(scripted.calls) == calls + 1, "only the answer, no summary call"


def test_a_failed_answer_leaves_the_session_as_it_was(own_index: Path, scripted) -> None:  # type: ignore[no-untyped-def]
    scripted.script = "The HP-200 press reaches 210 bar [1]."
    session, _ = chat(own_index, [DRAIN])
    scripted.fail_after = 2
    with pytest.raises(BackendUnavailable):
        chat(own_index, ["And the tank volume?"], session)

    async def turns() -> list[str]:
        async with Handbook(make_settings(own_index)) as hb:
            return [t.answer.question for t in hb.sessions.turns(session)]

    assert asyncio.run(turns()) == [DRAIN]


def test_sessions_list_reset_delete_and_unknown_ids(own_index: Path, scripted) -> None:  # type: ignore[no-untyped-def]
    scripted.script = "The HP-200 press reaches 210 bar [1]."
    session, _ = chat(own_index, [DRAIN, DRAIN])

    async def work() -> None:
        async with Handbook(make_settings(own_index)) as hb:
            info = hb.sessions.get(session)
            assert info.turns == 2 and info.title == DRAIN
            stored = hb.sessions.turns(session)[0].answer
            assert stored.found and stored.citations, "answers are stored with their citations"
            hb.sessions.reset(session)
            assert hb.sessions.get(session).turns == 0
            hb.sessions.delete(session)
            with pytest.raises(SessionNotFound, match="handbook chat"):
                hb.sessions.get(session)

    asyncio.run(work())
    with pytest.raises(SessionNotFound):
        chat(own_index, [DRAIN], "no-such-session")


# --- residency --------------------------------------------------------------------------------


def residency_env(**extra: str) -> dict[str, str]:
    return {
        "CHAT__BACKEND": "scripted",
        "CHAT__MODEL": "llama3.2",
        "EXTRACTION__BACKEND": "scripted",
        "EXTRACTION__MODEL": "gemma3",
        **extra,
    }


def answering_model(home: Path, *, extracted_s_ago: float | None, **extra: str) -> str:
    async def work() -> str:
        import time

        now = time.time()
        offset = extracted_s_ago or 0.0
        settings = make_settings(home, **residency_env(**extra))
        async with Handbook(settings) as hb:
            if extracted_s_ago is not None:  # the graph stage ran `offset` seconds ago
                past = Residency(
                    settings.chat,
                    settings.extraction,
                    settings.residency,
                    settings.models_path,
                    hb.registry,
                    clock=lambda: now - offset,
                )
                past.mark_extracted()
            answer = await (await hb.answerer()).ask(DRAIN)
            return answer.model

    return asyncio.run(work())


def test_recently_used_extraction_model_answers_instead_of_a_swap(
    own_index: Path, scripted
) -> None:  # type: ignore[no-untyped-def]
    scripted.script = "The HP-200 press reaches 210 bar [1]."
    fresh = [own_index.with_name(f"fresh-{n}") for n in range(2)]
    for copy in fresh:  # no answer given yet in these
        shutil.copytree(own_index, copy)
    assert answering_model(own_index, extracted_s_ago=60) == "scripted:gemma3"
    # The loaded extraction model goes on answering while its window lasts.
    assert answering_model(own_index, extracted_s_ago=None) == "scripted:gemma3"
    assert answering_model(own_index, extracted_s_ago=600) == "scripted:llama3.2"
    # The chat model answered just now, after that extraction: it stays.
    assert answering_model(own_index, extracted_s_ago=60) == "scripted:llama3.2"
    assert (
        answering_model(fresh[0], extracted_s_ago=60, RESIDENCY__EXTRACTION_CAN_CHAT="false")
        == "scripted:llama3.2"
    )
    assert (
        answering_model(fresh[1], extracted_s_ago=60, RESIDENCY__WINDOW_S="0")
        == "scripted:llama3.2"
    )


def test_identical_models_are_loaded_once_and_preloaded(own_index: Path, scripted) -> None:  # type: ignore[no-untyped-def]
    same = {  # the extraction section's own defaults differ in these
        "EXTRACTION__MODEL": "llama3.2",
        "EXTRACTION__TEMPERATURE": "0.2",
        "EXTRACTION__MAX_TOKENS": "200",
        "EXTRACTION__CONTEXT_TOKENS": "4096",
    }

    async def work(**env: str) -> tuple[bool, dict[str, float | None]]:
        async with Handbook(make_settings(own_index, **residency_env(**env))) as hb:
            residency = hb.residency()
            shared = residency.chat().chat is residency.extraction().chat
            await residency.preload()
            return shared, residency.load_times()

    assert asyncio.run(work(**same)) == (True, {"scripted:llama3.2": 0.0})
    assert scripted.created == ["scripted:llama3.2"]
    # Same model, another context size: its own instance (another llama.cpp server, or an
    # Ollama reload), and the chat model still answers with its own settings.
    shared, _ = asyncio.run(work(**{**same, "EXTRACTION__CONTEXT_TOKENS": "8192"}))
    assert not shared


def test_task_prefix_for_adapters(own_index: Path, scripted) -> None:  # type: ignore[no-untyped-def]
    scripted.script = "The HP-200 press reaches 210 bar [1]."

    async def work(**env: str) -> str:
        async with Handbook(make_settings(own_index, CHAT__BACKEND="scripted", **env)) as hb:
            await (await hb.answerer()).ask(DRAIN)
        return scripted.calls[-1][-1].content

    assert asyncio.run(work(CHAT__TASK_PREFIX="true")).startswith(f"[SPEC] {DRAIN}\n\n<sources>")
    assert asyncio.run(work()).startswith("<sources>")
    custom = asyncio.run(
        work(CHAT__TASK_PREFIX="true", CHAT__TASK_TEMPLATE="<{TASK}>: {instruction}")
    )
    assert custom.startswith(f"<SPEC>: {DRAIN}")


def test_the_model_can_route_tasks(own_index: Path, scripted) -> None:  # type: ignore[no-untyped-def]
    def respond(messages: Sequence[Message]) -> str:
        if messages[0].content.startswith("Classify"):
            return reply
        return "The HP-200 press reaches 210 bar [1]."

    scripted.respond = respond

    async def task(router: str) -> str:
        settings = make_settings(own_index, CHAT__BACKEND="scripted", CHAT__TASK_ROUTER=router)
        async with Handbook(settings) as hb:
            return (await (await hb.answerer()).ask(DRAIN)).task

    reply = "TROUBLESHOOT"
    assert asyncio.run(task("rules")) == "SPEC"
    assert asyncio.run(task("llm")) == "TROUBLESHOOT"
    reply = "No idea."
    assert asyncio.run(task("llm")) == "SPEC", "an unusable reply falls back to the rules"
