"""Answer quality on a question set: key-fact recall, "not in the manuals", length, latency.

The same figures for every answer mode, so that `bench/answer_quality.py` can put them side by
side and the CI gate (tests/eval/test_devset_gate.py) can hold the extractive answers to the
committed figures:
- recall: the mean share of an answerable question's key facts that the answer states;
- refused: unanswerable questions answered "not in the manuals" (`found: false`);
- false refusals: answerable questions answered "not in the manuals";
- median characters of the answers to answerable questions;
- latency (p50/p95) of whole answers, and time to the first streamed piece.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from eval.retrieval import Question
from eval.scoring import key_fact_recall, percentile
from handbook.types import Answer, AnswerMode, RetrievalMode

if TYPE_CHECKING:
    from generation.answer import Answerer
    from retrieval.search import Retriever


@dataclass(frozen=True)
class AnswerResult:
    question: Question
    answer: Answer
    recall: float
    seconds: float
    first_piece_s: float | None


@dataclass(frozen=True)
class AnswerScores:
    results: tuple[AnswerResult, ...]

    def _answerable(self) -> list[AnswerResult]:
        return [r for r in self.results if r.question.answerable]

    def recall(self) -> float:
        rows = self._answerable()
        return sum(r.recall for r in rows) / len(rows) if rows else 0.0

    def refused(self) -> tuple[int, int]:
        """(unanswerable questions refused, unanswerable questions)."""
        rows = [r for r in self.results if not r.question.answerable]
        return sum(not r.answer.found for r in rows), len(rows)

    def false_refusals(self) -> tuple[int, int]:
        """(answerable questions refused, answerable questions)."""
        rows = self._answerable()
        return sum(not r.answer.found for r in rows), len(rows)

    def median_chars(self) -> float:
        lengths = [len(r.answer.answer) for r in self._answerable()]
        return statistics.median(lengths) if lengths else 0.0

    def latency(self, share: float) -> float:
        return percentile([r.seconds for r in self.results], share)

    def first_piece(self, share: float) -> float:
        times = [r.first_piece_s for r in self.results if r.first_piece_s is not None]
        return percentile(times, share)


async def evaluate_answers(
    answerer: Answerer, questions: Sequence[Question], mode: AnswerMode
) -> AnswerScores:
    """Ask every question in `mode`, one after the other (latency is per answer)."""
    from generation.events import Done, Token

    results: list[AnswerResult] = []
    for question in questions:
        started = time.perf_counter()
        first: float | None = None
        answer: Answer | None = None
        async for event in answerer.stream(question.question, answer_mode=mode):
            if isinstance(event, Token) and first is None:
                first = time.perf_counter() - started
            elif isinstance(event, Done):
                answer = event.answer
        if answer is None:
            raise AssertionError(f"{question.id}: the answer stream ended without an answer")
        seconds = time.perf_counter() - started
        recall = key_fact_recall(answer.answer, question.key_facts) if question.answerable else 0
        results.append(AnswerResult(question, answer, recall, seconds, first))
    return AnswerScores(tuple(results))


GATE_MODES: tuple[RetrievalMode, ...] = ("hybrid", "naive", "sparse")


async def gate_figures(
    retriever: Retriever, answerer: Answerer, questions: Sequence[Question], k: int = 5
) -> dict[str, float]:
    """The figures CI holds to their committed values (eval/reports/devset.json): retrieval
    hit@k per mode, and the extractive answers' key-fact recall, refusals of unanswerable
    questions and false refusals (as shares)."""
    from eval.retrieval import evaluate

    figures: dict[str, float] = {}
    for mode in GATE_MODES:
        scores = await evaluate(retriever, list(questions), k, mode)
        figures[f"hit@{k}_{mode}"] = round(scores.hit_at_k(), 3)
    answers = await evaluate_answers(answerer, questions, "extract")
    refused, unanswerable = answers.refused()
    false, answerable = answers.false_refusals()
    figures["extract_recall"] = round(answers.recall(), 3)
    figures["extract_refused"] = round(refused / unanswerable, 3) if unanswerable else 1.0
    figures["extract_answered"] = round(1 - false / answerable, 3) if answerable else 1.0
    return figures
