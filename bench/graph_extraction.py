"""Graph extraction cost: LLM calls and prompt tokens per chunk, Handbook's settings vs
LightRAG's defaults on the same chunks (target <= 1.0x), and the re-run of an unchanged corpus
(target: 0 LLM calls, < 2 % of the first run's time).

The extraction model is the test suite's scripted model answering in LightRAG's row format, so
the figures count what the pipeline sends, not how fast a model reads it; prompt tokens are
counted with the Llama 3 tokenizer. LightRAG's default pipeline differs from Handbook's in
`entity_extract_max_gleaning` (1: a second "what did you miss" call per chunk, with the first
answer as history) - everything else (prompts, chunks, caches) is the same code.

    python -m bench.graph_extraction                      # scripted model: calls and tokens
    python -m bench.graph_extraction --real [--corpus DIR] # the packaged model: re-run share

The re-run target compares against the first run's time, which only means something with a
real model (the scripted one answers instantly): `--real` extracts with the packaged SmolLM2
model, whose answers are useless for a graph but whose cost per call is real.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from app.handbook import Handbook
from bench.support.scripted_chat import ScriptedChat
from generation.base import CHAT_MODELS
from handbook.config import load_settings
from ingestion.graph_stage import GraphReport

ROOT = Path(__file__).resolve().parent.parent

ANSWER = (
    "entity<|#|>Hydraulic Pump<|#|>equipment<|#|>Feeds the press.\n"
    "entity<|#|>Relief Valve<|#|>equipment<|#|>Limits the pressure.\n"
    "relation<|#|>Hydraulic Pump<|#|>Relief Valve<|#|>feeds<|#|>The pump feeds the valve.\n"
    "<|COMPLETE|>"
)


async def run(home: Path, gleaning: int, corpus: Path | None, backend: str) -> GraphReport:
    settings = load_settings(
        environ={
            "HANDBOOK_HOME": str(home),
            "HANDBOOK_EXTRACTION__BACKEND": backend,
            "HANDBOOK_CHAT__BACKEND": backend,
            "HANDBOOK_GRAPH__GLEANING": str(gleaning),
        }
    )
    async with Handbook(settings) as hb:
        if corpus is not None:
            await (await hb.indexer()).index(corpus)
        return await hb.build_graph()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--real", action="store_true", help="Extract with the packaged model.")
    parser.add_argument("--corpus", type=Path, default=ROOT / "samples" / "manuals")
    args = parser.parse_args()
    CHAT_MODELS.register("scripted", ScriptedChat)
    ScriptedChat.script = ANSWER
    backend = "llamacpp" if args.real else "scripted"
    with tempfile.TemporaryDirectory() as tmp:
        ours = asyncio.run(run(Path(tmp) / "ours", 0, args.corpus, backend))
        started = time.perf_counter()
        again = asyncio.run(run(Path(tmp) / "ours", 0, None, backend))
        rerun_s = time.perf_counter() - started  # the whole command: open, check, close
        # Calls and tokens do not depend on the model: the comparison runs scripted.
        default = asyncio.run(run(Path(tmp) / "lightrag-default", 1, args.corpus, "scripted"))
        if args.real:
            ours_scripted = asyncio.run(
                run(Path(tmp) / "ours-scripted", 0, args.corpus, "scripted")
            )
        else:
            ours_scripted = ours

    chunks = ours.total.chunks
    model = "packaged SmolLM2-135M (llama.cpp)" if args.real else "scripted (instant)"
    print(f"Graph extraction over {args.corpus.name}: {chunks} chunks, {len(ours.built)} documents")
    print(f"Extraction model: {model}\n")
    print("| pipeline | LLM calls | calls/chunk | prompt tokens/chunk | time s |")
    print("|---|---|---|---|---|")
    for name, report in (("LightRAG defaults (gleaning 1)", default), ("Handbook", ours)):
        print(
            f"| {name} | {report.llm_calls} | {report.llm_calls / chunks:.2f} "
            f"| {report.prompt_tokens / chunks:.0f} | {report.seconds:.1f} |"
        )
    print(
        f"| Handbook, re-run unchanged | {again.llm_calls} | {again.llm_calls / chunks:.2f} "
        f"| {again.prompt_tokens / chunks:.0f} | {rerun_s:.2f} |"
    )
    calls_ratio = ours_scripted.llm_calls / default.llm_calls
    tokens_ratio = ours_scripted.prompt_tokens / default.prompt_tokens
    rerun_share = rerun_s / ours.seconds
    checks = [
        ("calls vs LightRAG defaults", f"{calls_ratio:.2f}x", calls_ratio <= 1.0, "<= 1.0x"),
        ("prompt tokens vs defaults", f"{tokens_ratio:.2f}x", tokens_ratio <= 1.0, "<= 1.0x"),
        ("re-run LLM calls", str(again.llm_calls), again.llm_calls == 0, "0"),
    ]
    if args.real:
        checks.append(
            ("re-run time vs first run", f"{rerun_share:.2%}", rerun_share < 0.02, "< 2%")
        )
    if not args.real:
        print(f"\nRe-run took {rerun_s:.2f} s; its share of the first run needs --real.")
    print("\n| check | measured | target | |\n|---|---|---|---|")
    for name, value, ok, target in checks:
        print(f"| {name} | {value} | {target} | {'ok' if ok else 'MISSED'} |")
    sys.exit(0 if all(ok for _, _, ok, _ in checks) else 1)


if __name__ == "__main__":
    main()
