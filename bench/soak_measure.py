"""The soak's measures (bench/api_soak.py): the server's memory over the run and its trend,
and the report's tables (percentiles: `eval.scoring.percentile`)."""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from pathlib import Path
from typing import Any

import psutil


def resident(pid: int) -> tuple[float, float]:
    """The process's resident memory and, of it, the anonymous part (heap: what a leak grows),
    in MB. The rest is file-backed: pages of the store's memory-mapped files, which grow with
    the data written and which the kernel can reclaim."""
    status = Path(f"/proc/{pid}/status")
    if status.exists():
        fields = dict(line.split(":", 1) for line in status.read_text().splitlines())
        kb = {k: int(fields[k].split()[0]) for k in ("VmRSS", "RssAnon")}
        return kb["VmRSS"] / 1024, kb["RssAnon"] / 1024
    rss = psutil.Process(pid).memory_info().rss / 2**20  # elsewhere: no split
    return rss, rss


async def sample_memory(
    pid: int, every: float, origin: float, stop: asyncio.Event, out: list[tuple[float, ...]]
) -> None:
    while not stop.is_set():
        out.append((time.monotonic() - origin, *resident(pid)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)


def trend(samples: list[tuple[float, float]]) -> dict[str, float]:
    """Median of the first and the last third, and a least-squares slope per minute."""
    third = max(1, len(samples) // 3)
    first = statistics.median(v for _, v in samples[:third])
    last = statistics.median(v for _, v in samples[-third:])
    slope = 0.0
    if len(samples) >= 2 and samples[-1][0] > samples[0][0]:
        slope = statistics.linear_regression([t for t, _ in samples], [v for _, v in samples]).slope
    return {"first_third": first, "last_third": last, "growth": last - first, "slope": slope * 60}


def memory(samples: list[tuple[float, ...]], warmup_s: float) -> dict[str, Any]:
    """RSS and its anonymous part over the run, and their trend after the warm-up."""
    kept = [s for s in samples if s[0] >= warmup_s] or samples
    return {
        "rss": {
            "start": samples[0][1],
            "end": samples[-1][1],
            "max": max(s[1] for s in samples),
            **trend([(t, rss) for t, rss, _ in kept]),
        },
        "anon": {
            "start": samples[0][2],
            "end": samples[-1][2],
            "max": max(s[2] for s in samples),
            **trend([(t, anon) for t, _, anon in kept]),
        },
        "warmup_s": warmup_s,
        "samples": len(samples),
    }


def report(result: dict[str, Any]) -> None:
    mem = result["memory"]
    print(
        f"API soak: {result['clients']} clients, {result['wall_s'] / 60:.1f} min, "
        f"{result['requests']} requests, {result['cpus']} CPUs, load average "
        f"{result['load_before'][0]:.1f} before / {result['load_after'][0]:.1f} after\n"
    )
    print("| route | requests | statuses | errors | p50 ms | p95 ms |")
    print("|---|---|---|---|---|---|")
    for route, r in result["routes"].items():
        statuses = ", ".join(f"{s}: {n}" for s, n in r["statuses"].items())
        print(
            f"| {route} | {r['requests']} | {statuses} | {r['errors']} "
            f"| {r['p50_ms']:.0f} | {r['p95_ms']:.0f} |"
        )
    print(
        f"\nServer memory ({mem['samples']} samples; trend from {mem['warmup_s']:.0f} s on, after "
        "priming and warm-up: median of the first and the last third, least-squares slope):\n"
    )
    print("| memory | start MB | end MB | max MB | first third MB | last third MB | slope MB/min |")
    print("|---|---|---|---|---|---|---|")
    for name, label in (("rss", "RSS"), ("anon", "of it anonymous (heap)")):
        m = mem[name]
        print(
            f"| {label} | {m['start']:.0f} | {m['end']:.0f} | {m['max']:.0f} "
            f"| {m['first_third']:.0f} | {m['last_third']:.0f} | {m['slope']:+.2f} |"
        )
    print()
    print("| check | result | detail |")
    print("|---|---|---|")
    for check in result["checks"]:
        print(f"| {check['check']} | {'ok' if check['ok'] else '**FAIL**'} | {check['detail']} |")
