"""Ollama's API (`/api/chat`, `/api/generate`, `/api/tags`, `/api/show`, `/api/version`), so that
Open WebUI, Enchanted, editor plugins and the `ollama` client libraries use Handbook as the model
`handbook:latest`, which answers from the manuals.

As on the OpenAI route (api/conversation.py): the last user message is the question, earlier
user/assistant pairs are the conversation, system messages are ignored, and the answer is the
server's (`answer.mode`). Ollama's clients show only text, so the final message ends with the
citations on one line in the question's language (`Sources: [1] Title, p. 2`); the final object
also carries them as the extra field `sources`, as on the OpenAI route.

Streams are NDJSON, Ollama's default (`stream` is true unless the client says false); an error
after the stream began is a last line `{"error": "..."}`, which the `ollama` clients raise.
Errors before it are `{"error": "..."}` with their status (`OllamaWire`), Ollama's shape.
Request bodies are JSON whatever their Content-Type, as for Ollama: its documentation's
`curl ... -d '{...}'` sends them as a form.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import schemas
from api.conversation import conversation, question, sources
from api.routes import MODEL_ID
from api.services import READER, Services, Svc, authorize
from generation.events import AnswerEvent, Done, Replaced, Token
from generation.history import History
from handbook.errors import HandbookError
from handbook.types import Answer

PREFIX = "/api"
TAG = f"{MODEL_ID}:latest"
NAMES = (TAG, MODEL_ID)
OLLAMA_VERSION = "0.12.0"
"""The Ollama release whose API these routes follow; clients compare it to enable features
(Handbook's own version is the extra field `handbook`)."""
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": schemas.OllamaError} for code in (400, 401, 403, 404, 409, 413, 422, 503)
}
SIZED = (b"content-length", b"content-type")
"""The headers of an error body that change when it is reshaped."""
STREAMED: dict[str, Any] = {"content": {"application/json": {}, "application/x-ndjson": {}}}
Part = Callable[[str], dict[str, Any]]

api = APIRouter(prefix=PREFIX, dependencies=[Depends(authorize)], tags=["ollama"])


def chat_part(text: str) -> dict[str, Any]:
    return {"message": {"role": "assistant", "content": text}}


def generate_part(text: str) -> dict[str, Any]:
    return {"response": text}


def now() -> str:
    """Ollama's `created_at`: RFC 3339 in UTC."""
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def model_name(name: str) -> str:
    """The model a request names, which must be Handbook (a 404 as Ollama's otherwise)."""
    if name not in NAMES:
        raise HTTPException(404, f"model {name!r} not found")
    return name


def with_sources(text: str, answer: Answer) -> str:
    line = answer.sources_line()
    return f"{text}\n\n{line}" if line else text


class Timing:
    """Ollama's durations (nanoseconds) and `eval_count` (the pieces streamed) of one answer."""

    def __init__(self) -> None:
        self.began = time.monotonic_ns()
        self.first: int | None = None
        self.pieces = 0

    def piece(self) -> None:
        self.first = self.first or time.monotonic_ns()
        self.pieces += 1

    def final(self, model: str, answer: Answer) -> dict[str, Any]:
        end = time.monotonic_ns()
        first = self.first or end
        return {
            "model": model,
            "created_at": now(),
            "done": True,
            "done_reason": "stop",
            "total_duration": end - self.began,
            "prompt_eval_duration": first - self.began,
            "eval_count": self.pieces,
            "eval_duration": end - first,
            "sources": sources(answer),
        }


async def respond(
    svc: Services, model: str, asked: str, history: History, *, stream: bool, part: Part
) -> Any:
    """The answer, whole or as NDJSON; either way it holds an answer slot (a 503 when all are
    busy, before anything is sent)."""
    events = (await svc.handbook.answerer()).stream(asked, history=history)
    timing = Timing()
    if not stream:

        def count(event: AnswerEvent) -> None:
            if isinstance(event, Token):
                timing.piece()

        answer = await svc.slots.answer(events, count)
        content = with_sources(answer.answer, answer)
        return {**timing.final(model, answer), **part(content)}
    held = await svc.slots.take(events)
    return StreamingResponse(ndjson(held, model, part, timing), media_type="application/x-ndjson")


async def ndjson(
    events: AsyncGenerator[AnswerEvent, None], model: str, part: Part, timing: Timing
) -> AsyncIterator[str]:
    def line(data: dict[str, Any]) -> str:
        return json.dumps(data, ensure_ascii=False) + "\n"

    try:
        async for event in events:
            if isinstance(event, Token):
                timing.piece()
                yield line({"model": model, "created_at": now(), **part(event.text),
                            "done": False})  # fmt: skip
            elif isinstance(event, Replaced):
                # Streamed text cannot be taken back: the correction follows it.
                yield line({"model": model, "created_at": now(),
                            **part(f"\n\n{event.text}"), "done": False})  # fmt: skip
            elif isinstance(event, Done):
                tail = with_sources("", event.answer)
                yield line({**timing.final(model, event.answer), **part(tail)})
    except HandbookError as exc:
        yield line({"error": str(exc)})
    finally:
        await events.aclose()


