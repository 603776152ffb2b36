"""Uploading a file over an earlier upload of the same name, through a real `handbook serve`:
a replacement that cannot be indexed leaves the earlier file and its chunks as they were."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.conftest import KEY, Server, start, wait_for
from tests.conftest import SAMPLES

GOOD = (SAMPLES / "werkstatthandbuch_kompakt-3.pdf").read_bytes()


@pytest.fixture(scope="module")
def server(indexed_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("replace") / "home"
    shutil.copytree(indexed_home, home)
    yield from start(home, home.parent / "server.log", HANDBOOK_API_KEYS=KEY)


def upload(server: Server, name: str, content: bytes) -> dict[str, object]:
    with server.client() as client:
        job = client.post("/v1/documents", files={"file": (name, content, "application/pdf")})
        assert job.status_code == 202, job.text
        return wait_for(client, job.json())


def test_a_broken_upload_never_replaces_the_good_file(server: Server) -> None:
    stored = server.home / "uploads" / "pump.pdf"
    first = upload(server, "pump.pdf", GOOD)
    assert first["state"] == "done", first
    with server.client() as client:
        doc = client.get("/v1/documents").json()
        before = next(d for d in doc if d["name"] == "pump.pdf")

    broken = b"%PDF-1.7\n" + os.urandom(18_000)  # passes the type check, fails to read
    second = upload(server, "pump.pdf", broken)
    assert second["state"] == "failed", second
    assert "The earlier pump.pdf was kept." in str(second["error"])
    assert stored.read_bytes() == GOOD, "the good file is still the stored one"
    with server.client() as client:
        after = client.get(f"/v1/documents/{before['id']}").json()
    assert after == before and after["size"] == len(GOOD) == stored.stat().st_size
    assert sorted(p.name for p in stored.parent.iterdir()) == ["pump.pdf"], "nothing left over"

    third = upload(server, "pump.pdf", GOOD.replace(b"%PDF-", b"%PDF-", 1) + b"\n% v2\n")
    assert third["state"] == "done", third
    assert stored.read_bytes().endswith(b"% v2\n"), "a good replacement does replace it"
    assert sorted(p.name for p in stored.parent.iterdir()) == ["pump.pdf"]
