"""A `handbook index` killed with SIGKILL mid-run: `docs list` shows the documents it had not
finished as unfinished (table and `--json`), and the next run calls them indexed, not updated.
Before, they were listed with chunk counts as if indexed (12 listed against 4 finished)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import SAMPLES, run_cli


def counts(registry: Path) -> tuple[int, int]:
    """(documents begun, documents whose vectors are stored)."""
    try:
        with sqlite3.connect(f"file:{registry}?mode=ro", uri=True, timeout=1) as db:
            (begun,) = db.execute("SELECT COUNT(*) FROM documents").fetchone()
            (done,) = db.execute("SELECT COUNT(*) FROM stages WHERE stage = 'vectors'").fetchone()
    except sqlite3.Error:
        return 0, 0
    return int(begun), int(done)


def test_documents_of_a_killed_run_are_listed_as_unfinished(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    for copy in range(4):  # 16 documents: a run long enough to be caught half-way
        shutil.copytree(SAMPLES, corpus / f"set{copy}")
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HANDBOOK_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "cli", "index", str(corpus)],
        env={**env, "HANDBOOK_HOME": str(home)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while process.poll() is None and time.monotonic() < deadline:
        begun, done = counts(home / "registry.sqlite")
        if begun > done:  # documents recorded, not all of them stored
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    begun, done = counts(home / "registry.sqlite")
    assert begun > done, (begun, done)

    listed = json.loads(run_cli("docs", "list", "--json", home=home).stdout)["documents"]
    unfinished = {d["path"] for d in listed if not d["indexed"]}
    assert len(listed) == begun and len(unfinished) == begun - done, listed
    table = run_cli("docs", "list", home=home).stdout
    assert table.count("unfinished") >= len(unfinished), table
    assert f"{len(unfinished)} of {begun} documents are unfinished" in " ".join(table.split())

    rerun = json.loads(run_cli("index", str(corpus), "--json", home=home).stdout)["files"]
    status = {f["path"]: f["status"] for f in rerun}
    assert {status[path] for path in unfinished} == {"indexed"}, status
    assert set(status.values()) <= {"indexed", "unchanged"}, "nothing was updated"
    after = json.loads(run_cli("docs", "list", "--json", home=home).stdout)["documents"]
    assert len(after) == 16 and all(d["indexed"] for d in after)
