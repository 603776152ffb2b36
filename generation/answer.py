"""Question -> retrieval -> prompt -> streamed answer with citations."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from generation.base import ChatModel
from generation.grounding import is_supported, quote_sources
from generation.prompts import NOT_FOUND, build_messages, is_refusal
from generation.tasks import route
from handbook.types import (
    Answer,
    Citation,
    Language,
    Message,
    Passage,
    RetrievalMode,
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
class Replaced:
    """The streamed answer was not supported by the sources; this text replaces it."""

    text: str


AnswerEvent = Retrieved | Token | Replaced | Done


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
    def __init__(self, retriever: Retriever, chat: ChatModel, sources: int = 3) -> None:
        self._retriever = retriever
        self._chat = chat
        self._sources = sources

    async def stream(
        self,
        question: str,
        *,
        k: int | None = None,
        where: SearchFilter | None = None,
        mode: RetrievalMode = "hybrid",
        history: Sequence[Message] = (),
    ) -> AsyncIterator[AnswerEvent]:
        """Events: the retrieval result, then answer tokens, then the finished answer."""
        result = await self._retriever.search(
            question, k=k or self._sources, where=where, mode=mode, keep_irrelevant=False
        )
        yield Retrieved(result)
        language: Language = result.language
        task = route(question).value
        if not result.passages:
            text = NOT_FOUND[language]
            yield Token(text)
            yield Done(
                Answer(question, text, language, found=False, citations=(), model="", task=task)
            )
            return
        messages = build_messages(question, result.passages, language, history)
        parts: list[str] = []
        guard = RepeatGuard()
        stream = self._chat.stream(messages)
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
        if found and not is_supported(generated, question, result.passages, language):
            text = quote_sources(question, result.passages, language)
            yield Replaced(text)
        yield Done(
            Answer(
                question,
                text,
                language,
                found=found,
                citations=citations(result.passages) if found else (),
                model=self._chat.name,
                task=task,
                model_answer=generated,
            )
        )

    async def ask(self, question: str, **kwargs: object) -> Answer:
        async for event in self.stream(question, **kwargs):  # type: ignore[arg-type]  # forwarded
            if isinstance(event, Done):
                return event.answer
        raise AssertionError("stream ended without a Done event")
