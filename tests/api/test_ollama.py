"""The Ollama-compatible routes with the real `ollama` Python client against a real
`handbook serve` (the `server` fixture of tests/api/conftest.py)."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

import httpx
import ollama
import pytest
from fastapi import HTTPException

from api import schemas
from api.conversation import conversation
from tests.api.conftest import KEY, Server

PRESSURE = "What is the maximum pressure of the HP-200 press?"
TORQUE = "Wie viel Drehmoment für die Radschrauben?"
OFF_TOPIC = "Who won the 1954 World Cup?"


def client(server: Server, key: str | None = KEY) -> ollama.Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return ollama.Client(host=server.url, headers=headers, timeout=300)


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def titles(server: Server) -> dict[str, str]:
    """File name -> title of the indexed documents, as Handbook's own API lists them."""
    with server.client() as c:
        return {d["name"]: d["title"] for d in c.get("/v1/documents").json()}


def test_conversation_is_the_last_user_message_and_the_pairs_before_it() -> None:
    messages = [
        schemas.ChatMessage(role="system", content="You are a pirate."),
        schemas.ChatMessage(role="user", content="First?"),
        schemas.ChatMessage(role="assistant", content="One.", thinking="hm"),  # Ollama's fields
        schemas.ChatMessage(role="user", content="Orphan question?"),
        schemas.ChatMessage(role="user", content="Second?", images=[]),
        schemas.ChatMessage(role="assistant", content="Two."),
        schemas.ChatMessage(role="user", content="  Third?  "),
    ]
    asked, history = conversation(messages)
    assert asked == "Third?"
    assert [(t.question, t.answer) for t in history.turns] == [
        ("First?", "One."),
        ("Second?", "Two."),
    ]
    for bad in ([], messages[:-1], [schemas.ChatMessage(role="user", content="x" * 4001)]):
        with pytest.raises(HTTPException) as refused:
            conversation(bad)
        assert refused.value.status_code == 422


def test_chat_gives_a_cited_answer(server: Server) -> None:
    title = titles(server)["hydraulic_press_hp200.md"]
    messages = [{"role": "system", "content": "Answer in French."}, user(PRESSURE)]
    reply = client(server).chat(model="handbook:latest", messages=messages)
    assert reply.done and reply.done_reason == "stop" and reply.model == "handbook:latest"
    assert reply.message.role == "assistant"
    content = reply.message.content or ""
    answer, _, sources_line = content.rpartition("\n\n")
    assert "210 bar" in answer
    assert sources_line.startswith("Sources: [1] ") and title in sources_line
    assert datetime.fromisoformat(reply.created_at or "").tzinfo is not None
    assert (reply.total_duration or 0) > 0 and (reply.eval_count or 0) >= 1
    with server.client() as c:  # the extra field the ollama client drops
        raw = c.post("/api/chat", json={"model": "handbook", "messages": [user(PRESSURE)],
                                        "stream": False}).json()  # fmt: skip
    assert raw["message"]["content"] == content
    assert raw["sources"][0]["path"].endswith("hydraulic_press_hp200.md")
    assert f"[{raw['sources'][0]['n']}] {raw['sources'][0]['title']}" in sources_line


def test_chat_streams_ndjson_by_default(server: Server) -> None:
    whole = client(server).chat(model="handbook", messages=[user(PRESSURE)]).message.content
    chunks = list(client(server).chat(model="handbook", messages=[user(PRESSURE)], stream=True))
    assert len(chunks) >= 2
    assert [c.done for c in chunks] == [False] * (len(chunks) - 1) + [True]
    assert chunks[-1].done_reason == "stop"
    assert "".join(c.message.content or "" for c in chunks) == whole
    assert (chunks[-1].message.content or "").startswith("\n\nSources: [1] ")
    body = {"model": "handbook", "messages": [user(PRESSURE)]}  # no "stream": Ollama's default
    with server.client() as c, c.stream("POST", "/api/chat", json=body) as response:
        assert response.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(line) for line in response.iter_lines() if line]
    assert len(lines) == len(chunks) and lines[-1]["done"] is True
    assert lines[-1]["sources"][0]["path"].endswith("hydraulic_press_hp200.md")
    assert all("sources" not in line for line in lines[:-1])


