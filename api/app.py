"""The FastAPI application: `create_app(settings)`. Services come from the composition root
(`app.handbook.Handbook`), created in the lifespan and closed with it.

    uvicorn --factory api.app:app_from_env      # or: handbook serve
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import ollama_compat, openai_compat, routes, schemas
from api.auth import LOOPBACK, KeyRing, KeysBeforeBody, LoopbackHosts, Role, RoleGuard
from api.jobs import IndexJobs
from api.mcp_http import HttpEndpoint
from api.services import Services
from api.slots import RETRY_AFTER_S, AnswerSlots, SlotsBusy
from api.uploads import UploadRejected, restore_kept
from app.handbook import Handbook, HomeLock
from generation.sessions import SessionNotFound
from handbook import version
from handbook.config import Settings, load_settings
from handbook.errors import (
    BackendUnavailable,
    ConfigError,
    HandbookError,
    LoaderError,
    NotIndexed,
)

log = logging.getLogger("handbook.api")
STATIC = Path(__file__).parent / "static"
UPLOAD_ROUTE = "/v1/documents"

# The most specific class first: its status wins.
STATUS: list[tuple[type[HandbookError], int, str]] = [
    (UploadRejected, 0, "upload_rejected"),
    (SessionNotFound, 404, "not_found"),
    (NotIndexed, 409, "not_indexed"),
    (BackendUnavailable, 503, "unavailable"),
    (LoaderError, 422, "unreadable_document"),
    (ConfigError, 400, "bad_request"),
    (HandbookError, 400, "bad_request"),
]
HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "timeout",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    431: "headers_too_large",
    503: "unavailable",
}


def error(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> Any:
    return JSONResponse(
        {"error": code, "message": message}, status_code=status, headers=dict(headers or {})
    )


class RequestLimits:
    """Bounds on what a client may send, answered with JSON errors before a route runs:
    at most `api.max_headers` headers and `api.max_header_kb` of request head (431); a body up
    to `api.max_upload_mb` for uploads and `api.max_body_kb` otherwise, by Content-Length or
    while it arrives (413); the whole body within `api.body_timeout_s` (408).

    Limits hit while a route reads its body are raised as HTTPExceptions, which FastAPI passes
    on to the error handlers (other exceptions while parsing a body become a vague 400)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        api = settings.api
        self.app = app
        self.upload = int(api.max_upload_mb * 1024 * 1024) + 64 * 1024  # + form fields
        self.body = api.max_body_kb * 1024
        self.head = api.max_header_kb * 1024
        self.max_headers = api.max_headers
        self.timeout = api.body_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        head = len(scope.get("raw_path", b"")) + len(scope["query_string"])
        head += sum(len(name) + len(value) + 4 for name, value in headers)
        if len(headers) > self.max_headers or head > self.head:
            await _send_error(send, HeadersTooLarge(self.head, self.max_headers))
            return
        limit = self.upload if scope["path"] == UPLOAD_ROUTE else self.body
        declared = dict(headers).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _send_error(send, _TooLarge(limit))
            return
        deadline = asyncio.get_running_loop().time() + self.timeout
        received = 0
        complete = False
        started = False

        async def limited() -> Message:
            nonlocal received, complete
            if complete:  # e.g. a streaming response listening for the client to leave
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise _TimedOut(self.timeout) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge(limit)
                complete = not message.get("more_body", False)
            return message

        async def tracking(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, tracking)
        except (_TooLarge, _TimedOut) as exc:  # raised where no error handler catches them
            if not started:
                await _send_error(send, exc)


class _TooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(
            413,
            f"The request body is over {limit // 1024} KB (api.max_body_kb; uploads: "
            "api.max_upload_mb).",
            headers={"Connection": "close"},
        )


class _TimedOut(HTTPException):
    def __init__(self, seconds: float) -> None:
        super().__init__(
            408,
            f"The request body did not arrive within {seconds:g} s (api.body_timeout_s); "
            "send it again.",
            headers={"Connection": "close"},
        )


class HeadersTooLarge(HTTPException):
    def __init__(self, size: int, count: int) -> None:
        super().__init__(
            431,
            f"The request headers are over {size // 1024} KB or {count} headers "
            "(api.max_header_kb, api.max_headers); send fewer or shorter ones.",
            headers={"Connection": "close"},
        )


async def _send_error(send: Send, exc: HTTPException) -> None:
    response = error(exc.status_code, HTTP_CODES[exc.status_code], exc.detail, exc.headers)
    await send({"type": "http.response.start", "status": exc.status_code,
                "headers": response.raw_headers})  # fmt: skip
    await send({"type": "http.response.body", "body": response.body})


