"""The HTTP API against a real uvicorn server on loopback (`handbook serve`)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import KEY, Server, start, wait_for


@pytest.fixture(scope="module")
def server(indexed_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Keys set; a 1 MB upload limit so that the limit is cheap to test."""
    import shutil

    home = tmp_path_factory.mktemp("api") / "home"
    shutil.copytree(indexed_home, home)
    yield from start(
        home,
        home.parent / "server.log",
        HANDBOOK_API_KEYS=f"{KEY},other-key",
        HANDBOOK_API__MAX_UPLOAD_MB="1",
    )


def events(response: httpx.Response) -> Iterator[tuple[str, Any]]:
    """Server-Sent Events of a streamed response as (event, data)."""
    event = ""
    for line in response.iter_lines():
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            yield event, json.loads(line[6:])


def test_keys_guard_every_route_but_health(server: Server) -> None:
    anonymous = server.client(key=None)
    assert anonymous.get("/healthz").json() == {"status": "ok"}
    ready = anonymous.get("/readyz").json()
    assert ready["ready"] and ready["store"] == "ok" and ready["documents"] == 4
    for method, path in [("GET", "/v1/documents"), ("POST", "/v1/ask"), ("GET", "/v1/models")]:
        refused = anonymous.request(method, path)
        assert refused.status_code == 401, path
        assert refused.json()["error"] == "unauthorized"
        assert "Bearer" in refused.json()["message"]
    assert server.client(key="wrong").get("/v1/documents").status_code == 401
    in_query = anonymous.get("/v1/documents", params={"api_key": KEY, "key": KEY})
    assert in_query.status_code == 401, "keys in the query string end up in logs"
    basic = anonymous.get("/v1/documents", headers={"Authorization": f"Basic {KEY}"})
    assert basic.status_code == 401
    assert server.client(key="other-key").get("/v1/documents").status_code == 200


