"""Question -> retrieval -> prompt -> streamed answer with citations."""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from generation.answerability import missing_terms
from generation.events import AnswerEvent, Done, Replaced, Retrieved, Summarized, Token
from generation.extract import Extractor, compose
from generation.grounding import check, numbers_supported, strip_markup
from generation.history import Count, History, Turn, as_messages, select, summary_request
from generation.prompts import (
    MISSING_LABEL,
    NEAREST_LABEL,
    NOT_FOUND,
    NOT_SUPPORTED,
    NOTHING_ABOUT,
    build_messages,
)
from generation.residency import Residency, Resident
from generation.tasks import prefixed, route, route_with_model
from handbook.config import AnswerSettings, ChatSettings, HistorySettings
from handbook.errors import BackendUnavailable
from handbook.protocols import ChatModel
from handbook.types import (
    Answer,
    AnswerMode,
    Citation,
    Language,
    Message,
    Passage,
    RetrievalMode,
    Role,
    SearchFilter,
    Task,
)
from retrieval.search import Retriever, SearchResult

AnswerModeSetting = Literal["auto", "extract", "generate"]
NEAREST = 3
"""Passages shown with a "not in the manuals" answer."""


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


def resolve_mode(requested: AnswerModeSetting, chat: ChatSettings) -> AnswerMode:
    """`auto` extracts with the packaged offline model (its 135M parameters write junk, German
    above all) and generates with a real one.

    >>> resolve_mode("auto", ChatSettings())
    'extract'
    >>> resolve_mode("auto", ChatSettings(backend="ollama", model="llama3.2:3b"))
    'generate'
    >>> resolve_mode("generate", ChatSettings())
    'generate'
    """
    if requested != "auto":
        return requested
    packaged = chat.backend == "llamacpp" and chat.model == "smollm2" and not chat.adapter
    return "extract" if packaged else "generate"


def not_found_text(language: Language, missing: Sequence[str], nearest: Sequence[Citation]) -> str:
    """ "Not in the manuals", what was missing, and where the nearest passages are (named as
    citations are named everywhere else).

    >>> cite = Citation("d", "HP-200", "x.md", 4, "2 Data", 1.0, "HLP 46", n=1)
    >>> print(not_found_text("de", ["-20"], [cite]))
    Dazu steht nichts in den Handbüchern (nicht gefunden: -20). Am nächsten kommen:
    [1] HP-200, S. 4, 2 Data
    """
    lines = [NOT_FOUND[language] if not nearest else NOTHING_ABOUT[language]]
    if missing:
        lines[0] = lines[0].rstrip(".") + f" ({MISSING_LABEL[language]}: {', '.join(missing)})."
    if nearest:
        lines[0] += f" {NEAREST_LABEL[language]}"
        lines += [c.label(language) for c in nearest]
    return "\n".join(lines)


@dataclass(frozen=True)
class _Prepared:
    """What retrieval and span selection found for a question."""

    result: SearchResult
    task: Task
    evidence: tuple[Passage, ...]
    """The passages the spans come from, in citation order; their text is the spans."""
    sources: tuple[Passage, ...]
    """The same passages whole (what the citations show)."""
    extractive: str


@dataclass(frozen=True)
class _Route:
    """Who answers a question and how: the resident model, the answer mode asked for and the
    one chosen, and the question's task."""

    resident: Resident
    requested: AnswerModeSetting
    mode: AnswerMode
    task: Task


