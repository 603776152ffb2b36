"""A bounded soak of the HTTP API: several clients for several minutes of mixed traffic against
a real `handbook serve`, then checks that nothing went wrong and nothing was lost.

The sample manuals are indexed into a temporary HANDBOOK_HOME (offline profile), served with
an API key, and `--clients` clients run for `--minutes`: questions (some streamed; from the
benchmark's 63), searches, uploads of small generated Markdown/text documents (some invalid on
purpose, some replacing an earlier upload), deletes of their own uploads, and lists of
documents and jobs. The server's resident memory (RSS, and of it the anonymous part: heap, not
pages of memory-mapped store files) is sampled every `--sample-s` seconds. At the end the
server is stopped and its store opened in this process.

Checks (the script exits 1 if one fails): no 5xx and no connection error; every answer the
expected one (streams end in `done`, a client's indexed uploads are listed); the heap flat after
the warm-up (median anonymous RSS of the last third within `--max-growth-mb` of the first;
before the clients start, `--prime` questions fill llama.cpp's 256 MiB prompt cache, which
would otherwise look like growth); every index job done;
the documents the API lists == the registry's rows == the documents in the vector store, chunk
counts equal, no orphan chunks, deleted documents without chunks; uploads/ holds exactly the
uploaded documents' files and no partial file; what the clients believe is stored is; a clean
server log and shutdown.

    python -m bench.api_soak [--minutes 20] [--clients 4] [--sample-s 5] [--json FILE]

Memory is judged over the second half of the run: on this 2-core machine the heap grows for
the first 10-14 minutes of load, while llama.cpp's prompt cache and the allocator's arenas fill,
and stays flat after (bench/README.md has both runs).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from app.handbook import Handbook
from bench.api_load import QUERIES, index
from bench.soak_measure import memory, report, sample_memory
from eval.retrieval import load_questions
from eval.scoring import percentile
from handbook.config import load_settings

ROOT = Path(__file__).resolve().parent.parent

KEY = "soak-key"
WORDS = [
    "Ventil", "Pumpe", "Druck", "Filter", "Lager", "Schraube", "Drehmoment", "Hydraulik", "Öl",
    "Wartung", "Sensor", "valve", "pump", "pressure", "filter", "bearing", "bolt", "torque",
    "hydraulic", "oil", "maintenance", "sensor",
]  # fmt: skip
QUESTIONS = [q.question for q in load_questions(ROOT / "eval" / "questions" / "retrieval.jsonl")]
"""63 questions about the sample manuals: many different prompts, and repeats, as with real
users."""
INVALID = [  # (file name, content, expected status)
    ("setup.exe", b"MZ\x90\x00", 415),
    ("manual.pdf", b"plain text, not a PDF", 415),
    ("empty.md", b"", 422),
    ("..", b"text", 400),
]
# Operation weights per client step.
MIX = {
    "search": 30,
    "ask": 4,
    "ask (stream)": 3,
    "upload": 12,
    "upload (invalid)": 2,
    "upload (replace)": 3,
    "delete": 8,
    "documents": 10,
    "jobs": 3,
}


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    errors: Counter[str] = field(default_factory=Counter)  # connection errors per route
    unexpected: list[str] = field(default_factory=list)

    def record(self, route: str, status: int, seconds: float, expected: int) -> bool:
        self.latencies[route].append(seconds)
        self.statuses[route][status] += 1
        if status != expected:
            self.unexpected.append(f"{route}: {status} (expected {expected})")
        return status == expected


@dataclass
class Ledger:
    """What one client believes the server holds: its uploads by name."""

    live: dict[str, str] = field(default_factory=dict)  # name -> doc id (indexed)
    pending: dict[str, str] = field(default_factory=dict)  # job id -> name
    deleted: dict[str, str] = field(default_factory=dict)  # doc id -> name
    counter: int = 0


def document(rng: random.Random, client: int, n: int) -> tuple[str, bytes]:
    suffix = rng.choice([".md", ".txt"])
    paragraphs = []
    for p in range(rng.randint(2, 12)):
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 80)))
        heading = f"## Abschnitt {p}\n\n" if suffix == ".md" else ""
        paragraphs.append(f"{heading}Soak client {client} document {n} part {p}: {words}.")
    return f"soak-c{client}-{n}{suffix}", "\n\n".join(paragraphs).encode()


async def client_loop(
    client: int,
    url: str,
    deadline: float,
    stats: Stats,
    ledger: Ledger,
    args: argparse.Namespace,
) -> None:
    rng = random.Random(args.seed * 1000 + client)
    questions = QUESTIONS + QUERIES
    ops, weights = list(args.mix), list(args.mix.values())
    think = args.think_ms / 1000
    headers = {"Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=300) as http:

        async def call(route: str, expected: int, method: str, path: str, **kw: Any) -> Any:
            started = time.perf_counter()
            try:
                response = await http.request(method, path, **kw)
            except httpx.TransportError as exc:
                stats.errors[route] += 1
                stats.unexpected.append(f"{route}: {type(exc).__name__} {exc}")
                return None
            ok = stats.record(route, response.status_code, time.perf_counter() - started, expected)
            return response.json() if ok and response.content else None

        async def ask_stream(question: str) -> None:
            started = time.perf_counter()
            kinds: list[str] = []
            try:
                body = {"question": question, "stream": True}
                async with http.stream("POST", "/v1/ask", json=body) as response:
                    async for line in response.aiter_lines():
                        if line.startswith("event: "):
                            kinds.append(line[7:])
                    status = response.status_code
            except httpx.TransportError as exc:
                stats.errors["ask (stream)"] += 1
                stats.unexpected.append(f"ask (stream): {type(exc).__name__} {exc}")
                return
            if stats.record("ask (stream)", status, time.perf_counter() - started, 200) and (
                not kinds or kinds[-1] != "done" or "error" in kinds
            ):
                stats.unexpected.append(f"ask (stream): events {kinds[-3:]}")

        async def upload(name: str, content: bytes, route: str) -> None:
            job = await call(route, 202, "POST", "/v1/documents", files={"file": (name, content)})
            if job is not None:
                ledger.pending[job["id"]] = name

        last_poll = 0.0

        async def poll_jobs() -> None:
            nonlocal last_poll
            if time.monotonic() - last_poll < 1.0:  # as a client would: once a second
                return
            last_poll = time.monotonic()
            for job_id, name in list(ledger.pending.items()):
                job = await call("job", 200, "GET", f"/v1/jobs/{job_id}")
                if job is None or job["state"] in ("queued", "running"):
                    continue
                del ledger.pending[job_id]
                if job["state"] != "done":
                    stats.unexpected.append(f"job {job_id} ({name}): {job['error']}")
                elif job["documents"]:
                    ledger.live[name] = job["documents"][0]["id"]

        while time.monotonic() < deadline:
            await poll_jobs()
            op = rng.choices(ops, weights)[0]
            question = rng.choice(questions)
            if op == "search":
                body = {"query": question, "k": rng.randint(1, 10)}
                await call(op, 200, "POST", "/v1/search", json=body)
            elif op == "ask":
                await call(op, 200, "POST", "/v1/ask", json={"question": question})
            elif op == "ask (stream)":
                await ask_stream(question)
            elif op == "upload" or (op == "upload (replace)" and not ledger.live):
                ledger.counter += 1
                name, content = document(rng, client, ledger.counter)
                await upload(name, content, "upload")
            elif op == "upload (replace)":
                name = rng.choice(sorted(ledger.live))
                _, content = document(rng, client, rng.randint(10_000, 99_999))
                await upload(name, content, op)
            elif op == "upload (invalid)":
                name, content, expected = rng.choice(INVALID)
                files = {"file": (name, content)}
                await call(op, expected, "POST", "/v1/documents", files=files)
            elif op == "delete":
                busy = set(ledger.pending.values())
                candidates = sorted(n for n in ledger.live if n not in busy)
                if candidates:
                    name = rng.choice(candidates)
                    doc = ledger.live[name]
                    if await call(op, 200, "DELETE", f"/v1/documents/{doc}") is not None:
                        del ledger.live[name]
                        ledger.deleted[doc] = name
            elif op == "documents":
                listed = await call(op, 200, "GET", "/v1/documents")
                if listed is not None:
                    ids = {d["id"] for d in listed}
                    missing = {n for n, d in ledger.live.items() if d not in ids}
                    stats.unexpected += [f"documents: {n} not listed" for n in missing]
            elif op == "jobs":
                await call(op, 200, "GET", "/v1/jobs")
            await asyncio.sleep(rng.uniform(0, 2 * think))


def serve(home: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("HANDBOOK_")}
    env.update(HANDBOOK_HOME=str(home), HANDBOOK_API_KEYS=KEY)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli", "serve", "--port", str(port)],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    process.kill()
    raise SystemExit("the server did not start:\n" + log.read_text(errors="replace")[-3000:])


async def prime(url: str, questions: list[str], stats: Stats) -> None:
    """Questions asked one after another before the clients start: llama.cpp keeps up to
    256 MiB of prompt states in RAM, and the heap's trend is judged once that cache is full."""
    headers = {"Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=300) as http:
        for question in questions:
            started = time.perf_counter()
            try:
                response = await http.post("/v1/ask", json={"question": question})
            except httpx.TransportError as exc:
                stats.errors["ask (priming)"] += 1
                stats.unexpected.append(f"ask (priming): {type(exc).__name__} {exc}")
                continue
            stats.record("ask (priming)", response.status_code, time.perf_counter() - started, 200)


async def settle(url: str, within_s: float = 300) -> list[dict[str, Any]]:
    """Wait (a bounded time) for the index queue to drain; the jobs, as the API lists them."""
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {KEY}"}, timeout=60
    ) as http:
        deadline = time.monotonic() + within_s
        while True:
            jobs: list[dict[str, Any]] = (await http.get("/v1/jobs")).json()
            busy = any(j["state"] in ("queued", "running") for j in jobs)
            if not busy or time.monotonic() > deadline:
                return jobs
            await asyncio.sleep(0.5)


