"""`handbook --help` cold start vs a bare Python start, in the same run (target < 0.5 s).

python -m bench.cli_startup [--runs 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from eval.scoring import percentile

COMMANDS = {
    "python -c pass (baseline)": [sys.executable, "-c", "pass"],
    "handbook --help": [sys.executable, "-m", "cli", "--help"],
    "handbook config show": [sys.executable, "-m", "cli", "config", "show"],
}
TARGET_S = 0.5


def time_command(argv: list[str], runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        samples.append(time.perf_counter() - started)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    print("| command | median s | p95 s | over baseline s | target |")
    print("|---|---|---|---|---|")
    baseline = None
    for name, argv in COMMANDS.items():
        samples = sorted(time_command(argv, args.runs))
        median = statistics.median(samples)
        p95 = percentile(samples, 0.95)
        baseline = median if baseline is None else baseline
        verdict = "" if "baseline" in name else ("ok" if median < TARGET_S else "MISSED")
        print(f"| {name} | {median:.3f} | {p95:.3f} | {median - baseline:+.3f} | {verdict} |")


if __name__ == "__main__":
    main()
