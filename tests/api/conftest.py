"""A real `handbook serve` (uvicorn) on loopback over a copy of the indexed sample manuals."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT

KEY = "test-key-1"


@dataclass
class Server:
    url: str
    home: Path
    log: Path

    def client(self, key: str | None = KEY, timeout: float = 300) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(home: Path, log: Path, **env: str) -> Iterator[Server]:
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("HANDBOOK_")}
    environ.update({"HANDBOOK_HOME": str(home), **env})
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli", "serve", "--port", str(port)],
            env=environ,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(f"http://127.0.0.1:{port}", home, log)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not get ready:\n" + log.read_text()
            time.sleep(0.3)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def server(indexed_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server per test module, with API keys set."""
    home = tmp_path_factory.mktemp("api") / "home"
    shutil.copytree(indexed_home, home)
    yield from start(home, home.parent / "server.log", HANDBOOK_API_KEYS=f"{KEY},other-key")


def wait_for(client: httpx.Client, job: dict[str, Any], timeout: float = 300) -> dict[str, Any]:
    """Poll an index job until it is no longer queued or running."""
    deadline = time.monotonic() + timeout
    while job["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.1)
        job = client.get(f"/v1/jobs/{job['id']}").json()
    return job
