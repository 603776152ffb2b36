"""Retrieval quality of the offline default on our DE/EN question set (cross-lingual included)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from app.handbook import Handbook
from eval.retrieval import RetrievalScores, evaluate, load_questions
from tests.conftest import QUESTIONS, make_settings


def scores(home: Path) -> RetrievalScores:
    async def work() -> RetrievalScores:
        async with Handbook(make_settings(home)) as hb:
            return await evaluate(await hb.retriever(), load_questions(QUESTIONS), k=5)

    return asyncio.run(work())


def test_hit_at_5_is_at_least_0_8_including_cross_lingual(indexed_home: Path) -> None:
    result = scores(indexed_home)
    questions = [r for r in result.results if r.question.answerable]
    assert len(questions) >= 40
    assert sum(r.question.cross_lingual for r in questions) >= 10
    misses = [(r.question.id, r.question.question) for r in result.misses()]
    assert result.hit_at_k() >= 0.8, misses
    assert result.hit_at_k(cross=True) >= 0.7, misses
