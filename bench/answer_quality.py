"""Answer quality per answer mode on the development set of real manuals.

Fetches the pinned Debian manuals (eval/devset.py), indexes them once (or reuses --home), then
asks eval/questions/devset.jsonl in each answer mode, side by side in one run:
- extract: the manuals' own spans (no model);
- generate with evidence-first prompts (the selected spans) and with whole passages, through
  the configured chat model (the offline profile: SmolLM2-135M through llama.cpp).
For each: key-fact recall, unanswerable refused, false refusals, median answer length, answer
latency p50/p95 (after load), time to the first streamed piece, and prompt tokens.

    python -m bench.answer_quality [--home DIR] [--modes extract generate-spans ...]
        [--json results.json] [--split all|even|odd]

`--split` takes every question, or those with an even / odd position in the file: decide on one
half, report the other, so no threshold is tuned on the questions it is reported on.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from app.handbook import Handbook
from eval.answers import AnswerScores, evaluate_answers, gate_figures
from eval.devset import default_cache, fetch
from eval.retrieval import Question, load_questions
from handbook.config import load_settings
from handbook.provenance import git_revision
from handbook.types import AnswerMode

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = ROOT / "eval" / "questions" / "devset.jsonl"
GATE = ROOT / "eval" / "reports" / "devset.json"
MODES: dict[str, tuple[AnswerMode, str]] = {
    "extract": ("extract", "spans"),
    "generate-spans": ("generate", "spans"),
    "generate-passages": ("generate", "passages"),
}


def pick(questions: list[Question], split: str) -> list[Question]:
    if split == "all":
        return questions
    parity = 0 if split == "even" else 1
    return [q for i, q in enumerate(questions) if i % 2 == parity]


def row(name: str, scores: AnswerScores) -> dict[str, Any]:
    refused, unanswerable = scores.refused()
    false, answerable = scores.false_refusals()
    return {
        "mode": name,
        "recall": round(scores.recall(), 3),
        "refused": f"{refused}/{unanswerable}",
        "false_refusals": f"{false}/{answerable}",
        "median_chars": scores.median_chars(),
        "p50_s": round(scores.latency(0.5), 3),
        "p95_s": round(scores.latency(0.95), 3),
        "first_piece_p50_s": round(scores.first_piece(0.5), 3),
    }


async def run(home: Path, modes: list[str], questions: list[Question]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for name in modes:
        answer_mode, evidence = MODES[name]
        settings = load_settings(
            environ={"HANDBOOK_HOME": str(home), "HANDBOOK_ANSWER__EVIDENCE": evidence}
        )
        async with Handbook(settings) as hb:
            answerer = await hb.answerer()
            if answer_mode == "generate":
                await hb.chat().load()
            await answerer.ask("warm-up: what is this manual about?", answer_mode=answer_mode)
            scores = await evaluate_answers(answerer, questions, answer_mode)
        rows.append(row(name, scores))
        print(json.dumps(rows[-1]), flush=True)
        for result in scores.results:
            print(
                f"  {result.question.id} recall={result.recall:.2f} found={result.answer.found} "
                f"{result.answer.answer[:160]!r}",
                flush=True,
            )
    return rows


async def gate(home: Path, questions: list[Question]) -> dict[str, float]:
    async with Handbook(load_settings(environ={"HANDBOOK_HOME": str(home)})) as hb:
        return await gate_figures(await hb.retriever(), await hb.answerer(), questions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", type=Path, help="An index of the dev set to reuse.")
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument("--split", choices=["all", "even", "odd"], default="all")
    parser.add_argument("--json", type=Path, help="Write the table's rows here.")
    parser.add_argument(
        "--write-gate",
        action="store_true",
        help=f"Also write the figures CI holds the code to ({GATE.relative_to(ROOT)}).",
    )
    args = parser.parse_args()
    questions = pick(load_questions(QUESTIONS), args.split)
    with tempfile.TemporaryDirectory() as scratch:
        home = args.home or Path(scratch) / "home"
        if args.home is None or not (home / "registry.sqlite").exists():
            manuals = fetch(default_cache())
            started = time.perf_counter()

            async def index() -> None:
                async with Handbook(load_settings(environ={"HANDBOOK_HOME": str(home)})) as hb:
                    await (await hb.indexer()).index(manuals)

            asyncio.run(index())
            print(f"indexed the dev set in {time.perf_counter() - started:.1f} s", flush=True)
        rows = asyncio.run(run(home, args.modes, questions))
        if args.write_gate:
            figures = asyncio.run(gate(home, load_questions(QUESTIONS)))
            revision = (git_revision() or "")[:7]
            record = {"questions": str(QUESTIONS.relative_to(ROOT)), "revision": revision,
                      "figures": figures}  # fmt: skip
            GATE.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
            print(f"wrote {GATE}: {figures}")
    print(f"\n{len(questions)} questions ({args.split})\n")
    print(
        "| mode | key-fact recall | unanswerable refused | false refusals | median chars "
        "| p50 s | p95 s | first piece p50 s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['mode']} | {r['recall']:.2f} | {r['refused']} | {r['false_refusals']} | "
            f"{r['median_chars']:.0f} | {r['p50_s']:.2f} | {r['p95_s']:.2f} | "
            f"{r['first_piece_p50_s']:.2f} |"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
