"""Real `handbook index --graph` runs in subprocesses, with extraction answered by a local
server that speaks Ollama's API (deterministic rows: `extraction_rows`), and the state a run
leaves behind, compared field by field with another run's. Used by the crash and fault tests
and by `bench/crash_safety.py`."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from app.handbook import Handbook
from bench.support.fake_ollama import MODEL, extraction_rows, serve
from handbook.config import load_settings

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples" / "manuals"


def make_corpus(folder: Path) -> Path:
    """The sample manuals plus a DOCX: every format Handbook reads."""
    import docx

    shutil.copytree(SAMPLES, folder)
    document = docx.Document()
    document.add_heading("Kompressor KP-40", level=1)
    document.add_paragraph("Der Kompressor KP-40 liefert 8 bar. Das Sicherheitsventil SV-3 öffnet")
    document.add_paragraph("bei 10 bar. Den Ölstand am Schauglas täglich prüfen.")
    document.add_heading("Wartung", level=2)
    for step in ("Netzstecker ziehen.", "Kondensat am Ablassventil AV-1 ablassen.", "Filter F-2"):
        document.add_paragraph(step, style="List Number")
    document.save(str(folder / "kompressor_kp40.docx"))
    return folder


def environment(home: Path, url: str, **settings: str) -> dict[str, str]:
    """The environment of a run: data folder, extraction by the server at `url`, and more
    settings as HANDBOOK_* variables (`STORE__MIN_FREE_MB="32"`)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HANDBOOK_")}
    return {
        **env,
        "HANDBOOK_HOME": str(home),
        "HANDBOOK_EXTRACTION__BACKEND": "ollama",
        "HANDBOOK_EXTRACTION__MODEL": MODEL,
        "HANDBOOK_EXTRACTION__HOST": url,
        **{f"HANDBOOK_{key.upper()}": value for key, value in settings.items()},
    }


def start(corpus: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "cli", "index", str(corpus), "--graph", "--json"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def run_to_end(corpus: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    process = start(corpus, env)
    _, err = process.communicate(timeout=600)
    if process.returncode != 0:
        raise RuntimeError(f"index failed ({process.returncode}): {err.decode()[-2000:]}")
    return time.perf_counter() - started


def stages(home: Path) -> dict[str, int]:
    """Finished stages in the registry, read as another process would (what a kill left)."""
    path = home / "registry.sqlite"
    if not path.exists():
        return {}
    try:
        with sqlite3.connect(path, timeout=5) as db:
            rows = db.execute("SELECT stage, count(*) FROM stages GROUP BY stage").fetchall()
    except sqlite3.OperationalError:  # created, its tables not yet
        return {}
    return dict(rows)


def state(env: dict[str, str]) -> dict[str, Any]:
    """Everything a run leaves behind that must equal a clean run's, as comparable values.

    Read in a process of its own, as the next run would: LightRAG keeps a data folder's
    storages in process-wide memory, so a second look from one process would see the first.
    """
    reader = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json, bench.support.index_runs as r; print(json.dumps(r.read()))",
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if reader.returncode != 0:
        raise RuntimeError(f"reading the state failed: {reader.stderr[-2000:]}")
    return dict(json.loads(reader.stdout.splitlines()[-1]))


def read() -> dict[str, Any]:
    """The state of the data folder that this process's HANDBOOK_* variables name."""
    settings = load_settings()

    async def read_async() -> dict[str, Any]:
        async with Handbook(settings) as hb:
            store = await hb.store()
            records = hb.registry.all()
            chunks: set[str] = set()
            for record in records:
                chunks |= await store.chunk_ids(record.doc_id)
            rows = [
                (r.doc_id, r.path, r.title, r.format, r.language, r.sha256, r.size, r.chunks)
                for r in records
            ]
            finished = sorted(
                (r.doc_id, stage)
                for r in records
                for stage in ("vectors", "graph")
                if hb.registry.stage_done(r.doc_id, stage, r.sha256)
            )
            graph = await hb.graph()
            rag = graph._rag  # LightRAG's own storages: what the graph really holds
            nx_graph = rag.chunk_entity_relation_graph
            nodes = {
                str(n["entity_id"]): sorted(str(n.get("source_id", "")).split("<SEP>"))
                for n in await nx_graph.get_all_nodes()
            }
            edges = {
                "|".join(sorted((str(e["source"]), str(e["target"])))): sorted(
                    str(e.get("source_id", "")).split("<SEP>")
                )
                for e in await nx_graph.get_all_edges()
            }
            status = {
                r.doc_id: str(((await rag.doc_status.get_by_id(r.doc_id)) or {}).get("status"))
                for r in records
            }
            probe = await hb.embedder().embed_query("Ventil")
            vectors = {}
            for name in ("graph_entities", "graph_relationships"):
                collection = await store.collection(name, hb.embedder().dim)
                hits = await collection.search(probe, 100_000, -1.0)
                vectors[name] = sorted(key for key, _, _ in hits)
            return {
                "chunk_ids": sorted(chunks),
                "vector_count": await store.count(),
                "registry": rows,
                "stages": finished,
                "graph_nodes": nodes,
                "graph_edges": edges,
                "doc_status": status,
                "graph_vectors": vectors,
            }

    return asyncio.run(read_async())


def differences(expected: dict[str, Any], got: dict[str, Any]) -> list[str]:
    out = []
    for key, want in expected.items():
        have = got.get(key)
        if have == want:
            continue
        if isinstance(want, dict) and isinstance(have, dict):
            missing, extra = sorted(set(want) - set(have)), sorted(set(have) - set(want))
            changed = sorted(k for k in set(want) & set(have) if want[k] != have[k])
            example = "".join(f" ({k}: {want[k]!r} -> {have[k]!r})" for k in changed[:1])
            out.append(
                f"{key}: missing {missing[:3]}, extra {extra[:3]}, changed {changed[:3]}{example}"
            )
        elif isinstance(want, list) and isinstance(have, list):
            out.append(f"{key}: {len(want)} expected, {len(have)} found")
        else:
            out.append(f"{key}: expected {want!r}, found {have!r}")
    return out


@contextmanager
def extraction_server() -> Iterator[str]:
    with serve(respond=extraction_rows) as (url, _):
        yield url
