"""`POST /v1/chat/completions` in OpenAI's format, so that the OpenAI SDK, Open WebUI and other
clients can use Handbook as a model that answers from the manuals.

The last user message is the question; earlier user/assistant pairs are the conversation
(system messages are ignored: Handbook's own system prompt keeps the answer grounded). Sources
travel in the documented extra field `sources` (the citations, as in `POST /v1/ask`): on the
completion object, and on the last chunk of a stream.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import StreamingResponse

from api import schemas
from api.routes import ERRORS, MODEL_ID
from api.services import READER, Svc, authorize
from generation.answer import Done, Replaced, Token
from generation.history import History, Turn
from handbook.types import Answer

router = APIRouter(prefix="/v1", dependencies=[Depends(authorize)])


def conversation(messages: list[schemas.ChatMessage]) -> tuple[str, History]:
    """The question (last user message) and the user/assistant pairs before it."""
    if messages[-1].role != "user" or not messages[-1].text().strip():
        raise HTTPException(422, "The last message must be a user message with text.")
    if len(messages[-1].text().strip()) > schemas.QUESTION_CHARS:
        raise HTTPException(
            422,
            f"The last user message is over {schemas.QUESTION_CHARS} characters; ask a shorter "
            "question (the manuals are the context, not the message).",
        )
    turns: list[Turn] = []
    question: str | None = None
    for message in messages[:-1]:
        if message.role == "user":
            question = message.text()
        elif message.role == "assistant" and question is not None:
            turns.append(Turn(question, message.text()))
            question = None
    return messages[-1].text().strip(), History(tuple(turns))


def sources(answer: Answer) -> list[dict[str, Any]]:
    return [dict(c) for c in answer.to_dict()["citations"]]


@router.post(
    "/chat/completions",
    **READER,
    responses={
        **ERRORS,
        200: {
            "description": "An OpenAI chat completion (or `chat.completion.chunk` events with "
            "`stream: true`), with the extra field `sources`: the citations.",
            "content": {"application/json": {}, "text/event-stream": {}},
        },
    },
)
async def chat_completions(body: schemas.ChatRequest, svc: Svc) -> Any:
    if body.model not in (MODEL_ID, svc.handbook.chat().name):
        raise HTTPException(404, f"Unknown model {body.model!r}; GET /v1/models lists it.")
    question, history = conversation(body.messages)
    events = (await svc.handbook.answerer()).stream(question, history=history)
    ident = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    created = int(time.time())
    if not body.stream:
        async with svc.answer_slot():
            async for event in events:
                if isinstance(event, Done):
                    answer = event.answer
                    return {
                        "id": ident,
                        "object": "chat.completion",
                        "created": created,
                        "model": MODEL_ID,
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": answer.answer},
                                "finish_reason": "stop",
                            }
                        ],
                        "sources": sources(answer),
                    }
        raise HTTPException(500, "The answer ended without a result.")

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        data = {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": created,
            "model": MODEL_ID,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"

    async def stream() -> AsyncIterator[str]:
        from handbook.errors import HandbookError

        try:
            async with svc.answer_slot():
                yield chunk({"role": "assistant", "content": ""})
                async for event in events:
                    if isinstance(event, Token):
                        yield chunk({"content": event.text})
                    elif isinstance(event, Replaced):
                        # Streamed text cannot be taken back: the correction follows it.
                        yield chunk({"content": f"\n\n{event.text}"})
                    elif isinstance(event, Done):
                        yield chunk({}, "stop", sources=sources(event.answer))
        except (HandbookError, HTTPException) as exc:
            message = exc.detail if isinstance(exc, HTTPException) else str(exc)
            error = {"message": message, "type": type(exc).__name__}
            yield f"data: {json.dumps({'error': error}, ensure_ascii=False)}\n\n"
        finally:
            await events.aclose()  # type: ignore[attr-defined]  # an async generator
        yield "data: [DONE]\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream")