class Answerer:
    """Answers questions from the manuals: retrieval, span selection, then the manuals' own
    words (extract) or a model's answer checked against them (generate)."""

    def __init__(
        self,
        retriever: Retriever,
        residency: Residency,
        history: HistorySettings,
        settings: AnswerSettings,
        extractor: Extractor,
    ) -> None:
        self._retriever = retriever
        self._residency = residency
        self._history = history
        self._settings = settings
        self._extractor = extractor

    async def stream(
        self,
        question: str,
        *,
        k: int | None = None,
        where: SearchFilter | None = None,
        mode: RetrievalMode = "hybrid",
        history: History | None = None,
        answer_mode: AnswerModeSetting | None = None,
    ) -> AsyncGenerator[AnswerEvent, None]:
        """Events: the retrieval result, then answer tokens, then the finished answer.

        Three steps: prepare (retrieval, routing, the spans that answer), answer (the manuals'
        own words, or the model's), and for a model's answer verify it against the sources.
        """
        result = await self._retriever.search(
            question, k=k or self._settings.passages, where=where, mode=mode, keep_irrelevant=False
        )
        yield Retrieved(result)
        routed = await self._route(question, result, answer_mode)
        if (
            not result.passages
            and history is not None
            and history.turns
            and routed.mode == "generate"
        ):
            async for event in self._from_conversation(question, result.language, routed, history):
                yield event
            return
        prepared = await self._prepare(question, result, routed.task)
        if isinstance(prepared, Answer):
            yield Token(prepared.answer)
            yield Done(prepared)
            return
        async for event in self._respond(question, prepared, routed, history or History()):
            yield event

    async def _route(
        self, question: str, result: SearchResult, answer_mode: AnswerModeSetting | None
    ) -> _Route:
        """The model that answers, the answer mode and the question's task."""
        resident = self._residency.answering()
        requested = answer_mode or self._settings.mode
        chosen = resolve_mode(requested, resident.settings)
        task = route(question, resident.settings.tasks)
        if chosen == "generate" and resident.settings.task_router == "llm" and result.passages:
            task = await route_with_model(resident.chat, question, resident.settings.tasks)
        return _Route(resident, requested, chosen, task)

    async def _respond(
        self, question: str, prepared: _Prepared, routed: _Route, history: History
    ) -> AsyncIterator[AnswerEvent]:
        """The manuals' own words, or the model's checked answer; with `auto`, a chat model
        that cannot be reached before its first token gives the manuals' words instead."""
        if routed.mode == "generate":
            started = False
            try:
                async for event in self._generate(question, prepared, routed.resident, history):
                    started = started or isinstance(event, Token)
                    yield event
                return
            except BackendUnavailable:
                if routed.requested != "auto" or started:
                    raise
        yield Token(prepared.extractive)
        yield Done(self._answer(question, prepared, prepared.extractive, found=True))

    async def _prepare(self, question: str, result: SearchResult, task: Task) -> _Prepared | Answer:
        """The spans that answer the question, numbered as cited; when nothing answers it (no
        passage, a term of the question in none, no span that fits), the "not in the manuals"
        answer with the nearest passages."""
        language = result.language
        missing = missing_terms(question, language, result.passages) if result.passages else []
        fits = result.passages and not missing
        spans = (
            await self._extractor.spans(question, language, task, result.passages) if fits else []
        )
        if not spans:
            nearest = Citation.numbered(result.passages[:NEAREST])
            text = not_found_text(language, missing, nearest)
            return Answer(question, text, language, found=False, citations=nearest, task=task)
        if self._settings.evidence == "passages":
            whole = result.passages
            return _Prepared(result, task, whole, whole, compose(spans, language))
        order = list(dict.fromkeys(s.n for s in spans))  # passages in order of first use
        number = {n: i for i, n in enumerate(order, start=1)}
        renumbered = [replace(s, n=number[s.n]) for s in spans]
        sources = tuple(result.passages[n - 1] for n in order)
        evidence = tuple(
            replace(
                p, chunk=replace(p.chunk, text="\n".join(s.text for s in renumbered if s.n == i))
            )
            for i, p in enumerate(sources, start=1)
        )
        return _Prepared(result, task, evidence, sources, compose(renumbered, language))

    def _answer(
        self,
        question: str,
        prepared: _Prepared,
        text: str,
        *,
        found: bool,
        model: str = "",
        generated: str = "",
        mode: AnswerMode = "extract",
    ) -> Answer:
        return Answer(
            question,
            text,
            prepared.result.language,
            found=found,
            citations=Citation.numbered(prepared.sources) if found else (),
            model=model,
            task=prepared.task,
            model_answer=generated,
            answer_mode=mode,
        )

    async def _generate(
        self, question: str, prepared: _Prepared, resident: Resident, history: History
    ) -> AsyncIterator[AnswerEvent]:
        """The model answers from the evidence (the selected spans, numbered); an answer the
        evidence does not support is replaced by the extractive one."""
        language = prepared.result.language
        chat, settings = resident.chat, resident.settings
        selection = select(history.turns, self._history, chat.count_tokens)
        summary = history.summary
        stale = history.summary_upto != len(selection.older)
        if self._history.strategy == "summarize" and selection.older and stale:
            summary = await self._summarize(chat, selection.older, language)
            yield Summarized(summary, len(selection.older))
        prefix = (
            prefixed(prepared.task, question, settings.task_template)
            if settings.uses_task_prefix
            else ""
        )
        messages = self._fit(
            resident,
            build_messages(
                question,
                prepared.evidence,
                language,
                as_messages(selection.kept, summary, language),
                prefix,
                prepared.result.facts,
            ),
        )
        parts: list[str] = []
        async for token in self._tokens(resident, messages, parts):
            yield token
        for event in self._verify(question, prepared, messages, "".join(parts).strip(), chat.name):
            yield event

    def _verify(
        self,
        question: str,
        prepared: _Prepared,
        messages: Sequence[Message],
        generated: str,
        model: str,
    ) -> Iterator[AnswerEvent]:
        """The model's answer against the sources: kept (without copied markup), replaced by
        the extractive answer when unsupported, or a refusal (not found)."""
        language = prepared.result.language
        conversation = "\n".join(m.content for m in messages[1:-1])
        verdict = check(
            generated, question, prepared.sources, language, messages[0].content, conversation
        )
        mode: AnswerMode = "generate"
        text, found = generated, verdict != "refusal"
        if verdict == "supported":
            text = strip_markup(generated)
            if text != generated:
                yield Replaced(text, "cleaned")
        elif verdict == "unsupported":
            text, mode = f"{NOT_SUPPORTED[language]}\n{prepared.extractive}", "extract"
            yield Replaced(text)
        yield Done(
            self._answer(
                question,
                prepared,
                text,
                found=found,
                model=model,
                generated=generated,
                mode=mode,
            )
        )

    def _fit(self, resident: Resident, messages: list[Message]) -> list[Message]:
        """The prompt cut to the model's context, less the room its answer needs."""
        settings = resident.settings
        return fit_context(
            messages, resident.chat.count_tokens, settings.context_tokens - settings.max_tokens
        )

    def _tokens(
        self, resident: Resident, messages: Sequence[Message], parts: list[str]
    ) -> AsyncIterator[Token]:
        """The resident model's answer as Token events (the residency notes its use)."""
        self._residency.mark_answered(resident)
        return _tokens(resident.chat, messages, parts)

    async def _from_conversation(
        self, question: str, language: Language, routed: _Route, history: History
    ) -> AsyncIterator[AnswerEvent]:
        """No passage matches, but the session has turns: the model the route chose may answer
        from them, with no number that the conversation does not hold."""
        resident, task = routed.resident, routed.task
        chat = resident.chat
        selection = select(history.turns, self._history, chat.count_tokens)
        messages = self._fit(
            resident,
            build_messages(
                question, [], language, as_messages(selection.kept, history.summary, language)
            ),
        )
        parts: list[str] = []
        async for token in self._tokens(resident, messages, parts):
            yield token
        generated = "".join(parts).strip()
        conversation = "\n".join(m.content for m in messages[1:-1])
        text = generated
        if not generated or not numbers_supported(generated, f"{conversation}\n{question}"):
            text = NOT_FOUND[language]
            yield Replaced(text)
        yield Done(
            Answer(
                question,
                text,
                language,
                found=False,
                citations=(),
                model=chat.name,
                task=task,
                model_answer=generated,
                answer_mode="generate",
            )
        )

    async def _summarize(self, chat: ChatModel, older: Sequence[Turn], language: Language) -> str:
        words = max(10, self._history.summary_tokens * 3 // 4)
        pieces = [piece async for piece in chat.stream(summary_request(older, language, words))]
        return "".join(pieces).strip()

    async def ask(
        self,
        question: str,
        *,
        k: int | None = None,
        where: SearchFilter | None = None,
        mode: RetrievalMode = "hybrid",
        answer_mode: AnswerModeSetting | None = None,
    ) -> Answer:
        """The finished answer of `stream` (its last event)."""
        events = self.stream(question, k=k, where=where, mode=mode, answer_mode=answer_mode)
        try:
            async for event in events:
                if isinstance(event, Done):
                    return event.answer
        finally:
            await events.aclose()  # cancelled: the model stops now
        raise AssertionError("stream ended without a Done event")


async def _tokens(
    chat: ChatModel, messages: Sequence[Message], parts: list[str]
) -> AsyncIterator[Token]:
    """The model's pieces as Token events (each also appended to `parts`), up to the first
    repeated line (small models loop)."""
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
