"""`POST /v1/chat/completions` in OpenAI's format, so that the OpenAI SDK, Open WebUI and other
clients can use Handbook as a model that answers from the manuals.

The last user message is the question; earlier user/assistant pairs are the conversation
(api/conversation.py, shared with the Ollama-compatible routes). Sources
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
from api.conversation import conversation, sources
from api.routes import ERRORS, MODEL_ID
from api.services import READER, Svc, authorize
from generation.events import Done, Replaced, Token
from handbook.errors import HandbookError

router = APIRouter(prefix="/v1", dependencies=[Depends(authorize)])


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
        answer = await svc.slots.answer(events)
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
    held = await svc.slots.take(events)

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
        try:
            yield chunk({"role": "assistant", "content": ""})
            async for event in held:
                if isinstance(event, Token):
                    yield chunk({"content": event.text})
                elif isinstance(event, Replaced):
                    # Streamed text cannot be taken back: the correction follows it.
                    yield chunk({"content": f"\n\n{event.text}"})
                elif isinstance(event, Done):
                    yield chunk({}, "stop", sources=sources(event.answer))
        except HandbookError as exc:
            error = {"message": str(exc), "type": type(exc).__name__}
            yield f"data: {json.dumps({'error': error}, ensure_ascii=False)}\n\n"
        finally:
            await held.aclose()
        yield "data: [DONE]\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream")
