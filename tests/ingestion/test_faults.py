"""Crash safety and faults, with real `handbook index --graph` runs in subprocesses: killed runs,
an extraction server that goes away, stalls or answers garbage, a full disk and a locked store.
After each, a plain re-run must end in exactly the state of a clean run
(`bench/support/index_runs.py`).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.support.fake_ollama import FakeOllama, extraction_rows, serve
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
from tests.conftest import ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Any]]]:
    """The mixed corpus and the state a clean `index --graph` run leaves."""
    folder = tmp_path_factory.mktemp("clean")
    corpus = make_corpus(folder / "corpus")
    with extraction_server() as url:
        env = environment(folder / "home", url)
        run_to_end(corpus, env)
        yield corpus, state(env)


def test_killed_index_with_graph_resumes_to_the_clean_state(tmp_path: Path) -> None:
    """Three kill -9 trials of `python -m bench.crash_safety` (the bench runs 20): at start-up,
    while embedding, and during graph extraction with a second kill of the resumed run."""
    out = tmp_path / "trials.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench.crash_safety", "--trials", "3", "--seed", "7", "--json", out],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    trials = json.loads(out.read_text())["trials"]
    killed = [t for t in trials if t["kills"][0]["exit_code"] == -signal.SIGKILL]
    assert len(killed) >= 2, "the kills landed before the runs ended"
    assert all(t["incomplete"] for t in killed), "each kill left a state unlike the clean one"
    assert any(t["phase"] == "graph extraction" for t in trials)
    assert sum(len(t["kills"]) for t in trials) == 4
    assert all(not t["differences"] for t in trials)


def _fault_after(fake: FakeOllama, calls: int, fault: str) -> None:
    """Answer `calls` extraction requests, then fail as `fault` says."""
    answered = 0

    def respond(messages: list[dict[str, str]]) -> str:
        nonlocal answered
        answered += 1
        if answered == calls:
            if fault == "down":
                threading.Thread(target=fake.stop).start()
            else:
                fake.fault = fault
        return extraction_rows(messages)

    fake.respond = respond


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("down", "not reachable"),
        ("stall", "did not answer within 2 s"),
        ("garbage", "not Ollama's API"),
        ("error", "answered 500"),
        ("drop", "closed the connection without an answer"),
    ],
)
def test_extraction_server_fault_is_reported_and_the_rerun_completes(
    tmp_path: Path, clean: tuple[Path, dict[str, Any]], fault: str, message: str
) -> None:
    corpus, expected = clean
    with serve(stall_s=30) as (url, fake):
        fake.fault = ""
        _fault_after(fake, 12, fault)
        env = environment(tmp_path / "home", url, EXTRACTION__TIMEOUT_S="2")
        failed = subprocess.run(
            [sys.executable, "-m", "cli", "index", str(corpus), "--graph"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert failed.returncode == 1
    assert message in " ".join((failed.stderr + failed.stdout).split())  # rich wraps lines
    assert "Traceback" not in failed.stderr
    done = stages(tmp_path / "home")
    assert done["vectors"] == 5 and done.get("graph", 0) < 5, "searchable; the graph stopped"
    with extraction_server() as fresh:
        run_to_end(corpus, environment(tmp_path / "home", fresh))
        assert differences(expected, state(environment(tmp_path / "home", fresh))) == []


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 320 MB tmpfs (root only; a container may forbid mounts)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=320m", "tmpfs", str(disk)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"this machine does not allow a tmpfs: {mounted.stderr.decode().strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _fill(disk: Path, leave_mb: float) -> Path:
    filler = disk / "filler"
    free = shutil.disk_usage(disk).free - int(leave_mb * 2**20)
    subprocess.run(["fallocate", "-l", str(max(free, 0)), str(filler)], check=True)
    return filler


def test_full_disk_stops_with_a_clear_error_and_the_rerun_completes(
    small_disk: Path, clean: tuple[Path, dict[str, Any]]
) -> None:
    corpus, expected = clean
    home = small_disk / "home"
    with extraction_server() as url:
        env = environment(home, url, STORE__MIN_FREE_MB="32")
        # Below store.min_free_mb: refused before Qdrant maps a file (it would die of SIGBUS).
        filler = _fill(small_disk, 10)
        refused = subprocess.run(
            [sys.executable, "-m", "cli", "index", str(corpus)],
            env=env,
            capture_output=True,
            text=True,
        )
        assert refused.returncode == 1, refused.stderr[-2000:]
        assert "Only 10 MB are free" in refused.stderr and "store.min_free_mb" in refused.stderr
        filler.unlink()
        # The disk fills up completely while the graph is being extracted.
        process = start(corpus, env)
        deadline = time.monotonic() + 120
        while stages(home).get("vectors", 0) < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        filler = _fill(small_disk, 0)
        _, err = process.communicate(timeout=300)
        assert process.returncode == 1, err.decode()[-2000:]
        assert "disk" in err.decode() and "full" in err.decode()
        assert b"Traceback" not in err
        filler.unlink()
        run_to_end(corpus, env)
        assert differences(expected, state(env)) == []


def test_store_held_by_another_process_is_refused_and_freed_by_its_death(
    tmp_path: Path, clean: tuple[Path, dict[str, Any]]
) -> None:
    corpus, expected = clean
    with extraction_server() as url:
        env = environment(tmp_path / "home", url)
        holder = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import asyncio, sys\n"
                "from app.handbook import Handbook\n"
                "from handbook.config import load_settings\n"
                "async def hold():\n"
                "    async with Handbook(load_settings()) as hb:\n"
                "        await hb.store()\n"
                "        print('holding', flush=True)\n"
                "        await asyncio.sleep(600)\n"
                "asyncio.run(hold())\n",
            ],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
            for command in (["index", str(corpus), "--graph"], ["search", "Druck"]):
                locked = subprocess.run(
                    [sys.executable, "-m", "cli", *command],
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=120,
                )
                assert locked.returncode == 1
                assert "in use by" in locked.stderr and str(holder.pid) in locked.stderr
                assert "Traceback" not in locked.stderr
        finally:
            holder.send_signal(signal.SIGKILL)  # a lock holder that dies leaves no stale lock
            holder.wait()
        run_to_end(corpus, env)
        assert differences(expected, state(env)) == []
