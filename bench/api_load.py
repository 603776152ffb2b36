"""HTTP API under load (offline profile): concurrent clients on `/v1/search` and `/v1/ask`,
throughput and latency percentiles, against the same work done in process (the API's overhead).

The sample manuals are indexed into a temporary folder and copied twice: one copy is served by
a real `handbook serve` (uvicorn) on loopback, the other is queried in process through the
same services (`Retriever.search`, `Answerer.ask`). Same queries, same concurrency.

    python -m bench.api_load [--clients 1 4 8] [--searches 200] [--asks 12]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from app.handbook import Handbook
from eval.scoring import percentile
from handbook.config import load_settings

ROOT = Path(__file__).resolve().parent.parent

QUERIES = [
    "Wie viel Drehmoment für die Radschrauben?",
    "What is the maximum pressure of the HP-200 press?",
    "Was ist ein TON-Timer?",
    "How often must the hydraulic oil be changed?",
    "Merker in der SPS",
    "analog input scaling",
]


def settings(home: Path):  # type: ignore[no-untyped-def]
    return load_settings(environ={"HANDBOOK_HOME": str(home)})


async def index(home: Path) -> None:
    async with Handbook(settings(home)) as hb:
        await (await hb.indexer()).index(ROOT / "samples" / "manuals")


async def run_load(
    call: Callable[[int], Awaitable[None]], total: int, clients: int
) -> dict[str, float]:
    """`total` calls spread over `clients` concurrent workers: throughput and percentiles."""
    latencies: list[float] = []
    counter = iter(range(total))

    async def worker() -> None:
        for n in counter:
            started = time.perf_counter()
            await call(n)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    wall = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "rps": total / wall,
        "p50": statistics.median(ordered) * 1000,
        "p95": percentile(ordered, 0.95) * 1000,
    }


def serve(home: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("HANDBOOK_")}
    env["HANDBOOK_HOME"] = str(home)
    process = subprocess.Popen(
        [sys.executable, "-m", "cli", "serve", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.3)
    process.kill()
    raise SystemExit("the server did not start")


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "indexed"
        await index(base)
        served, local = Path(tmp) / "served", Path(tmp) / "local"
        shutil.copytree(base, served)
        shutil.copytree(base, local)
        process, url = serve(served)
        rows: list[tuple[str, int, dict[str, float], dict[str, float]]] = []
        try:
            async with (
                Handbook(settings(local)) as hb,
                httpx.AsyncClient(
                    base_url=url, timeout=600, limits=httpx.Limits(max_connections=64)
                ) as client,
            ):
                retriever = await hb.retriever()
                answerer = await hb.answerer()

                async def search_local(n: int) -> None:
                    await retriever.search(QUERIES[n % len(QUERIES)])

                async def search_api(n: int) -> None:
                    response = await client.post(
                        "/v1/search", json={"query": QUERIES[n % len(QUERIES)]}
                    )
                    response.raise_for_status()

                async def ask_local(n: int) -> None:
                    await answerer.ask(QUERIES[n % len(QUERIES)])

                async def ask_api(n: int) -> None:
                    response = await client.post(
                        "/v1/ask", json={"question": QUERIES[n % len(QUERIES)]}
                    )
                    response.raise_for_status()

                await run_load(search_local, 12, 1)  # warm both paths
                await run_load(search_api, 12, 1)
                await run_load(ask_local, len(QUERIES), 1)
                await run_load(ask_api, len(QUERIES), 1)
                for clients in args.clients:
                    local_r = await run_load(search_local, args.searches, clients)
                    api_r = await run_load(search_api, args.searches, clients)
                    rows.append(("search", clients, local_r, api_r))
                for clients in args.clients:
                    local_r = await run_load(ask_local, args.asks, clients)
                    api_r = await run_load(ask_api, args.asks, clients)
                    rows.append(("ask", clients, local_r, api_r))
        finally:
            process.terminate()
            process.wait(timeout=30)
    print(f"API load, offline profile, {os.cpu_count()} CPUs; in process vs HTTP on loopback\n")
    print("| route | clients | in process req/s | p50 ms | p95 ms | API req/s | p50 ms | p95 ms "
          "| API overhead p50 |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for route, clients, lo, ap in rows:
        print(
            f"| {route} | {clients} | {lo['rps']:.1f} | {lo['p50']:.1f} | {lo['p95']:.1f} "
            f"| {ap['rps']:.1f} | {ap['p50']:.1f} | {ap['p95']:.1f} | "
            f"{ap['p50'] - lo['p50']:+.1f} ms |"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--searches", type=int, default=200)
    parser.add_argument("--asks", type=int, default=12)
    asyncio.run(main(parser.parse_args()))
