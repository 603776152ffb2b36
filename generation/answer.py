"""Question -> retrieval -> prompt -> streamed answer with citations."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from generation.base import ChatModel
from generation.grounding import (
    is_supported,
    numbers_supported,
    quote_sources,
    repeats_instructions,
)
from generation.history import Count, History, Turn, as_messages, select, summary_request
from generation.prompts import NOT_FOUND, build_messages, is_refusal
from generation.residency import Residency
from generation.tasks import prefixed, route, route_with_model
from handbook.config import HistorySettings
from handbook.types import (
    Answer,
    Citation,
    Language,
    Message,
    Passage,
    RetrievalMode,
    Role,
    SearchFilter,
)
from retrieval.search import Retriever, SearchResult


@dataclass(frozen=True)
class Retrieved:
    result: SearchResult


@dataclass(frozen=True)
class Token:
    text: str


@dataclass(frozen=True)
class Done:
    answer: Answer


@dataclass(frozen=True)
class Summarized:
    """The summarize strategy condensed the first `upto` turns of the session into `text`."""

    text: str
    upto: int


@dataclass(frozen=True)
class Replaced:
    """The streamed answer was not supported by the sources; this text replaces it."""

    text: str


AnswerEvent = Retrieved | Token | Replaced | Summarized | Done


def citations(passages: Sequence[Passage]) -> tuple[Citation, ...]:
    return tuple(
        Citation(
            n=n,
            doc=p.chunk.doc_id,
            title=p.chunk.title,
            path=p.chunk.path,
            page=p.chunk.page,
            section=p.chunk.section,
            score=round(p.score, 6),
            text=p.chunk.text,
        )
        for n, p in enumerate(passages, start=1)
    )


class RepeatGuard:
    r"""Small models fall into loops ("- 1,0 l" forever). Stop at the first repeated line.

    >>> guard = RepeatGuard()
    >>> [guard.feed(p) for p in ["1. Wagen anheben.\n", "2. Rad ab.\n", "1. Wagen anheben.\n"]]
    [True, True, False]
    """

    MIN_LINE = 8

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._line = ""

    def feed(self, piece: str) -> bool:
        """False once the text has started repeating a complete line."""
        self._line += piece
        *complete, self._line = re.split(r"(?<=[.!?])\s+|\n", self._line)
        for line in complete:
            key = " ".join(line.split()).lower()
            if len(key) < self.MIN_LINE:
                continue
            if key in self._seen:
                return False
            self._seen.add(key)
        return True


class Answerer:
    """Answers questions with the model residency picks, with or without a session's history."""

    def __init__(
        self,
        retriever: Retriever,
        residency: Residency,
        history: HistorySettings,
        sources: int = 3,
    ) -> None:
        self._retriever = retriever
        self._residency = residency
        self._history = history
        self._sources = sources

    async def stream(
        self,
        question: str,
        *,
        k: int | None = None,
        where: SearchFilter | None = None,
        mode: RetrievalMode = "hybrid",
        history: History | None = None,
    ) -> AsyncIterator[AnswerEvent]:
        """Events: the retrieval result, then answer tokens, then the finished answer."""
        result = await self._retriever.search(
            question, k=k or self._sources, where=where, mode=mode, keep_irrelevant=False
        )
        yield Retrieved(result)
        language: Language = result.language
        in_session = history is not None
        history = history or History()
        resident = self._residency.answering()
        settings = resident.settings
        task = route(question, settings.tasks)
        if settings.task_router == "llm" and (result.passages or in_session):
            task = await route_with_model(resident.chat, question, settings.tasks)
        if not result.passages and not in_session:
            text = NOT_FOUND[language]
            yield Token(text)
            yield Done(
                Answer(question, text, language, found=False, citations=(), model="", task=task)
            )
            return
        chat = resident.chat
        selection = select(history.turns, self._history, chat.count_tokens)
        summary = history.summary
        stale = history.summary_upto != len(selection.older)
        if self._history.strategy == "summarize" and selection.older and stale:
            summary = await self._summarize(chat, selection.older, language)
            yield Summarized(summary, len(selection.older))
        prefix = (
            prefixed(task, question, settings.task_template) if settings.uses_task_prefix else ""
        )
        messages = fit_context(
            build_messages(
                question,
                result.passages,
                language,
                as_messages(selection.kept, summary, language),
                prefix,
                result.facts,
            ),
            chat.count_tokens,
            settings.context_tokens - settings.max_tokens,
        )
        self._residency.mark_answered(resident)
        parts: list[str] = []
        guard = RepeatGuard()
        stream = chat.stream(messages)
        try:
            async for piece in stream:
                if not guard.feed(piece):
                    break  # the repeated line is not shown
                parts.append(piece)
                yield Token(piece)
        finally:
            await stream.aclose()  # type: ignore[attr-defined]  # an async generator
        generated = "".join(parts).strip()
        found = bool(generated) and not is_refusal(generated)
        text = generated
        conversation = "\n".join(m.content for m in messages[1:-1])
        if generated and repeats_instructions(generated, messages[0].content):
            # Talked into printing its instructions (a document saying "print your system
            # prompt"): never shown. The manuals' own words, or "not in the manuals", instead.
            found = bool(result.passages)
            text = (
                quote_sources(question, result.passages, language) if found else NOT_FOUND[language]
            )
            yield Replaced(text)
        elif not result.passages:
            # Answered from the conversation alone: nothing to cite, and no number that the
            # conversation does not hold (an invented torque is the answer never to give).
            if not generated or not numbers_supported(generated, f"{conversation}\n{question}"):
                text = NOT_FOUND[language]
                yield Replaced(text)
            found = False
        elif found and not is_supported(
            generated, question, result.passages, language, conversation
        ):
            text = quote_sources(question, result.passages, language)
            yield Replaced(text)
        yield Done(
            Answer(
                question,
                text,
                language,
                found=found,
                citations=citations(result.passages) if found else (),
                model=chat.name,
                task=task,
                model_answer=generated,
            )
        )

    async def _summarize(self, chat: ChatModel, older: Sequence[Turn], language: Language) -> str:
        words = max(10, self._history.summary_tokens * 3 // 4)
        pieces = [piece async for piece in chat.stream(summary_request(older, language, words))]
        return "".join(pieces).strip()

    async def ask(self, question: str, **kwargs: object) -> Answer:
        async for event in self.stream(question, **kwargs):  # type: ignore[arg-type]  # forwarded
            if isinstance(event, Done):
                return event.answer
        raise AssertionError("stream ended without a Done event")


def fit_context(messages: list[Message], count: Count, limit: int) -> list[Message]:
    """Drop the oldest history messages until the prompt fits `limit` tokens. The system
    prompt and the question with its sources are always kept.

    >>> m = [Message(Role.SYSTEM, "s"), Message(Role.USER, "old q"),
    ...      Message(Role.ASSISTANT, "old a"), Message(Role.USER, "q")]
    >>> [x.content for x in fit_context(m, len, 8)]
    ['s', 'q']
    """
    system, *history, question = messages
    if not history:
        return messages  # nothing could be dropped: spare the tokenizer calls
    # Each message is counted once (llama.cpp counts over HTTP).
    sizes = [count(m.content) for m in history]
    total = count(system.content) + count(question.content) + sum(sizes)
    start = 0
    while start < len(history) and total > limit:
        total -= sizes[start]
        start += 1
        if start < len(history) and history[start].role == Role.ASSISTANT:
            total -= sizes[start]  # no answer without its question
            start += 1
    return [system, *history[start:], question]
