"""Retrieval quality on a question set: hit@k and MRR, overall and by group.

A question's expected location is its document plus the PDF page, or for formats without pages
the heading under which the answer stands. A retrieved passage hits when it is from that
document and that page (or has that heading in its heading path).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from handbook.errors import HandbookError
from handbook.jsonl import read_lines
from handbook.types import Passage, RetrievalMode
from retrieval.search import Retriever


@dataclass(frozen=True)
class Question:
    id: str
    language: str
    question: str
    doc: str | None
    page: int | None
    section: str | None
    answerable: bool
    cross_lingual: bool
    key_facts: tuple[str, ...] = ()


def load_questions(path: Path) -> list[Question]:
    questions: list[Question] = []
    for line in read_lines(path):
        if line.problem is not None:
            raise HandbookError(f"{path}:{line.number}: malformed question ({line.problem}).")
        raw: dict[str, Any] = line.value
        try:
            questions.append(
                Question(
                    id=str(raw["id"]),
                    language=raw["language"],
                    question=raw["question"],
                    doc=raw.get("doc"),
                    page=raw.get("page"),
                    section=raw.get("section"),
                    answerable=bool(raw.get("answerable", True)),
                    cross_lingual=bool(raw.get("cross_lingual", False)),
                    key_facts=tuple(raw.get("key_facts") or ()),
                )
            )
        except (KeyError, TypeError) as exc:
            raise HandbookError(f"{path}:{line.number}: malformed question ({exc}).") from None
    return questions


class Located(Protocol):
    """Where a question's answer stands: document, and page or section."""

    @property
    def doc(self) -> str | None: ...
    @property
    def page(self) -> int | None: ...
    @property
    def section(self) -> str | None: ...


def is_hit(question: Located, passage: Passage) -> bool:
    chunk = passage.chunk
    if question.doc is None or Path(chunk.path).name != question.doc:
        return False
    if question.page is not None:
        return chunk.page == question.page
    if question.section:
        return question.section in chunk.heading_path
    return True


@dataclass(frozen=True)
class QuestionResult:
    question: Question
    rank: int | None  # 1-based rank of the first hit within k, None if missed
    best_dense: float


@dataclass(frozen=True)
class RetrievalScores:
    results: tuple[QuestionResult, ...]
    k: int

    def _answerable(self, *, cross: bool | None = None) -> list[QuestionResult]:
        return [
            r
            for r in self.results
            if r.question.answerable and (cross is None or r.question.cross_lingual == cross)
        ]

    def hit_at_k(self, *, cross: bool | None = None) -> float:
        rows = self._answerable(cross=cross)
        return sum(r.rank is not None for r in rows) / len(rows) if rows else 0.0

    def mrr(self, *, cross: bool | None = None) -> float:
        rows = self._answerable(cross=cross)
        return sum(1 / r.rank for r in rows if r.rank) / len(rows) if rows else 0.0

    def misses(self) -> list[QuestionResult]:
        return [r for r in self._answerable() if r.rank is None]


async def evaluate(
    retriever: Retriever, questions: list[Question], k: int = 5, mode: RetrievalMode = "hybrid"
) -> RetrievalScores:
    results: list[QuestionResult] = []
    for question in questions:
        found = await retriever.search(question.question, k=k, mode=mode)
        rank = next((i for i, p in enumerate(found.passages, 1) if is_hit(question, p)), None)
        results.append(QuestionResult(question, rank, found.best_dense))
    return RetrievalScores(tuple(results), k)