async def store_state(home: Path, deleted: set[str]) -> dict[str, Any]:
    """The registry and the vector store, read after the server stopped."""
    settings = load_settings(environ={"HANDBOOK_HOME": str(home)})
    async with Handbook(settings) as hb:
        store = await hb.store()
        records = hb.registry.all()
        chunks = {r.doc_id: len(await store.chunk_ids(r.doc_id)) for r in records}
        leftovers = {d: len(await store.chunk_ids(d)) for d in deleted}
        vectors_done = {
            r.doc_id: hb.registry.stage_done(r.doc_id, "vectors", r.sha256) for r in records
        }
        return {
            "registry": {r.doc_id: r.chunks for r in records},
            "paths": {r.doc_id: r.path for r in records},
            "store": chunks,
            "store_total": await store.count(),
            "deleted_left": {d: n for d, n in leftovers.items() if n},
            "vectors_done": vectors_done,
        }


async def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    home = tmp / "home"
    print(f"indexing samples/manuals into {home} ...", file=sys.stderr)
    await index(home)
    log = tmp / "server.log"
    process, url = serve(home, log)
    stats, ledgers = Stats(), [Ledger() for _ in range(args.clients)]
    samples: list[tuple[float, ...]] = []
    load_before = os.getloadavg()
    try:
        stop = asyncio.Event()
        origin = time.monotonic()
        sampler = asyncio.create_task(
            sample_memory(process.pid, args.sample_s, origin, stop, samples)
        )
        if args.prime:
            print(f"priming: {args.prime} questions, one at a time", file=sys.stderr)
            await prime(url, QUESTIONS[: args.prime], stats)
        started = time.monotonic()
        measured_from = started - origin + args.warmup * args.minutes * 60
        deadline = started + args.minutes * 60
        print(f"soaking {url}: {args.clients} clients, {args.minutes:g} min", file=sys.stderr)
        await asyncio.gather(*(
            client_loop(c, url, deadline, stats, ledgers[c], args)
            for c in range(args.clients)
        ))  # fmt: skip
        wall = time.monotonic() - started
        jobs = await settle(url)
        for ledger in ledgers:  # jobs that finished after the clients stopped
            for job in jobs:
                name = ledger.pending.pop(job["id"], None)
                if name is not None and job["state"] == "done" and job["documents"]:
                    ledger.live[name] = job["documents"][0]["id"]
        async with httpx.AsyncClient(
            base_url=url, headers={"Authorization": f"Bearer {KEY}"}
        ) as http:
            listed = {d["id"]: d["chunks"] for d in (await http.get("/v1/documents")).json()}
        stop.set()
        await sampler
    finally:
        process.terminate()
        try:
            exit_code = process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            exit_code = -9
    load_after = os.getloadavg()
    deleted = {doc for ledger in ledgers for doc in ledger.deleted}
    state = await store_state(home, deleted)
    uploads = home / "uploads"
    files = sorted(p.name for p in uploads.iterdir()) if uploads.is_dir() else []
    believed = {name: doc for ledger in ledgers for name, doc in ledger.live.items()}
    stored = {
        Path(path).name: doc for doc, path in state["paths"].items() if Path(path).parent == uploads
    }
    text = log.read_text(errors="replace")
    mem = memory(samples, measured_from)
    fivexx = sum(n for counts in stats.statuses.values() for s, n in counts.items() if s >= 500)
    failed_jobs = [j for j in jobs if j["state"] != "done"]
    registry, store = state["registry"], state["store"]
    checks = [
        ("no 5xx", fivexx == 0, f"{fivexx} responses"),
        ("no connection errors", not stats.errors, dict(stats.errors) or "none"),
        ("every answer as expected", not stats.unexpected, stats.unexpected[:5] or "yes"),
        (
            f"heap flat after warm-up (growth <= {args.max_growth_mb:g} MB)",
            mem["anon"]["growth"] <= args.max_growth_mb,
            f"anonymous RSS {mem['anon']['first_third']:.0f} -> "
            f"{mem['anon']['last_third']:.0f} MB, slope {mem['anon']['slope']:+.2f} MB/min",
        ),
        ("every index job done", not failed_jobs, [j["error"] for j in failed_jobs][:3] or "yes"),
        ("API list == registry", listed == registry, f"{len(listed)} documents"),
        ("store chunks == registry chunks", store == registry, f"{sum(store.values())} chunks"),
        (
            "no orphan chunks",
            state["store_total"] == sum(store.values()),
            f"store holds {state['store_total']}",
        ),
        ("deleted documents left no chunks", not state["deleted_left"], f"{len(deleted)} deleted"),
        ("every document fully indexed", all(state["vectors_done"].values()), "vectors stage"),
        ("uploads/ == uploaded documents", set(files) == set(stored), f"{len(files)} files"),
        ("no partial upload files", not [f for f in files if f.startswith(".")], "none"),
        ("what clients believe is stored", believed == stored, f"{len(believed)} uploads"),
        ("server log clean", "Traceback" not in text and "internal error" not in text, "no trace"),
        (
            "server stopped cleanly",  # uvicorn re-raises SIGTERM after a graceful shutdown
            exit_code in (0, -signal.SIGTERM) and "Application shutdown complete" in text,
            f"exit {exit_code}",
        ),
    ]
    routes = {
        route: {
            "requests": sum(stats.statuses[route].values()) + stats.errors[route],
            "statuses": {str(s): n for s, n in sorted(stats.statuses[route].items())},
            "errors": stats.errors[route],
            "p50_ms": percentile(stats.latencies[route], 0.50) * 1000,
            "p95_ms": percentile(stats.latencies[route], 0.95) * 1000,
        }
        for route in sorted(set(stats.latencies) | set(stats.errors))
    }
    return {
        "minutes": args.minutes,
        "wall_s": wall,
        "clients": args.clients,
        "cpus": os.cpu_count(),
        "load_before": load_before,
        "load_after": load_after,
        "routes": routes,
        "requests": sum(r["requests"] for r in routes.values()),
        "memory": mem,
        "mix": args.mix,
        "memory_samples": [(round(t, 1), round(r, 1), round(a, 1)) for t, r, a in samples],
        "checks": [{"check": c, "ok": bool(ok), "detail": str(d)} for c, ok, d in checks],
        "ok": all(ok for _, ok, _ in checks),
    }


