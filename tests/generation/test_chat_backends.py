"""Chat backends: llama.cpp in process, and Ollama over HTTP (fake server; real one when live)."""

from __future__ import annotations

import asyncio
import os
import socket
import urllib.request
from pathlib import Path

import pytest

from bench.support.fake_ollama import MODEL, serve
from generation.base import CHAT_MODELS
from handbook.config import ChatSettings
from handbook.errors import BackendUnavailable
from handbook.types import Message, Role

QUESTION = [
    Message(Role.SYSTEM, "Answer briefly."),
    Message(
        Role.USER,
        "Sources:\n[1] The HP-200 press reaches 210 bar.\n\n"
        "Question: What pressure does the HP-200 reach?",
    ),
]


def collect(settings: ChatSettings, models_dir: Path | None = None) -> list[str]:
    async def work() -> list[str]:
        chat = CHAT_MODELS.create(settings.backend, settings, models_dir or Path("models"))
        try:
            return [piece async for piece in chat.stream(QUESTION)]
        finally:
            await chat.close()

    return asyncio.run(work())


def test_llamacpp_streams_the_packaged_model() -> None:
    pieces = collect(ChatSettings(backend="llamacpp", max_tokens=40, temperature=0.0))
    assert len(pieces) > 3, "tokens arrive one by one"
    assert "210" in "".join(pieces)


def test_llamacpp_bad_model_path_is_a_config_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from handbook.errors import ConfigError

    with pytest.raises(ConfigError, match="neither a packaged model"):
        collect(ChatSettings(backend="llamacpp", model=str(tmp_path / "missing.gguf")))


def test_ollama_streams_and_sends_options_and_keep_alive() -> None:
    with serve() as (url, fake):
        settings = ChatSettings(
            backend="ollama", model=MODEL, host=url, max_tokens=40, temperature=0.0
        )
        pieces = collect(settings)
    assert len(pieces) > 3 and "210" in "".join(pieces)
    path, body = fake.requests[-1]
    assert path == "/api/chat" and body["stream"] is True
    assert body["keep_alive"] == "30m"
    assert body["options"]["num_ctx"] == settings.context_tokens
    assert body["options"]["num_predict"] == 40
    assert body["messages"][0] == {"role": "system", "content": "Answer briefly."}


def test_ollama_missing_model_says_which_pull() -> None:
    with serve() as (url, _), pytest.raises(BackendUnavailable, match=r"ollama pull llama3\.2:3b"):
        collect(ChatSettings(backend="ollama", model="llama3.2:3b", host=url))


def test_ollama_down_is_actionable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(BackendUnavailable, match="ollama serve"):
        collect(ChatSettings(backend="ollama", model=MODEL, host=f"http://127.0.0.1:{port}"))


def test_ollama_timeout_is_actionable() -> None:
    with serve(stall_s=3) as (url, _), pytest.raises(BackendUnavailable, match="within 1 s"):
        collect(ChatSettings(backend="ollama", model=MODEL, host=url, timeout_s=1))


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("garbage", "not Ollama's API"),
        ("drop", "closed the connection without an answer"),
        ("error", "answered 500: llama runner process has terminated"),
    ],
)
def test_ollama_broken_answers_are_actionable(fault: str, message: str) -> None:
    with serve() as (url, fake), pytest.raises(BackendUnavailable, match=message):
        fake.fault = fault
        collect(ChatSettings(backend="ollama", model=MODEL, host=url))


def _ollama_host() -> str | None:
    host = os.environ.get("OLLAMA_HOST")
    if not host:
        return None
    host = host if host.startswith("http") else f"http://{host}"
    try:
        with urllib.request.urlopen(f"{host}/api/version", timeout=2):
            return host
    except OSError:
        return None


@pytest.fixture
def live_ollama() -> tuple[str, str]:
    """(host, model) of a real Ollama server; the test is skipped when none answers."""
    host = _ollama_host()
    if host is None:
        pytest.skip("no Ollama answers at OLLAMA_HOST")
    return host, os.environ.get("HANDBOOK_TEST_OLLAMA_MODEL", "llama3.2:3b")


@pytest.mark.live
def test_live_ollama_answers(live_ollama: tuple[str, str]) -> None:
    host, model = live_ollama
    pieces = collect(ChatSettings(backend="ollama", model=model, host=host, max_tokens=40))
    assert "210" in "".join(pieces)


def test_models_list_ps_pull_through_the_cli(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json
    import subprocess
    import sys

    with serve() as (url, fake):
        env = {**os.environ, "HANDBOOK_HOME": str(tmp_path), "HANDBOOK_CHAT__HOST": url}

        def run(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "cli", "models", *args],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )

        listed = json.loads(run("list", "--json").stdout)["models"]
        assert [m["name"] for m in listed] == [MODEL]
        running = json.loads(run("ps", "--json").stdout)["models"]
        assert running[0]["expires_at"].startswith("2026-11-22T00:30")
        pulled = run("pull", "llama3.2:3b")
        assert pulled.returncode == 0 and "downloading 100%" in pulled.stderr
        assert (
            "/api/pull",
            {"model": "llama3.2:3b", "insecure": False, "stream": True},
        ) in fake.requests

    down = subprocess.run(
        [sys.executable, "-m", "cli", "models", "list"],
        env={**env, "HANDBOOK_CHAT__HOST": "http://127.0.0.1:9"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert down.returncode == 1 and "ollama serve" in down.stderr and "Traceback" not in down.stderr


def test_ollama_counts_tokens_with_the_models_tokenizer(tmp_path: Path) -> None:
    from generation.ollama import OllamaChat

    text = "Wie viel Drehmoment für die Radschrauben?"
    llama = OllamaChat(ChatSettings(backend="ollama", model="llama3.2:3b"))
    assert llama.count_tokens(text) == 13, "the Llama 3 tokenizer, not an estimate"
    other = OllamaChat(ChatSettings(backend="ollama", model="gemma3:4b"))
    assert other.count_tokens(text) == len(text) // 4, "no tokenizer at hand: estimate"
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    words = Tokenizer(WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    words.pre_tokenizer = Whitespace()  # type: ignore[assignment]  # property setter
    words.save(str(tmp_path / "tokenizer.json"))
    own = OllamaChat(
        ChatSettings(backend="ollama", model="x", tokenizer=str(tmp_path / "tokenizer.json"))
    )
    assert own.count_tokens(text) == 7


def test_ollama_load_preloads_with_keep_alive_and_records_the_load_time() -> None:
    from generation.ollama import OllamaChat

    async def load(url: str) -> float | None:
        chat = OllamaChat(ChatSettings(backend="ollama", model=MODEL, host=url, keep_alive="1h"))
        try:
            await chat.load()
            return chat.load_seconds
        finally:
            await chat.close()

    with serve() as (url, fake):
        seconds = asyncio.run(load(url))
    assert seconds is not None and seconds > 0, "the server's load_duration, in seconds"
    path, body = fake.requests[-1]
    assert path == "/api/generate" and body["prompt"] == "" and body["keep_alive"] == "1h"


@pytest.mark.live
def test_live_ollama_preload_records_the_load_time(live_ollama: tuple[str, str]) -> None:
    from generation.ollama import OllamaChat

    host, model = live_ollama

    async def work() -> float | None:
        chat = OllamaChat(ChatSettings(backend="ollama", model=model, host=host))
        try:
            await chat.load()
            return chat.load_seconds
        finally:
            await chat.close()

    assert asyncio.run(work()) is not None