def create_app(
    settings: Settings, lock: HomeLock | None = None, host: str | None = None
) -> FastAPI:
    """`lock`: the data folder's lock, taken already by `handbook serve`; `host`: the address
    it listens on (on loopback without keys, only loopback names are answered)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        keys = KeyRing.from_settings(settings.api)
        keys.check_file()
        async with Handbook(settings, lock) as hb:
            jobs = IndexJobs(hb)
            app.state.services = Services(
                settings,
                hb,
                jobs,
                AnswerSlots.of(settings.api),
                time.time(),
                keys,
            )
            await _warm_up(hb, settings)
            jobs.start()
            for restored in restore_kept(settings.uploads_path):
                log.warning("Put back %s: its replacement was not indexed before a stop", restored)
            if settings.uploads_path.is_dir() and any(settings.uploads_path.iterdir()):
                jobs.submit(settings.uploads_path)  # uploads left unindexed by a stop
            try:
                async with mcp.run():  # the MCP sessions at /mcp
                    yield
            finally:
                await jobs.stop()

    app = FastAPI(
        title="Handbook",
        version=version(),
        summary="Answers from your technical manuals, with citations (document, page).",
        lifespan=lifespan,
    )
    app.include_router(routes.router)
    app.include_router(openai_compat.router)
    app.include_router(ollama_compat.router)
    mcp = HttpEndpoint(app)
    app.router.routes.append(Route("/mcp", RoleGuard(mcp, Role.READER), include_in_schema=False))
    _system_routes(app)
    _error_handlers(app)
    app.add_middleware(KeysBeforeBody)  # inside RequestLimits: 431 before 401
    app.add_middleware(RequestLimits, settings=settings)
    app.add_middleware(ollama_compat.OllamaWire)  # outside: every /api error in its shape
    if settings.api.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.api.cors_origins),
            allow_methods=["*"],
            allow_headers=["*"],
        )
    app.add_middleware(LoopbackHosts, loopback_only=host in LOOPBACK)  # outermost
    return app


async def _warm_up(hb: Handbook, settings: Settings) -> None:
    """Open the store and load the embedder (and the chat model) before the first request."""
    await hb.store()
    hb.embedder()
    if settings.api.preload:
        try:
            await hb.residency().preload()
        except HandbookError as exc:  # e.g. Ollama not up yet: /readyz says so; asks retry
            log.warning("Could not preload the chat model: %s", exc)


def _system_routes(app: FastAPI) -> None:
    @app.get("/healthz", response_model=schemas.Health, tags=["health"])
    async def healthz() -> Any:
        """The process answers (no key needed)."""
        return {"status": "ok"}

    @app.get(
        "/readyz",
        response_model=schemas.Ready,
        responses={503: {"model": schemas.Ready}},
        tags=["health"],
    )
    async def readyz(request: Request) -> Any:
        """Store reachable and chat model loaded (no key needed)."""
        svc: Services = request.app.state.services
        hb = svc.handbook
        try:
            store = await hb.store()
            await store.count()
            store_state = "ok"
        except HandbookError as exc:
            store_state = str(exc)
        except Exception as exc:  # a store server gone away raises its client's own errors
            log.warning("readyz: the store does not answer: %r", exc)
            store_state = (
                f"The store ({svc.settings.store.backend}) does not answer ({type(exc).__name__}); "
                "check that it runs (store.url), then GET /readyz again."
            )
        models = hb.residency().load_times()
        loaded = any(seconds is not None for seconds in models.values())
        ready = store_state == "ok" and (loaded or not svc.settings.api.preload)
        body = {
            "ready": ready,
            "store": store_state,
            "documents": len(hb.registry.all()),
            "models": models,
            "indexing": svc.jobs.busy,
        }
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(HandbookError)
    async def handbook_error(request: Request, exc: HandbookError) -> Any:
        for kind, status, code in STATUS:
            if isinstance(exc, kind):
                if isinstance(exc, UploadRejected):
                    status = exc.status
                busy = {"Retry-After": str(RETRY_AFTER_S)} if isinstance(exc, SlotsBusy) else None
                return error(status, code, str(exc), busy)
        raise AssertionError("HandbookError is in STATUS")

    @app.exception_handler(HTTPException)  # FastAPI's and Starlette's (routing, parsing)
    async def http_error(request: Request, exc: HTTPException) -> Any:
        code = HTTP_CODES.get(exc.status_code, "error")
        headers = dict(exc.headers or {})
        detail = str(exc.detail)
        if exc.status_code == 405:  # every method of the path, not only the first route's
            headers["Allow"] = ", ".join(_methods(request.app, request.url.path))
        if exc.status_code == 400 and exc.__cause__ is not None:  # FastAPI could not parse it
            detail = (
                "The JSON body is nested too deeply; send a flat JSON object."
                if isinstance(exc.__cause__, RecursionError)
                else "The request body could not be read: send a JSON object (uploads: "
                "multipart/form-data with a `file` field)."
            )
        return error(exc.status_code, code, detail, headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Any:
        problems = [
            "The body is not valid JSON."
            if e["type"] == "json_invalid"
            else f"{'.'.join(str(p) for p in e['loc'] if p != 'body') or 'body'}: {e['msg']}"
            for e in exc.errors()
        ]
        return error(422, "invalid_request", "; ".join(problems)[:2000])

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> Any:
        incident = uuid.uuid4().hex[:8]
        log.exception("internal error %s on %s %s", incident, request.method, request.url.path)
        return error(
            500,
            "internal_error",
            f"Internal error (incident {incident}); the server log has the details.",
        )


def _methods(app: FastAPI, path: str) -> list[str]:
    """The methods the OpenAPI schema documents for a concrete path."""
    for template, operations in app.openapi()["paths"].items():
        if re.fullmatch(re.sub(r"\{[^/]+\}", "[^/]+", template), path):
            return sorted(method.upper() for method in operations)
    return []


def app_from_env() -> FastAPI:
    """For `uvicorn --factory api.app:app_from_env`: settings from HANDBOOK_* and the YAML."""
    return create_app(load_settings())