def test_ask_answers_with_the_fields_of_ask_json(server: Server) -> None:
    with server.client() as client:
        answer = client.post(
            "/v1/ask", json={"question": "Wie viel Drehmoment für die Radschrauben?"}
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert set(body) == {"question", "answer", "language", "found", "task", "model",
                             "model_answer", "answer_mode", "citations", "session"}  # fmt: skip
        assert body["language"] == "de" and body["found"]
        assert body["answer_mode"] == "extract" and "120 Nm" in body["answer"]
        assert any(
            c["path"].endswith("werkstatthandbuch_kompakt-3.pdf") and c["page"] in (2, 3)
            for c in body["citations"]
        )
        off_topic = client.post("/v1/ask", json={"question": "Who won the 1954 World Cup?"})
        assert off_topic.json()["found"] is False and off_topic.json()["citations"] == []


def test_ask_streams_server_sent_events(server: Server) -> None:
    question = {"question": "What is the maximum pressure of the HP-200 press?", "stream": True}
    with server.client() as client, client.stream("POST", "/v1/ask", json=question) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        seen = list(events(response))
    kinds = [kind for kind, _ in seen]
    assert kinds[0] == "sources" and kinds[-1] == "done" and "token" in kinds
    assert seen[0][1]["results"][0]["path"].endswith("hydraulic_press_hp200.md")
    done = seen[-1][1]
    streamed = "".join(data["text"] for kind, data in seen if kind == "token")
    # The offline default extracts: what is streamed is the answer, nothing is withdrawn.
    assert done["answer_mode"] == "extract" and done["answer"] == streamed
    assert "replaced" not in kinds
    assert "210 bar" in done["answer"] and done["citations"]
    # The real offline model on request: its tokens stream, and `model_answer` keeps them.
    generate = {**question, "answer_mode": "generate"}
    with server.client() as client, client.stream("POST", "/v1/ask", json=generate) as response:
        seen = list(events(response))
    streamed = "".join(data["text"] for kind, data in seen if kind == "token")
    assert seen[-1][1]["model_answer"].strip() == streamed.strip() != ""


def test_search_and_graph_mode_errors(server: Server) -> None:
    with server.client() as client:
        found = client.post("/v1/search", json={"query": "Timer TON", "k": 3, "lang": "de"})
        assert found.status_code == 200
        assert len(found.json()["results"]) == 3
        no_graph = client.post("/v1/search", json={"query": "Timer", "mode": "local"})
        assert no_graph.status_code == 409 and "graph build" in no_graph.json()["message"]
        unknown = client.post("/v1/search", json={"query": "Timer", "docs": ["nope.pdf"]})
        assert unknown.status_code == 409 and "nope.pdf" in unknown.json()["message"]
        # An answer that cannot start is the same status streamed or not: the stream's first
        # event is ready before its response starts.
        for streamed in (False, True):
            body = {"question": "Timer", "mode": "local", "stream": streamed}
            cannot = client.post("/v1/ask", json=body)
            assert cannot.status_code == 409, (streamed, cannot.text)
            assert "graph build" in cannot.json()["message"]


def test_sessions_keep_the_conversation(server: Server) -> None:
    with server.client() as client:
        created = client.post("/v1/sessions", json={"title": "Presse"})
        assert created.status_code == 201
        session = created.json()["id"]
        for question in ("What is the maximum pressure of the HP-200 press?",
                         "How often must the hydraulic oil be changed?"):  # fmt: skip
            asked = client.post("/v1/ask", json={"question": question, "session": session})
            assert asked.status_code == 200 and asked.json()["session"] == session
        history = client.get(f"/v1/sessions/{session}").json()
        assert history["session"]["turns"] == 2 and history["session"]["title"] == "Presse"
        assert history["turns"][0]["answer"]["question"].startswith("What is")
        assert session in {s["id"] for s in client.get("/v1/sessions").json()}
        assert client.delete(f"/v1/sessions/{session}").json() == {"deleted": session}
        gone = client.get(f"/v1/sessions/{session}")
        assert gone.status_code == 404 and gone.json()["error"] == "not_found"
        unknown = client.post("/v1/ask", json={"question": "Hallo?", "session": "nope"})
        assert unknown.status_code == 404


def test_upload_is_indexed_searchable_and_deletable(server: Server) -> None:
    text = "# Kühlmittel\n\nDie Kühlmittelpumpe KP-7 fördert 12 Liter pro Minute.\n"
    with server.client() as client:
        job = client.post(
            "/v1/documents", files={"file": ("../../../etc/kühlmittel.md", text.encode())}
        )
        assert job.status_code == 202, job.text
        job = wait_for(client, job.json())
        assert job["state"] == "done" and job["documents"][0]["status"] == "indexed"
        assert (server.home / "uploads" / "kühlmittel.md").is_file(), "kept inside uploads/"
        doc_id = job["documents"][0]["id"]
        assert client.get(f"/v1/documents/{doc_id}").json()["name"] == "kühlmittel.md"
        hits = client.post("/v1/search", json={"query": "Kühlmittelpumpe KP-7", "k": 1}).json()
        assert hits["results"][0]["doc"] == doc_id
        assert client.delete(f"/v1/documents/{doc_id}").status_code == 200
        assert client.get(f"/v1/documents/{doc_id}").status_code == 404
        assert not (server.home / "uploads" / "kühlmittel.md").exists()
        hits = client.post("/v1/search", json={"query": "Kühlmittelpumpe KP-7", "k": 5}).json()
        assert doc_id not in {h["doc"] for h in hits["results"]}


@pytest.mark.parametrize(
    ("name", "content", "status", "words"),
    [
        ("manual.pdf", b"just text, not a PDF", 415, "not a PDF"),
        ("setup.exe", b"MZ\x90\x00", 415, "unsupported file type"),
        ("report.docx", b"%PDF-1.7", 415, "not a Word"),
        ("notes.txt", b"\x00\x01\x02binary", 415, "not a UTF-8 text"),
        ("..", b"text", 400, "no usable name"),
        ("empty.md", b"", 422, "empty"),
        ("big.txt", b"x" * (1024 * 1024 + 1), 413, "limit"),
        ("huge.txt", b"x" * (3 * 1024 * 1024), 413, "over"),
    ],
)
def test_bad_uploads_are_refused_with_a_reason(
    server: Server, name: str, content: bytes, status: int, words: str
) -> None:
    before = sorted(p.name for p in (server.home / "uploads").glob("*")) if (
        server.home / "uploads").is_dir() else []  # fmt: skip
    with server.client() as client:
        refused = client.post("/v1/documents", files={"file": (name, content)})
        assert refused.status_code == status, refused.text
        assert words in refused.json()["message"]
        after = sorted(p.name for p in (server.home / "uploads").glob("*")) if (
            server.home / "uploads").is_dir() else []  # fmt: skip
        assert after == before, "nothing is left behind"
        assert client.get("/healthz").status_code == 200


def test_malformed_and_oversized_requests_get_json_errors(server: Server) -> None:
    with server.client() as client:
        broken = client.post(
            "/v1/ask", content=b"{bad", headers={"Content-Type": "application/json"}
        )
        assert broken.status_code == 422 and broken.json()["error"] == "invalid_request"
        assert "JSON" in broken.json()["message"]
        missing = client.post("/v1/ask", json={"questions": "typo"})
        assert missing.status_code == 422 and "question" in missing.json()["message"]
        big = client.post("/v1/ask", json={"question": "x" * 300_000})
        assert big.status_code == 413 and big.json()["error"] == "too_large"
        assert client.get("/v1/nothing").status_code == 404
        assert client.put("/v1/ask").status_code == 405
        for response in (broken, missing, big):
            assert "Traceback" not in response.text


def test_parallel_asks_are_answered_while_a_document_is_indexed(server: Server) -> None:
    lines = [
        f"Abschnitt {n}: Der Sensor S{n} misst {n % 90} Grad am Lager L{n}." for n in range(4000)
    ]
    with server.client() as client:
        job = client.post(
            "/v1/documents", files={"file": ("sensoren.md", "\n\n".join(lines).encode())}
        ).json()
        results: list[tuple[int, float, float]] = []

        def ask(question: str) -> None:
            with server.client() as own:
                started = time.time()
                response = own.post("/v1/ask", json={"question": question})
                results.append((response.status_code, started, time.time()))

        questions = [
            "What is the maximum pressure of the HP-200 press?",
            "Wie viel Drehmoment für die Radschrauben?",
            "Was ist ein TON-Timer?",
            "How often must the hydraulic oil be changed?",
        ]
        threads = [threading.Thread(target=ask, args=(q,)) for q in questions]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        job = wait_for(client, job)
    assert [status for status, _, _ in results] == [200] * 4
    assert job["state"] == "done" and job["documents"][0]["chunks"] > 100
    overlapping = [
        1 for _, start, end in results if start < job["finished"] and end > job["started"]
    ]
    assert overlapping, ("asks were served while the index job ran", results, job)
    log = server.log.read_text()
    assert "already accessed" not in log and "Traceback" not in log


def test_openai_client_gets_answers_and_sources(server: Server) -> None:
    from openai import OpenAI

    client = OpenAI(base_url=f"{server.url}/v1", api_key=KEY, timeout=300)
    assert [m.id for m in client.models.list()] == ["handbook"]
    question = [{"role": "user", "content": "What is the maximum pressure of the HP-200 press?"}]
    completion = client.chat.completions.create(model="handbook", messages=question)  # type: ignore[arg-type]
    assert "210" in (completion.choices[0].message.content or "")
    sources = (completion.model_extra or {})["sources"]
    assert sources and sources[0]["path"].endswith("hydraulic_press_hp200.md")
    stream = client.chat.completions.create(model="handbook", messages=question, stream=True)  # type: ignore[arg-type]
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "210" in text
    assert (chunks[-1].model_extra or {})["sources"][0]["page"] is None  # a Markdown file
    from openai import AuthenticationError, NotFoundError

    with pytest.raises(AuthenticationError):
        OpenAI(base_url=f"{server.url}/v1", api_key="wrong").models.list()
    with pytest.raises(NotFoundError):
        client.chat.completions.create(model="gpt-4o", messages=question)  # type: ignore[arg-type]


def test_a_client_leaving_mid_stream_loses_nothing(server: Server) -> None:
    with server.client() as client:
        session = client.post("/v1/sessions", json={}).json()["id"]
        # Generated, so that the answer is still streaming when the client hangs up.
        body = {"question": "How often must the hydraulic oil be changed?", "session": session,
                "stream": True, "answer_mode": "generate"}  # fmt: skip
        with client.stream("POST", "/v1/ask", json=body) as response:
            for kind, _ in events(response):
                if kind == "token":
                    break  # hang up after the first token
        time.sleep(1)
        assert client.get(f"/v1/sessions/{session}").json()["session"]["turns"] == 0
        again = client.post("/v1/ask", json={**body, "stream": False})
        assert again.status_code == 200
        assert client.get(f"/v1/sessions/{session}").json()["session"]["turns"] == 1
