"""What the chat dialects (OpenAI's `/v1/chat/completions`, Ollama's `/api/chat` and
`/api/generate`) share: the question and the history from a client's messages, the limits on a
question, and the citations as the extra field `sources`.

The last user message is the question; earlier user/assistant pairs are the conversation
(system messages are ignored: Handbook's own system prompt keeps the answer grounded).
"""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException

from api import schemas
from generation.history import History, Turn
from handbook.types import Answer


def question(text: str, what: str = "The last user message") -> str:
    """The question, stripped: a 422 when it is empty or over `schemas.QUESTION_CHARS`."""
    text = text.strip()
    if not text:
        raise HTTPException(422, f"{what} has no text; send a question.")
    if len(text) > schemas.QUESTION_CHARS:
        raise HTTPException(
            422,
            f"{what} is over {schemas.QUESTION_CHARS} characters; ask a shorter question (the "
            "manuals are the context, not the message).",
        )
    return text


def conversation(messages: list[schemas.ChatMessage]) -> tuple[str, History]:
    """The question (last user message) and the user/assistant pairs before it."""
    if not messages or messages[-1].role != "user" or not messages[-1].text().strip():
        raise HTTPException(422, "The last message must be a user message with text.")
    turns: list[Turn] = []
    asked: str | None = None
    for message in messages[:-1]:
        if message.role == "user":
            asked = message.text()
        elif message.role == "assistant" and asked is not None:
            turns.append(Turn(asked, message.text()))
            asked = None
    return question(messages[-1].text()), History(tuple(turns))


def sources(answer: Answer) -> list[dict[str, Any]]:
    """The citations, as in `POST /v1/ask`."""
    return [c.to_dict() for c in answer.citations]