def mix(text: str) -> dict[str, int]:
    """`search=3,ask=1` -> weights; names as in MIX, spaces left out (`ask(stream)`)."""
    names = {name.replace(" ", ""): name for name in MIX}
    weights: dict[str, int] = {}
    for part in text.split(","):
        name, _, weight = part.partition("=")
        if name.strip() not in names:
            raise argparse.ArgumentTypeError(f"unknown operation {name!r}: {', '.join(names)}")
        weights[names[name.strip()]] = int(weight or 1)
    return weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument(
        "--minutes",
        type=float,
        default=20.0,
        help="how long the clients run; on 2 cores the heap settles only after ~10-14 min of "
        "load (llama.cpp's prompt cache and the allocator), hence 20 with --warmup 0.5",
    )
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--sample-s", type=float, default=5.0, help="memory sampling period")
    parser.add_argument("--think-ms", type=float, default=100.0, help="mean pause per client")
    parser.add_argument(
        "--warmup", type=float, default=0.5, help="share of the run before memory counts"
    )
    parser.add_argument("--max-growth-mb", type=float, default=32.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--prime",
        type=int,
        default=16,
        help="questions asked one at a time before the clients start (fills llama.cpp's "
        "prompt cache; 0: none)",
    )
    parser.add_argument(
        "--mix",
        type=mix,
        default=MIX,
        help="operation weights, e.g. search=1,ask=1 (default: "
        + ",".join(f"{k}={v}" for k, v in MIX.items()).replace(" ", "")
        + ")",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--keep", type=Path, help="copy the data folder and log here")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the server on the way out
    with tempfile.TemporaryDirectory(prefix="handbook-soak-") as tmp:
        result = asyncio.run(run(args, Path(tmp)))
        if args.keep:
            shutil.copytree(tmp, args.keep, dirs_exist_ok=True)
    report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2), encoding="utf-8")
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
