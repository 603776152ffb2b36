"""`bench/api_soak.py`, shortened: two clients for 45 s against a real server, so that the soak
script cannot rot. The 10-minute run and its figures are in bench/README.md."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "api_soak.py"


def test_a_short_soak_passes_every_check(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--minutes", "0.75", "--clients", "2", "--sample-s", "1",
         "--json", str(out),
         # 45 s are all warm-up (llama.cpp's prompt cache alone may take 256 MiB): memory is
         # judged by the 10-minute run, not here.
         "--prime", "0", "--max-growth-mb", "512"],
        capture_output=True,
        text=True,
        timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-3000:]
    soak = json.loads(out.read_text("utf-8"))
    failed = [c for c in soak["checks"] if not c["ok"]]
    assert soak["ok"] and not failed and len(soak["checks"]) >= 15, failed
    routes = soak["routes"]
    assert {"search", "ask", "upload", "documents"} <= set(routes), routes
    assert all(not r["errors"] for r in routes.values())
    assert not [s for r in routes.values() for s in r["statuses"] if s.startswith("5")]
    assert routes["search"]["statuses"] == {"200": routes["search"]["requests"]}
    assert soak["memory"]["samples"] >= 20, "memory was sampled while the clients ran"
    assert 0 < soak["memory"]["anon"]["end"] <= soak["memory"]["rss"]["end"]
    assert "| check | result | detail |" in result.stdout