def test_a_follow_up_with_history_answers_the_last_question(server: Server) -> None:
    ollama_client = client(server)
    first = ollama_client.chat(model="handbook", messages=[user(PRESSURE)]).message
    history: list[Any] = [user(PRESSURE), first, user(TORQUE)]
    follow_up = ollama_client.chat(model="handbook", messages=history).message.content or ""
    answer, _, sources_line = follow_up.rpartition("\n\n")
    assert "120 Nm" in answer and "210 bar" not in answer
    assert sources_line.startswith("Quellen: [1] ")  # in the question's language
    title = titles(server)["werkstatthandbuch_kompakt-3.pdf"]
    assert re.search(re.escape(title) + r", S\. [23]\b", sources_line), sources_line
    with pytest.raises(ollama.ResponseError) as refused:
        ollama_client.chat(model="handbook", messages=history[:2])  # ends with the assistant
    assert refused.value.status_code == 422 and "user message" in refused.value.error


def test_an_answer_not_in_the_manuals_has_no_sources_line(server: Server) -> None:
    reply = client(server).chat(model="handbook", messages=[user(OFF_TOPIC)], stream=False)
    content = reply.message.content or ""
    assert reply.done and content.strip() and "Sources:" not in content
    with server.client() as c:
        raw = c.post("/api/chat", json={"model": "handbook", "messages": [user(OFF_TOPIC)],
                                        "stream": False}).json()  # fmt: skip
    assert raw["sources"] == [] and raw["message"]["content"] == content


def test_generate_answers_the_prompt(server: Server) -> None:
    ollama_client = client(server)
    whole = ollama_client.generate(model="handbook", prompt=TORQUE)
    assert whole.done and whole.done_reason == "stop"
    assert "120 Nm" in (whole.response or "") and "\n\nQuellen: [1] " in (whole.response or "")
    parts = list(ollama_client.generate(model="handbook:latest", prompt=TORQUE, stream=True))
    assert parts[-1].done and not any(p.done for p in parts[:-1])
    assert "".join(p.response or "" for p in parts) == whole.response
    loaded = ollama_client.generate(model="handbook", prompt="")  # how clients preload
    assert loaded.done and loaded.done_reason == "load" and loaded.response == ""
    with pytest.raises(ollama.ResponseError) as refused:
        ollama_client.generate(model="handbook", prompt="x" * 5000)
    assert refused.value.status_code == 422 and "4000 characters" in refused.value.error

    # Ollama's documentation asks with `curl URL -d '{...}'`, which labels the JSON as a form.
    with server.client() as c:
        body = json.dumps({"model": "handbook", "prompt": TORQUE, "stream": False})
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        curl = c.post("/api/generate", content=body.encode(), headers=form)
    assert curl.status_code == 200, curl.text
    assert curl.json()["response"] == whole.response


def test_list_show_and_version_describe_handbook(server: Server) -> None:
    ollama_client = client(server)
    with server.client() as c:
        card = c.get("/v1/models").json()["data"][0]
        version = c.get("/openapi.json").json()["info"]["version"]
        ollama_version = c.get("/api/version")
    assert [m.model for m in ollama_client.list().models] == ["handbook:latest"]
    shown = ollama_client.show("handbook")
    assert shown.details is not None and shown.details.family == "handbook"
    assert shown.modelinfo is not None
    assert shown.modelinfo["handbook.chat_model"] == card["chat_model"]
    assert shown.modelinfo["handbook.version"] == version
    assert ollama_version.status_code == 200
    assert re.fullmatch(r"\d+\.\d+\.\d+", ollama_version.json()["version"])
    assert ollama_version.json()["handbook"] == version


def test_errors_come_in_ollamas_shape(server: Server) -> None:
    with pytest.raises(ollama.ResponseError) as unknown:
        client(server).chat(model="llama3.2", messages=[user(PRESSURE)])
    assert unknown.value.status_code == 404 and unknown.value.error == "model 'llama3.2' not found"
    with pytest.raises(ollama.ResponseError) as streamed:
        list(client(server).chat(model="llama3.2", messages=[user(PRESSURE)], stream=True))
    assert streamed.value.status_code == 404
    with pytest.raises(ollama.ResponseError) as not_shown:
        client(server).show("llama3.2")
    assert not_shown.value.status_code == 404
    for key in ("wrong-key", None):
        with pytest.raises(ollama.ResponseError) as refused:
            client(server, key).list()
        assert refused.value.status_code == 401 and "Bearer" in refused.value.error
    with server.client() as c:
        broken = c.post("/api/chat", content=b"{bad", headers={"Content-Type": "application/json"})
    assert broken.status_code == 422 and set(broken.json()) == {"error"}
    assert "JSON" in broken.json()["error"]


def test_root_answers_ollamas_heartbeat_and_stays_the_web_page(server: Server) -> None:
    head = httpx.head(f"{server.url}/", timeout=10)  # `ollama` CLI's check, no key
    assert head.status_code == 200
    page = httpx.get(f"{server.url}/", timeout=10)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    empty = client(server).chat(model="handbook", messages=[])  # how clients preload
    assert empty.done and empty.done_reason == "load" and empty.message.content == ""
