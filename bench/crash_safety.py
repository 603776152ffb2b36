"""Crash safety: `kill -9` of `handbook index --graph` at random moments, then a plain re-run
must end in exactly the state of a clean run.

The corpus is the sample manuals (PDF, HTML, Markdown, text) plus a generated DOCX. Graph
extraction is on and answered by a local server that speaks Ollama's API with deterministic
extraction rows (`bench/support/fake_ollama.py`), so two clean runs agree to the row and
any difference is the crash's.

Each trial starts from an empty data folder and kills the run with SIGKILL at a random moment:
a random 0.1-2.5 s after a point that trials take in turn (the start; the registry opened;
each further stage finished, i.e. the documents' vectors, then each document's graph), so
start-up, embedding and extraction are all hit. Every third trial kills the resumed run a
second time. A plain `handbook index CORPUS --graph` then runs to the end, and its state is
compared with the clean run's: chunk ids and vector count, registry rows and finished stages,
graph nodes and edges (with the chunks behind each), LightRAG's document status, and the
entity and relation vectors in Qdrant.

    python -m bench.crash_safety [--trials 20] [--seed 1] [--json FILE]

Exit status 1 when any trial ends in another state than the clean run's.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.support.index_runs import (
    differences,
    environment,
    extraction_server,
    make_corpus,
    run_to_end,
    stages,
    start,
    state,
)

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Trial:
    @dataclass
    class Kill:
        seconds: float  # after the start
        exit_code: int  # -9: killed; 0: it had ended already
        stages: dict[str, int]  # finished stages it left

    number: int
    documents: int
    kills: list[Kill] = field(default_factory=list)
    rerun_s: float = 0.0
    incomplete: bool = False  # the killed run's state differed from the clean run's
    differences: list[str] = field(default_factory=list)

    @property
    def phase(self) -> str:
        """Where the first kill landed, by the stages it left finished."""
        kill = self.kills[0]
        if kill.exit_code == 0:
            return "after the end"
        if not kill.stages:
            return "start-up or embedding"
        if kill.stages.get("vectors", 0) < self.documents:
            return "embedding"
        return "graph extraction"


def kill_at(corpus: Path, env: dict[str, str], after: int, delay: float) -> Trial.Kill:
    """Start an index run and SIGKILL it `delay` seconds after it has `after` stages finished
    (-1: after start, before it opened anything)."""
    home = Path(env["HANDBOOK_HOME"])
    started = time.perf_counter()
    process = start(corpus, env)
    while after >= 0 and process.poll() is None:
        if (home / "registry.sqlite").exists() and sum(stages(home).values()) >= after:
            break
        time.sleep(0.02)
    try:
        process.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait()
    return Trial.Kill(round(time.perf_counter() - started, 2), process.returncode, stages(home))


def trial(
    number: int,
    targets: list[tuple[int, float]],
    corpus: Path,
    workdir: Path,
    url: str,
    expected: dict[str, Any],
) -> Trial:
    home = workdir / f"trial-{number}"
    env = environment(home, url)
    result = Trial(number, len(expected["registry"]))
    for after, delay in targets:
        result.kills.append(kill_at(corpus, env, after, delay))
    result.incomplete = bool(differences(expected, state(env)))
    result.rerun_s = run_to_end(corpus, env)
    result.differences = differences(expected, state(env))
    shutil.rmtree(home, ignore_errors=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the trials here")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    workdir = Path(tempfile.mkdtemp(prefix="handbook-crash-"))
    try:
        with extraction_server() as url:
            corpus = make_corpus(workdir / "corpus")
            clean_home = workdir / "clean"
            clean_s = run_to_end(corpus, environment(clean_home, url))
            expected = state(environment(clean_home, url))
            twice = environment(workdir / "clean-again", url)
            run_to_end(corpus, twice)
            if drift := differences(expected, state(twice)):
                print("Two clean runs differ, the comparison would mean nothing:", drift)
                return 2
            print(
                f"clean run: {clean_s:.1f} s, {len(expected['registry'])} documents, "
                f"{expected['vector_count']} chunks, {len(expected['graph_nodes'])} nodes, "
                f"{len(expected['graph_edges'])} edges"
            )
            # Kill points spread over the whole run: at start-up (-1), while embedding (0
            # stages), and after each document's vectors and graph stage, plus a random delay.
            documents = len(expected["registry"])
            points = [-1, 0, *range(documents, 2 * documents)]
            trials = []
            for number in range(args.trials):
                kills = [(points[number % len(points)], rng.uniform(0.1, 2.5))]
                if number % 3 == 2:  # and kill the resumed run too
                    kills.append((rng.choice(points), rng.uniform(0.1, 2.5)))
                result = trial(number, kills, corpus, workdir, url, expected)
                trials.append(result)
                verdict = "same as clean" if not result.differences else "DIFFERS"
                left_behind = "incomplete" if result.incomplete else "complete"
                moments = ", ".join(f"{k.seconds:.1f}" for k in result.kills)
                left = "; ".join(
                    ", ".join(f"{n} {stage}" for stage, n in k.stages.items()) or "none"
                    for k in result.kills
                )
                print(
                    f"{number:>3}  killed at {moments:<10} s  {result.phase:<22} stages left: "
                    f"{left:<28} {left_behind:<10} re-run {result.rerun_s:5.1f} s  {verdict}"
                )
                for line in result.differences:
                    print("       ", line)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    failed = [t for t in trials if t.differences]
    phases: dict[str, int] = {}
    for t in trials:
        phases[t.phase] = phases.get(t.phase, 0) + 1
    kills = sum(1 for t in trials for k in t.kills if k.exit_code != 0)
    where = ", ".join(f"{n} in {p}" for p, n in phases.items())
    print(
        f"\n{len(trials)} trials, {kills} kills (first kill: {where}):"
        f" {len(trials) - len(failed)} ended in the clean run's state, {len(failed)} did not."
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "clean_s": clean_s,
                    "trials": [{**asdict(t), "phase": t.phase} for t in trials],
                },
                indent=1,
            )
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