def loaded(model: str, part: Part) -> dict[str, Any]:
    """Ollama's answer to a request without a question: the model is ready."""
    return {"model": model, "created_at": now(), **part(""), "done": True, "done_reason": "load"}


def answering(field: str) -> dict[str, Any]:
    """The declaration of a route that answers: its role, errors and both response types."""
    streamed = (
        f"Ollama's response (the answer in `{field}`); with `stream` (the default) NDJSON "
        "objects, the last with `done: true`, the sources line and the extra field `sources`."
    )
    return {
        **READER,
        "responses": {**ERRORS, 200: {"description": streamed, **STREAMED}},
    }


@api.post("/chat", **answering("message.content"))
async def chat(body: schemas.OllamaChatRequest, svc: Svc) -> Any:
    """Chat with Handbook as an Ollama model: the last user message is the question."""
    model = model_name(body.model)
    if not body.messages:
        return loaded(model, chat_part)
    asked, history = conversation(body.messages)
    return await respond(svc, model, asked, history, stream=body.stream, part=chat_part)


@api.post("/generate", **answering("response"))
async def generate(body: schemas.OllamaGenerateRequest, svc: Svc) -> Any:
    """The prompt is the question (no history: Ollama's `context` is ignored)."""
    model = model_name(body.model)
    if not body.prompt:
        return loaded(model, generate_part)
    asked = question(body.prompt, "The prompt")
    return await respond(svc, model, asked, History(), stream=body.stream, part=generate_part)


def details(svc: Services) -> dict[str, Any]:
    return {
        "parent_model": svc.handbook.chat().name,
        "format": "handbook",
        "family": "handbook",
        "families": ["handbook"],
        "parameter_size": "",
        "quantization_level": "",
    }


def modified(svc: Services) -> str:
    """The server's start: when `handbook:latest` became what it is now."""
    return datetime.fromtimestamp(svc.started, UTC).isoformat().replace("+00:00", "Z")


@api.get("/tags", **READER, responses=ERRORS)
async def tags(svc: Svc, request: Request) -> Any:
    """Ollama's model list: `handbook:latest`."""
    made = f"{TAG} {request.app.version} {svc.handbook.chat().name}"
    digest = hashlib.sha256(made.encode()).hexdigest()
    card = {"name": TAG, "model": TAG, "modified_at": modified(svc), "size": 0,
            "digest": digest, "details": details(svc)}  # fmt: skip
    return {"models": [card]}


@api.post("/show", **READER, responses=ERRORS)
async def show(body: schemas.OllamaShowRequest, svc: Svc, request: Request) -> Any:
    """What `handbook:latest` is: the chat model, its backend and the answer mode."""
    model_name(body.model or body.name or "")
    settings = svc.settings
    version = request.app.version
    return {
        "modelfile": f"# Handbook {version}: answers from the indexed manuals, with citations",
        "parameters": "",
        "template": "",
        "details": details(svc),
        "model_info": {
            "general.architecture": "handbook",
            "handbook.version": version,
            "handbook.chat_backend": settings.chat.backend,
            "handbook.chat_model": svc.handbook.chat().name,
            "handbook.answer_mode": settings.answer.mode,
            "handbook.documents": len(svc.handbook.registry.all()),
        },
        "capabilities": ["completion"],
        "modified_at": modified(svc),
    }


@api.get("/version", **READER, responses=ERRORS)
async def ollama_version(request: Request) -> Any:
    """The Ollama API version these routes follow, and Handbook's own."""
    return {"version": OLLAMA_VERSION, "handbook": request.app.version}


router = APIRouter()
router.include_router(api)


@router.head("/", include_in_schema=False)
async def heartbeat() -> Response:
    """The `ollama` CLI checks a server with `HEAD /` (Ollama answers 200); `GET /` stays
    Handbook's web page."""
    return Response()


class OllamaWire:
    """Ollama's habits on /api paths. Bodies are read as JSON whatever their Content-Type.
    Handbook's JSON errors (`{"error": code, "message": ...}`) take Ollama's shape
    (`{"error": message}`), which the `ollama` clients and Open WebUI show; that covers the
    errors raised before a route runs too (keys, body limits, validation)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not (path == PREFIX or path.startswith(PREFIX + "/")):
            await self.app(scope, receive, send)
            return
        headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
        scope = {**scope, "headers": [*headers, (b"content-type", b"application/json")]}
        start: Message | None = None
        body = b""

        async def reshape(message: Message) -> None:
            nonlocal start, body
            if message["type"] == "http.response.start" and message["status"] >= 400:
                start = message  # held until the body is complete
                return
            if start is None:
                await send(message)
                return
            body += message.get("body", b"")
            if message.get("more_body", False):
                return
            try:
                problem = json.loads(body)
                text = problem.get("message") or problem["error"]
                response = JSONResponse({"error": text}, status_code=start["status"])
                headers = [(k, v) for k, v in start["headers"] if k.lower() not in SIZED]
                await send({**start, "headers": headers + [
                    (k, v) for k, v in response.raw_headers if k.lower() in SIZED]})  # fmt: skip
                await send({"type": "http.response.body", "body": response.body})
            except (ValueError, KeyError, TypeError, AttributeError):  # not a JSON error: as is
                await send(start)
                await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, reshape)
