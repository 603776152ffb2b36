"""Limits the README promises, against a real `handbook serve`: the answer slots (503 with
Retry-After once the queue wait is over), CORS only for `api.cors_origins`, and the cap on open
connections (`api.max_connections`)."""

from __future__ import annotations

import shutil
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import KEY, Server, start

ALLOWED = "http://allowed.example"
SLOW = "What is the maximum pressure of the HP-200 press?"  # found: the model answers
MAX_CONNECTIONS = 7  # the slot test holds one and sends five at once


@pytest.fixture(scope="module")
def server(indexed_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("limits") / "home"
    shutil.copytree(indexed_home, home)
    yield from start(
        home,
        home.parent / "server.log",
        HANDBOOK_API_KEYS=KEY,
        HANDBOOK_API__MAX_CONCURRENT_ANSWERS="1",
        HANDBOOK_API__QUEUE_TIMEOUT_S="0.5",
        HANDBOOK_API__CORS_ORIGINS=ALLOWED,
        HANDBOOK_API__MAX_CONNECTIONS=str(MAX_CONNECTIONS),
        HANDBOOK_CHAT__MAX_TOKENS="64",
        # Whole passages as evidence: the model reads a long prompt, so the first answer holds
        # its slot for seconds, well past the other requests' 0.5 s of queue.
        HANDBOOK_ANSWER__EVIDENCE="passages",
    )


def test_a_busy_answer_slot_gives_503_with_retry_after(server: Server) -> None:
    """One slot, 0.5 s of queue: a second question while the first is answered waits that
    long, then gets 503 with Retry-After, on every answering route, streamed or not (a stream
    is refused with the status, before it starts); the first is answered; the slot is free
    afterwards."""
    first: dict[str, httpx.Response] = {}
    streaming = threading.Event()

    def ask_slowly() -> None:
        with (
            server.client() as client,
            client.stream(
                "POST",
                "/v1/ask",
                # Generated, so the slot is held while the model writes (extracting is instant).
                json={"question": SLOW, "stream": True, "answer_mode": "generate"},
            ) as response,
        ):
            for line in response.iter_lines():
                if line.startswith("event: sources"):
                    streaming.set()  # the slot is held from here until `done`
            first["response"] = response

    thread = threading.Thread(target=ask_slowly)
    thread.start()
    try:
        assert streaming.wait(120), "the first answer started"
        chat = {"model": "handbook", "messages": [{"role": "user", "content": SLOW}]}
        requests: list[tuple[str, dict[str, Any]]] = [
            ("/v1/ask", {"question": SLOW}),
            ("/v1/ask", {"question": SLOW, "stream": True}),
            ("/v1/chat/completions", chat),
            ("/v1/chat/completions", {**chat, "stream": True}),
            ("/api/chat", chat),  # Ollama's: streamed by default
        ]
        with server.client() as client, ThreadPoolExecutor(len(requests)) as pool:
            # All at once, so all wait within the first answer's time.
            asked = [pool.submit(client.post, path, json=body) for path, body in requests]
            refused = [future.result() for future in asked]
    finally:
        thread.join(300)
    for (path, body), response in zip(requests, refused, strict=True):
        where = (path, body.get("stream"), response.text)
        assert response.status_code == 503 and response.headers["retry-after"] == "5", where
        problem = response.json()
        if path.startswith("/api/"):  # Ollama's error shape
            assert "max_concurrent_answers" in problem["error"], where
        else:
            assert problem["error"] == "unavailable", where
            assert "max_concurrent_answers" in problem["message"], where
    assert first["response"].status_code == 200
    with server.client() as client:
        again = client.post("/v1/ask", json={"question": "Who won the 1954 World Cup?"})
        assert again.status_code == 200, "the slot was given back"
        for _ in range(2):  # a streamed Ollama answer gives its slot back when it ends
            streamed_again = client.post("/api/chat", json=chat)
            assert streamed_again.status_code == 200, streamed_again.text
            assert '"done": true' in streamed_again.text.splitlines()[-1]


def test_cors_answers_only_the_configured_origins(server: Server) -> None:
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization",
    }
    allowed = httpx.options(
        f"{server.url}/v1/ask", headers={"Origin": ALLOWED, **preflight}, timeout=10
    )
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ALLOWED
    other = httpx.options(
        f"{server.url}/v1/ask", headers={"Origin": "http://evil.example", **preflight}, timeout=10
    )
    assert "access-control-allow-origin" not in other.headers
    with server.client() as client:
        simple = client.get("/v1/documents", headers={"Origin": "http://evil.example"})
        assert simple.status_code == 200 and "access-control-allow-origin" not in simple.headers
        mine = client.get("/v1/documents", headers={"Origin": ALLOWED})
        assert mine.headers["access-control-allow-origin"] == ALLOWED


def test_cors_is_off_without_origins(tmp_path: Path, indexed_home: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(indexed_home, home)
    for plain in start(home, tmp_path / "server.log"):
        answer = httpx.options(
            f"{plain.url}/v1/documents",
            headers={"Origin": ALLOWED, "Access-Control-Request-Method": "GET"},
            timeout=10,
        )
        assert "access-control-allow-origin" not in answer.headers
        got = httpx.get(f"{plain.url}/v1/documents", headers={"Origin": ALLOWED}, timeout=10)
        assert got.status_code == 200 and "access-control-allow-origin" not in got.headers


def test_connections_over_max_connections_get_503(server: Server) -> None:
    """Open connections (idle, within the head deadline) fill api.max_connections: the next
    request is refused at once; once they close, requests are served again."""
    host, port = server.url.removeprefix("http://").split(":")
    held = [socket.create_connection((host, int(port)), timeout=10) for _ in range(MAX_CONNECTIONS)]
    try:
        refused = httpx.get(f"{server.url}/healthz", timeout=10)
        assert refused.status_code == 503, refused.text
    finally:
        for sock in held:
            sock.close()
    for _ in range(50):  # the server notices the closed sockets
        if httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200:
            break
    else:
        pytest.fail("requests were not served again after the connections closed")
