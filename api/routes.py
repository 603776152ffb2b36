"""The /v1 routes: parse the request, call one service, shape the answer."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, HTTPException, Query, UploadFile
from fastapi.responses import StreamingResponse

from api import schemas
from api.auth import Principal, Role
from api.services import ADMIN, READER, Svc, User, authorize
from api.uploads import CHUNK, safe_name, save
from generation.events import Done, Summarized
from generation.sessions import SessionInfo, SessionNotFound
from handbook.errors import HandbookError
from handbook.types import Answer
from ingestion.doc_registry import DocumentRecord

router = APIRouter(prefix="/v1", dependencies=[Depends(authorize)])
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": schemas.Error} for code in (400, 401, 403, 404, 409, 413, 415, 422, 503)
}


def answer_out(answer: Answer, session: str | None = None) -> dict[str, Any]:
    return {**answer.to_dict(), "session": session}


def sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


@router.post(
    "/ask",
    **READER,
    response_model=schemas.AnswerOut,
    responses={
        **ERRORS,
        200: {
            "content": {"text/event-stream": {}},
            "description": "The answer; with `stream: true`, Server-Sent Events: `sources`, "
            "`token`..., `replaced` (`text` replaces the answer; `reason`: unsupported or "
            "cleaned), `done` (the answer as JSON) or `error`.",
        },
    },
)
async def ask(body: schemas.AskRequest, svc: Svc, user: User) -> Any:
    """Answer a question from the indexed manuals, with citations (document, page). A
    `session` must be the user's own (an admin's: any)."""
    hb = svc.handbook
    where = hb.search_filter(body.docs, body.lang)
    options: dict[str, Any] = {
        "k": body.k,
        "where": where,
        "mode": body.mode,
        "answer_mode": body.answer_mode,
    }
    if body.session is not None:
        own_session(svc, user, body.session)  # 404 before anything starts
        events = (await hb.conversation()).stream(body.session, body.question, **options)
    else:
        events = (await hb.answerer()).stream(body.question, **options)
    if not body.stream:
        return answer_out(await svc.slots.answer(events), body.session)
    held = await svc.slots.take(events)

    async def stream() -> AsyncIterator[str]:
        try:
            async for event in held:
                if isinstance(event, Summarized):  # the session keeps it
                    continue
                data = event.to_dict()
                if isinstance(event, Done):
                    data["session"] = body.session
                yield sse(event.name, data)
        except HandbookError as exc:
            yield sse("error", {"error": type(exc).__name__, "message": str(exc)})
        finally:
            await held.aclose()

    return StreamingResponse(stream(), media_type="text/event-stream")


@router.post("/search", **READER, response_model=schemas.SearchOut, responses=ERRORS)
async def search(body: schemas.SearchRequest, svc: Svc) -> Any:
    """The passages that best match a query (no model answers)."""
    hb = svc.handbook
    retriever = await hb.retriever()
    where = hb.search_filter(body.docs, body.lang)
    result = await retriever.search(body.query, k=body.k, where=where, mode=body.mode)
    return result.to_dict()


# --- documents -----------------------------------------------------------------------------


@router.get("/documents", **READER, response_model=list[schemas.DocumentOut], responses=ERRORS)
async def list_documents(svc: Svc) -> Any:
    return [schemas.DocumentOut.of(r) for r in svc.handbook.registry.all()]


def _document(svc: Svc, doc_id: str) -> DocumentRecord:
    record = svc.handbook.registry.get(doc_id)
    if record is None:
        raise HTTPException(404, f"There is no document {doc_id!r}; GET /v1/documents lists them.")
    return record


@router.get("/documents/{doc_id}", **READER, response_model=schemas.DocumentOut, responses=ERRORS)
async def get_document(doc_id: str, svc: Svc) -> Any:
    return schemas.DocumentOut.of(_document(svc, doc_id))


@router.delete("/documents/{doc_id}", **ADMIN, response_model=schemas.Deleted, responses=ERRORS)
async def delete_document(doc_id: str, svc: Svc) -> Any:
    """Remove a document from the index and the graph (and its upload, if it was uploaded)."""
    record = _document(svc, doc_id)
    async with svc.jobs.writer:  # after the running index job, before the next
        await svc.handbook.delete_document(doc_id)
        await asyncio.to_thread(_remove_upload, Path(record.path), svc.settings.uploads_path)
    return {"deleted": doc_id}


def _remove_upload(path: Path, uploads: Path) -> None:
    if path.parent.resolve() == uploads.resolve():
        path.unlink(missing_ok=True)


@router.post(
    "/documents",
    **ADMIN,
    status_code=202,
    response_model=schemas.JobOut,
    responses=ERRORS,
)
async def upload_document(file: Annotated[UploadFile, File()], svc: Svc) -> Any:
    """Upload a manual (PDF, HTML, Markdown, text, DOCX); it is indexed by a queued job
    (GET /v1/jobs/{id}). A file with the same name replaces the earlier upload once it is
    indexed; if it cannot be indexed, the earlier file and its chunks stay."""
    settings = svc.settings
    name = safe_name(file.filename or "", tuple(settings.index.extensions))
    uploads = settings.uploads_path
    target = uploads / name
    if target.resolve().parent != uploads.resolve():  # belt and braces: never outside
        raise HTTPException(400, "That file name is not allowed.")

    async def chunks() -> AsyncIterator[bytes]:
        while chunk := await file.read(CHUNK):
            yield chunk

    async with svc.jobs.writer:  # not while a job reads the previous version
        kept = await save(chunks(), target, int(settings.api.max_upload_mb * CHUNK))
    job = svc.jobs.submit(target.absolute(), kept)
    return job.to_dict()


@router.get("/jobs", **ADMIN, response_model=list[schemas.JobOut], responses=ERRORS)
async def list_jobs(svc: Svc) -> Any:
    return [job.to_dict() for job in svc.jobs.all()]


@router.get("/jobs/{job_id}", **ADMIN, response_model=schemas.JobOut, responses=ERRORS)
async def get_job(job_id: str, svc: Svc) -> Any:
    job = svc.jobs.get(job_id)
    if job is None:
        raise HTTPException(404, f"There is no job {job_id!r}; GET /v1/jobs lists them.")
    return job.to_dict()


# --- sessions ------------------------------------------------------------------------------


def session_out(info: SessionInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "title": info.title,
        "created": info.created,
        "updated": info.updated,
        "turns": info.turns,
        "owner": info.owner,
    }


def own_session(svc: Svc, user: Principal, session_id: str) -> SessionInfo:
    """The session, if `user` may use it: their own, or any for an admin. Another user's
    session is "not found", exactly as one that does not exist (its existence is not told)."""
    info = svc.handbook.sessions.get(session_id)
    if info.owner != user.name and not user.may(Role.ADMIN):
        raise SessionNotFound(MISSING_SESSION.format(session_id))
    return info


MISSING_SESSION = (
    "There is no session {!r}. POST /v1/sessions starts a new one; GET /v1/sessions lists yours."
)


@router.post(
    "/sessions", **READER, status_code=201, response_model=schemas.SessionOut, responses=ERRORS
)
async def create_session(svc: Svc, user: User, body: schemas.SessionCreate | None = None) -> Any:
    """Start a conversation, owned by the key's user; ask within it with
    `POST /v1/ask {"session": id}`."""
    return session_out(svc.handbook.sessions.create(body.title if body else "", user.name))


@router.get("/sessions", **READER, response_model=list[schemas.SessionOut], responses=ERRORS)
async def list_sessions(
    svc: Svc, user: User, *, every: Annotated[bool, Query(alias="all")] = False
) -> Any:
    """The user's own sessions, newest first; `?all=true` (admins only): everyone's."""
    if every and not user.may(Role.ADMIN):
        raise HTTPException(403, "Only an admin may list every user's sessions (?all=true).")
    return [session_out(s) for s in svc.handbook.sessions.all(None if every else user.name)]


@router.get(
    "/sessions/{session_id}", **READER, response_model=schemas.SessionHistory, responses=ERRORS
)
async def get_session(session_id: str, svc: Svc, user: User) -> Any:
    """A session's questions and answers (the user's own; an admin's: any)."""
    info = own_session(svc, user, session_id)
    turns = [
        {"n": t.n, "created": t.created, "answer": answer_out(t.answer, session_id)}
        for t in svc.handbook.sessions.turns(session_id)
    ]
    return {"session": session_out(info), "turns": turns}


@router.delete("/sessions/{session_id}", **READER, response_model=schemas.Deleted, responses=ERRORS)
async def delete_session(session_id: str, svc: Svc, user: User) -> Any:
    """Delete a session and its history (the user's own; an admin's: any)."""
    own_session(svc, user, session_id)
    svc.handbook.sessions.delete(session_id)
    return {"deleted": session_id}


# --- models --------------------------------------------------------------------------------

MODEL_ID = "handbook"


@router.get("/models", **READER, response_model=schemas.ModelList, responses=ERRORS)
async def models(svc: Svc) -> Any:
    """OpenAI-style model list: `handbook` answers from the manuals with the chat model."""
    chat = svc.settings.chat
    loaded = svc.handbook.residency().load_times()
    name = svc.handbook.chat().name
    card = {
        "id": MODEL_ID,
        "created": int(svc.started),
        "backend": chat.backend,
        "chat_model": name,
        "loaded": loaded.get(name) is not None,
        "load_seconds": loaded.get(name),
    }
    return {"object": "list", "data": [card]}
