"""Request and response bodies of the HTTP API (the OpenAPI schema is built from these)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from handbook.types import Answer, RetrievalMode, SearchHit
from ingestion.doc_registry import DocumentRecord
from retrieval.search import Fact

SESSION_ID = r"^[A-Za-z0-9_-]{1,64}$"
QUESTION_CHARS = 4000
"""The longest question (and search query): longer ones would overflow small models' context."""
MAX_K = 20
"""The most passages a search or an answer may ask for: more than a reader can use well."""
MAX_DOCS = 50
"""The most documents a filter may name."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Filters(Strict):
    k: int | None = Field(None, ge=1, le=MAX_K, description="Number of sources.")
    mode: RetrievalMode = Field("hybrid", description="Retrieval mode (see the README).")
    docs: list[str] = Field(
        default_factory=list,
        max_length=MAX_DOCS,
        description="Only these documents (id or file name).",
    )
    lang: Literal["de", "en"] | None = Field(None, description="Only sources in this language.")


class AskRequest(Filters):
    question: str = Field(min_length=1, max_length=QUESTION_CHARS, description="German or English.")
    session: str | None = Field(
        None, pattern=SESSION_ID, description="Ask within this session (its history is used)."
    )
    stream: bool = Field(default=False, description="Answer as Server-Sent Events.")
    answer_mode: Literal["auto", "extract", "generate"] | None = Field(
        None,
        description="extract: the manuals' own words (no model); generate: the chat model "
        "writes the answer, checked against the sources; auto: the server's answer.mode.",
    )


class SearchRequest(Filters):
    query: str = Field(min_length=1, max_length=QUESTION_CHARS)


@dataclass(frozen=True)
class AnswerOut(Answer):
    """The answer as `handbook ask --json` writes it, and the session when asked in one.
    `found` is false when the manuals do not answer the question; `answer_mode` says which
    composition gave `answer`: extract (the manuals' own spans, also when a generated answer
    was rejected) or generate; `model_answer` is what the model wrote."""

    session: str | None = None


class SearchOut(BaseModel):
    query: str
    language: str
    results: list[SearchHit]
    facts: list[Fact]


class DocumentOut(BaseModel):
    id: str
    name: str
    title: str
    format: str
    language: str
    size: int
    chunks: int
    indexed: bool = Field(
        description="False: a run stopped before it finished this document; `chunks` is what "
        "it meant to store, and the next index run redoes it."
    )
    pages: int | None
    updated_at: float

    @classmethod
    def of(cls, record: DocumentRecord) -> DocumentOut:
        """A registry record as `GET /v1/documents` and MCP's `list_documents` show it."""
        return cls(
            id=record.doc_id,
            name=Path(record.path).name,
            title=record.title,
            format=record.format,
            language=record.language,
            size=record.size,
            chunks=record.chunks,
            indexed=record.indexed,
            pages=record.pages,
            updated_at=record.updated_at,
        )


class JobOut(BaseModel):
    id: str
    path: str
    state: Literal["queued", "running", "done", "failed"]
    created: float
    started: float | None
    finished: float | None
    error: str | None
    documents: list[dict[str, Any]]
    graph: dict[str, Any] | None


class SessionCreate(Strict):
    title: str = Field("", max_length=200)


class SessionOut(BaseModel):
    id: str
    title: str
    created: float
    updated: float
    turns: int
    owner: str = Field(description="The user who started it ('' from the CLI).")


class Turn(BaseModel):
    n: int
    created: float
    answer: AnswerOut


class SessionHistory(BaseModel):
    session: SessionOut
    turns: list[Turn]


class Deleted(BaseModel):
    deleted: str


class ModelCard(BaseModel):
    """An OpenAI-style model entry, with what Handbook knows about it."""

    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "handbook"
    backend: str
    chat_model: str
    loaded: bool
    load_seconds: float | None


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class Health(BaseModel):
    status: str


class Ready(BaseModel):
    ready: bool
    store: str
    documents: int
    models: dict[str, float | None]
    indexing: bool


class Error(BaseModel):
    error: str = Field(description="A stable code, e.g. unauthorized, not_found.")
    message: str = Field(description="What went wrong and what to do.")


# --- OpenAI-compatible chat completions ---------------------------------------------------


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")  # clients send name, tool fields...

    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):  # content parts: keep the text ones
            return " ".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")
        return self.content or ""


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # temperature, top_p, user... are accepted

    model: str = Field(max_length=200)
    messages: list[ChatMessage] = Field(min_length=1, max_length=200)
    stream: bool = False


# --- Ollama-compatible routes (/api/...) ---------------------------------------------------


class OllamaError(BaseModel):
    """Ollama's error shape: the `ollama` clients show `error` as the message."""

    error: str = Field(description="What went wrong and what to do.")


class OllamaChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # options, format, keep_alive, tools, think...

    model: str = Field(max_length=200)
    messages: list[ChatMessage] = Field(
        default_factory=list,
        max_length=200,
        description="The conversation; the last user message is the question. None: the "
        "model is loaded (`done_reason: load`), as Ollama does.",
    )
    stream: bool = Field(
        default=True, description="NDJSON objects, one per piece (Ollama's default)."
    )


class OllamaGenerateRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # system, context, options, format...

    model: str = Field(max_length=200)
    prompt: str = Field("", description="The question; empty: the model is loaded.")
    stream: bool = Field(
        default=True, description="NDJSON objects, one per piece (Ollama's default)."
    )


class OllamaShowRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # verbose

    model: str | None = Field(None, max_length=200)
    name: str | None = Field(None, max_length=200, description="Older clients' `model`.")
