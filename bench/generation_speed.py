"""Time to first token and tokens/s per chat backend, and Handbook's overhead over the bare
backend (target: <= 5 % or <= 50 ms per answer, whichever is larger).

For each backend the same questions go through `Answerer.stream` (retrieval, prompt, residency,
grounding, streaming) with the prompt it sends recorded; then the bare backend gets exactly that
prompt. Temperature 0, so both generate the same tokens. Runs alternate (bare, Handbook) and the
median of `--rounds` is compared. The `ollama` row runs against the local server of the tests
(Ollama's HTTP API backed by llama.cpp), so it measures our client path, not Ollama itself.

    python -m bench.generation_speed [--backends llamacpp ollama adapter] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from app.handbook import Handbook
from generation.events import Done, Retrieved, Token
from handbook.config import load_settings
from handbook.types import Message

ROOT = Path(__file__).resolve().parent.parent

QUESTIONS = [
    "What is the maximum pressure of the HP-200 press?",
    "How often must the hydraulic oil of the HP-200 be changed?",
    "Was ist ein Merker in der SPS?",
]
TARGET_SHARE, TARGET_MS = 0.05, 50.0


async def timed(
    stream: AsyncIterator[Any], chars: int | None = None
) -> tuple[float, float, str, float]:
    """(time to first token, total seconds, text, retrieval seconds) of a token stream or an
    answer event stream; with `chars`, stop once that much text has come (where Handbook's
    repeat guard stopped)."""
    started = time.perf_counter()
    first: float | None = None
    retrieval = 0.0
    parts: list[str] = []
    async for item in stream:  # closed below, inside the timing
        if isinstance(item, Retrieved):
            retrieval = time.perf_counter() - started
        piece = item.text if isinstance(item, Token) else item if isinstance(item, str) else None
        if piece:
            first = first if first is not None else time.perf_counter() - started
            parts.append(piece)
        if isinstance(item, Done) or (chars is not None and sum(map(len, parts)) >= chars):
            break
    await stream.aclose()  # type: ignore[attr-defined]  # an async generator: stop generating
    total = time.perf_counter() - started
    return first if first is not None else total, total, "".join(parts), retrieval


async def bench_backend(home: Path, env: dict[str, str], rounds: int) -> dict[str, Any]:
    settings = load_settings(environ={"HANDBOOK_HOME": str(home), **env})
    async with Handbook(settings) as hb:
        answerer = await hb.answerer()
        chat = hb.chat()
        await chat.load()
        sent: list[Sequence[Message]] = []
        bare_stream = chat.stream

        def recording(messages: Sequence[Message]) -> AsyncIterator[str]:
            sent.append(messages)
            return bare_stream(messages)

        chat.stream = recording  # type: ignore[method-assign]  # records the prompt only
        await answerer.ask(QUESTIONS[0])  # warm-up: caches, first-call costs
        rows = []
        cold_ttft: list[float] = []
        for question in QUESTIONS:
            # llama.cpp keeps processed prompts in a RAM cache (as the server does for users
            # asking again). The first run processes the prompt; after it, Handbook and bare
            # runs alike find it cached, so their difference is Handbook's own work.
            sent.clear()
            cold_ttft.append((await timed(answerer.stream(question)))[0])
            if not sent:
                raise SystemExit(f"No passage matched {question!r}: the model was not asked.")
            prompt = sent[0]
            natural = (await timed(bare_stream(prompt)))[2]
            bare_runs, full_runs = [], []
            for _ in range(rounds):
                full_runs.append(await timed(answerer.stream(question)))
                # Where Handbook's repeat guard cut the answer short, the bare run stops at the
                # same text; otherwise both run to the model's own end.
                handbook_text = full_runs[-1][2]
                limit = len(handbook_text) if handbook_text != natural else None
                bare_runs.append(await timed(bare_stream(prompt), limit))
            rows.append((question, bare_runs, full_runs))
        bare_total = statistics.median(sum(r[1] for r in b) / rounds for _, b, _ in rows)
        full_total = statistics.median(sum(r[1] for r in f) / rounds for _, _, f in rows)
        ttft_bare = statistics.median(r[0] for _, b, _ in rows for r in b)
        ttft_full = statistics.median(r[0] for _, _, f in rows for r in f)
        texts = [b[0][2] for _, b, _ in rows]
        tokens = [chat.count_tokens(t) for t in texts]
        gen_seconds = [statistics.median(r[1] - r[0] for r in b) for _, b, _ in rows]
        same = all(b[0][2].strip() == f[0][2].strip() for _, b, f in rows)
        retrieval = statistics.median(r[3] for _, _, f in rows for r in f)
        return {
            "retrieval": retrieval,
            "backend": chat.name,
            "ttft_cold": statistics.median(cold_ttft),
            "load_s": chat.load_seconds,
            "ttft_bare": ttft_bare,
            "ttft_full": ttft_full,
            "tokens_s": sum(tokens) / max(sum(gen_seconds), 1e-9),
            "bare": bare_total,
            "full": full_total,
            "same_text": same,
        }


def train_adapter(models_dir: Path, output: Path) -> Path:
    from finetune.train import train
    from handbook.config import FinetuneSettings

    example = {
        "messages": [
            {"role": "user", "content": "[SPEC] What is the maximum pressure of the HP-200?"},
            {"role": "assistant", "content": "The HP-200 reaches 210 bar [1]."},
        ]
    }
    settings = FinetuneSettings(epochs=2, batch_size=1, gradient_checkpointing=False, device="cpu")
    train(settings, [example], output, models_dir)
    return output


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backends", nargs="+", default=["llamacpp", "ollama", "adapter"])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        home = Path(tmp) / "home"
        index_env = {"HANDBOOK_HOME": str(home)}

        async def index() -> None:
            async with Handbook(load_settings(environ=index_env)) as hb:
                await (await hb.indexer()).index(ROOT / "samples" / "manuals")

        asyncio.run(index())
        common = {"HANDBOOK_CHAT__TEMPERATURE": "0", "HANDBOOK_CHAT__MAX_TOKENS": "64"}
        results = []
        for backend in args.backends:
            env = {**common, "HANDBOOK_CHAT__BACKEND": backend}
            if backend == "ollama":
                from bench.support.fake_ollama import MODEL, serve

                url, _ = stack.enter_context(serve())
                env |= {"HANDBOOK_CHAT__HOST": url, "HANDBOOK_CHAT__MODEL": MODEL}
            if backend == "adapter":
                adapter = train_adapter(home / "models", Path(tmp) / "adapter")
                env |= {"HANDBOOK_CHAT__ADAPTER": str(adapter)}
            results.append(asyncio.run(bench_backend(home, env, args.rounds)))

    print(f"Generation speed: {len(QUESTIONS)} questions, median of {args.rounds} rounds")
    print(f"Target: overhead <= {TARGET_SHARE:.0%} of the bare answer or <= {TARGET_MS:.0f} ms\n")
    print(
        "| backend | load s | TTFT new prompt ms | TTFT bare ms | TTFT Handbook ms | tokens/s "
        "| answer bare s | answer Handbook s | of it retrieval | overhead beyond retrieval "
        "| target | same tokens |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    failed = False
    for r in results:
        # Calling the backend "bare" presupposes the prompt, i.e. retrieval already done; the
        # target applies to what Handbook adds beyond it. Retrieval is shown on its own.
        overhead = r["full"] - r["retrieval"] - r["bare"]
        allowed = max(TARGET_SHARE * r["bare"], TARGET_MS / 1000)
        ok = overhead <= allowed
        failed |= not ok
        load = f"{r['load_s']:.1f}" if r["load_s"] is not None else "-"
        print(
            f"| {r['backend']} | {load} | {r['ttft_cold'] * 1000:.0f} "
            f"| {r['ttft_bare'] * 1000:.0f} | {r['ttft_full'] * 1000:.0f} "
            f"| {r['tokens_s']:.1f} | {r['bare']:.2f} | {r['full']:.2f} "
            f"| {r['retrieval'] * 1000:.0f} ms "
            f"| {overhead * 1000:+.0f} ms ({overhead / r['bare']:+.1%}) "
            f"| {'ok' if ok else 'MISSED'} (<= {allowed * 1000:.0f} ms) | {r['same_text']} |"
        )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
