"""A deterministic chat model registered as a real chat backend, for the tests and
benchmarks of our own logic (prompts, history, sessions, residency, graph extraction); the real
models are tested in their own modules."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import ClassVar

from handbook.config import ChatSettings
from handbook.errors import BackendUnavailable
from handbook.types import Message


class ScriptedChat:
    """Answers with `script` (or `respond(messages)`), word by word; records what it was asked.
    `fail_after` words, it raises BackendUnavailable as a server going away would."""

    script = ""
    respond: ClassVar[Callable[[Sequence[Message]], str] | None] = None
    fail_after: ClassVar[int | None] = None
    fail_calls_after: ClassVar[int | None] = None  # calls answered before the "server" dies
    calls: ClassVar[list[Sequence[Message]]] = []
    created: ClassVar[list[str]] = []

    def __init__(self, settings: ChatSettings, models_dir: Path) -> None:
        self.name = f"scripted:{settings.model}"
        self.load_seconds: float | None = None
        ScriptedChat.created.append(self.name)

    async def load(self) -> None:
        self.load_seconds = 0.0

    async def stream(self, messages: Sequence[Message]) -> AsyncIterator[str]:
        limit = ScriptedChat.fail_calls_after
        if limit is not None and len(ScriptedChat.calls) >= limit:
            raise BackendUnavailable("Ollama is not reachable (scripted: server stopped).")
        ScriptedChat.calls.append(messages)
        respond = ScriptedChat.respond
        text = respond(messages) if respond is not None else ScriptedChat.script
        for n, word in enumerate(text.split(" ")):
            if ScriptedChat.fail_after is not None and n >= ScriptedChat.fail_after:
                raise BackendUnavailable("Ollama is not reachable (scripted failure).")
            yield word + " "

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    async def close(self) -> None:
        pass


def remembers_names(messages: Sequence[Message]) -> str:
    """Answers "What is my name?" from whatever the conversation holds, like a capable model."""
    for message in messages:
        match = re.search(r"My name is (\w+)", message.content)
        if match:
            return f"Your name is {match.group(1)}."
    return "I do not know your name."
