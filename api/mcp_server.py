"""Handbook as an MCP server, for AI assistants (Claude Desktop, IDE agents): tools to search
the manuals, ask them (a cited answer) and list the documents; each document as a resource
with its passages.

The same server runs over stdio (`handbook mcp`: a Handbook of its own, opened at the first
call, so that the assistant starts it at once, and closed after a while without calls, so that
`handbook index` can run) and over streamable HTTP at `/mcp` in `handbook serve` (the API's
Handbook, keys and roles: `api.mcp_http`).

Errors are MCP errors: a tool's failure (nothing indexed, an unknown document, a bad argument)
is a tool result with `isError` and the message the CLI or the API gives; an unknown tool or
resource is a JSON-RPC error.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol
from urllib.parse import quote, unquote

import mcp_types as types
from mcp.server.lowlevel import Server
from mcp.shared.exceptions import MCPError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api.schemas import MAX_DOCS, MAX_K, QUESTION_CHARS, DocumentOut
from api.slots import AnswerSlots
from handbook import version
from handbook.errors import HandbookError
from handbook.types import Citation, SearchHit

if TYPE_CHECKING:
    from mcp.server.context import ServerRequestContext

    from app.handbook import Handbook
    from handbook.config import Settings

log = logging.getLogger("handbook.mcp")
DOCUMENT_URI = "handbook://documents/{doc}"
RELEASE_AFTER_S = 300.0
"""`handbook mcp` closes the index this long after the last call (`--release-after`)."""
INSTRUCTIONS = (
    "Handbook answers from the user's indexed technical manuals (German and English). Use "
    "`ask` for a question that needs an answer with citations (document, page); `search` for "
    "the manuals' own passages on a topic; `list_documents` to see which manuals there are. "
    "Cite the document and page Handbook gives. If `found` is false, the manuals do not say: "
    "tell the user so rather than answering from elsewhere."
)


# --- arguments and results --------------------------------------------------------------------


class Arguments(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    documents: list[str] = Field(
        default_factory=list,
        max_length=MAX_DOCS,
        description="Only these documents: ids or file names from list_documents. "
        "Leave empty to use every manual.",
    )
    language: Literal["de", "en"] | None = Field(
        None, description="Only passages in this language (de or en). Usually leave empty."
    )


class SearchArguments(Arguments):
    query: str = Field(
        min_length=1,
        max_length=QUESTION_CHARS,
        description="What to look for, in German or English: a few words or a question, e.g. "
        "'HP-200 maximum pressure' or 'Drehmoment Radschrauben'.",
    )
    k: int | None = Field(
        None, ge=1, le=MAX_K, description=f"How many passages to return (1 to {MAX_K}); "
        "empty: the server's setting."
    )  # fmt: skip


class AskArguments(Arguments):
    question: str = Field(
        min_length=1,
        max_length=QUESTION_CHARS,
        description="The question, in German or English; the answer comes in the same language.",
    )


class NoArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Passages(BaseModel):
    query: str
    language: str = Field(description="The language the query was read as.")
    passages: list[SearchHit] = Field(description="Best first: document, page, section, text.")


class AnswerResult(BaseModel):
    question: str
    answer: str = Field(description="In the question's language; [n] marks cite `citations`.")
    found: bool = Field(description="False: the manuals do not answer this question.")
    language: str
    answer_mode: str = Field(description="extract (the manuals' own words) or generate.")
    citations: list[Citation]


class Documents(BaseModel):
    documents: list[DocumentOut]


# --- where the Handbook comes from ------------------------------------------------------------


class Library(Protocol):
    """What the tools need: the Handbook while they use it, and the answer slots."""

    def use(self) -> AbstractAsyncContextManager[Handbook]:
        """The Handbook, for one call (opened first, where the library opens it)."""
        ...

    @property
    def slots(self) -> AnswerSlots:
        """`api.max_concurrent_answers` slots; `SlotsBusy` if none frees up in time."""
        ...


class OwnHandbook:
    """For `handbook mcp`: a Handbook of its own, opened at the first call and closed again
    `release_after` seconds after the last one ended. An assistant keeps its server running
    all day; while the Handbook is closed, the data folder is free for `handbook index`."""

    def __init__(self, settings: Settings, release_after: float = RELEASE_AFTER_S) -> None:
        self._settings = settings
        self._release_after = release_after
        self._opened: Handbook | None = None
        self._stack = AsyncExitStack()
        self._guard = asyncio.Lock()
        self._users = 0
        self._release: asyncio.Task[None] | None = None
        self.slots = AnswerSlots.of(settings.api)

    @asynccontextmanager
    async def use(self) -> AsyncIterator[Handbook]:
        async with self._guard:
            if self._release is not None:
                self._release.cancel()
                self._release = None
            if self._opened is None:
                from app.handbook import Handbook

                self._opened = await self._stack.enter_async_context(Handbook(self._settings))
            self._users += 1
            handbook = self._opened
        try:
            yield handbook
        finally:
            self._users -= 1
            if self._users == 0:
                self._release = asyncio.create_task(self._close_when_idle())

    async def _close_when_idle(self) -> None:
        await asyncio.sleep(self._release_after)
        async with self._guard:
            if self._users == 0 and self._opened is not None:
                log.info("No call for %g s: closed the index (its folder is free)",
                         self._release_after)  # fmt: skip
                await self.aclose()

    async def aclose(self) -> None:
        if self._release is not None and self._release is not asyncio.current_task():
            self._release.cancel()
        self._opened = None
        await self._stack.aclose()


# --- the tools --------------------------------------------------------------------------------


async def search(library: Library, args: SearchArguments) -> Passages:
    async with library.use() as hb:
        retriever = await hb.retriever()
        where = hb.search_filter(args.documents, args.language)
        result = await retriever.search(args.query, k=args.k, where=where)
    hits = [SearchHit.of(p) for p in result.passages]
    return Passages(query=args.query, language=result.language, passages=hits)


async def ask(library: Library, args: AskArguments) -> AnswerResult:
    """The answer path of `POST /v1/ask`: the configured answer mode, in an answer slot."""
    async with library.use() as hb:
        where = hb.search_filter(args.documents, args.language)
        answerer = await hb.answerer()
        async with library.slots.hold():
            answer = await answerer.ask(args.question, where=where)
    return AnswerResult(**answer.to_dict())


async def list_documents(library: Library, args: NoArguments) -> Documents:
    async with library.use() as hb:
        records = hb.registry.all()
    return Documents(documents=[DocumentOut.of(r) for r in records])


@dataclass(frozen=True)
class ToolSpec:
    description: str
    """What the assistant reads to choose the tool: plain words."""
    arguments: type[BaseModel]
    result: type[BaseModel]
    run: Callable[[Library, Any], Awaitable[BaseModel]]

    def tool(self, name: str) -> types.Tool:
        return types.Tool(
            name=name,
            description=self.description,
            input_schema=self.arguments.model_json_schema(),
            output_schema=self.result.model_json_schema(),
            annotations=types.ToolAnnotations(read_only_hint=True, open_world_hint=False),
        )


TOOLS = {
    "search": ToolSpec(
        "Search the indexed technical manuals (German and English) and return the best "
        "matching passages, each with its document, page, section and score. Use it to read "
        "what the manuals say about a topic, in their own words.",
        SearchArguments,
        Passages,
        search,
    ),
    "ask": ToolSpec(
        "Ask the indexed technical manuals a question and get an answer in the question's "
        "language, with citations (document, page, section). `found` is false when the manuals "
        "do not answer it; then say so instead of guessing.",
        AskArguments,
        AnswerResult,
        ask,
    ),
    "list_documents": ToolSpec(
        "List the indexed manuals: id, file name, title, language, pages and passages. Use an "
        "id or file name to limit search or ask, or to read the document as the resource "
        "handbook://documents/{id}.",
        NoArguments,
        Documents,
        list_documents,
    ),
}


def invalid(exc: ValidationError) -> str:
    """A bad argument, named as the API's 422 names a field: `k: Input should be ...`."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}" for e in exc.errors()
    )


async def call_tool(library: Library, name: str, arguments: dict[str, Any]) -> types.CallToolResult:
    if name not in TOOLS:
        raise MCPError(types.INVALID_PARAMS, f"Unknown tool {name!r}; tools/list lists them.")
    spec = TOOLS[name]
    try:
        result = await spec.run(library, spec.arguments.model_validate(arguments))
    except ValidationError as exc:
        return failed(invalid(exc))
    except HandbookError as exc:  # the message the CLI prints after "Error:"
        return failed(str(exc))
    structured = result.model_dump(mode="json")
    text = json.dumps(structured, ensure_ascii=False)
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)], structured_content=structured
    )


def failed(message: str) -> types.CallToolResult:
    content = [types.TextContent(type="text", text=message)]
    return types.CallToolResult(content=content, is_error=True)


# --- documents as resources -------------------------------------------------------------------


def document_uri(doc_id: str) -> str:
    return DOCUMENT_URI.format(doc=quote(doc_id, safe=""))


async def resource_list(library: Library) -> list[types.Resource]:
    async with library.use() as hb:
        records = hb.registry.all()
    return [
        types.Resource(
            uri=document_uri(r.doc_id),
            name=DocumentOut.of(r).name,
            title=r.title,
            description=f"{r.title}: {r.format}, {r.language}, "
            f"{r.pages or '?'} pages, {r.chunks} passages",
            mime_type="application/json",
        )
        for r in records
    ]


TEMPLATE = types.ResourceTemplate(
    uri_template=DOCUMENT_URI,
    name="document",
    title="A manual's passages",
    description="An indexed manual with its passages in order (page, section, text); {doc} is "
    "its id or file name (list_documents).",
    mime_type="application/json",
)


async def read_document(library: Library, uri: str) -> types.ReadResourceResult:
    prefix = DOCUMENT_URI.split("{")[0]
    if not uri.startswith(prefix) or not uri[len(prefix) :]:
        raise MCPError(types.INVALID_PARAMS, f"Unknown resource {uri!r}; use {DOCUMENT_URI}.")
    try:
        async with library.use() as hb:
            ids = hb.search_filter((unquote(uri[len(prefix) :]),)).doc_ids  # as `--doc`
            documents = [await _document(hb, doc_id) for doc_id in ids]
    except HandbookError as exc:
        raise MCPError(types.INVALID_PARAMS, str(exc), {"uri": uri}) from None
    body = documents[0] if len(documents) == 1 else {"documents": documents}
    text = json.dumps(body, ensure_ascii=False)
    contents = types.TextResourceContents(uri=uri, text=text, mime_type="application/json")
    return types.ReadResourceResult(contents=[contents])


async def _document(hb: Handbook, doc_id: str) -> dict[str, Any]:
    record = hb.registry.get(doc_id)
    assert record is not None, "search_filter found it"
    store = await hb.store()
    found = await store.get(sorted(await store.chunk_ids(doc_id)))
    chunks = sorted((chunk for chunk, _ in found), key=lambda c: c.ordinal)
    passages = [{"page": c.page, "section": c.section, "text": c.text} for c in chunks]
    shown = DocumentOut.of(record).model_dump()
    return {**shown, "uri": document_uri(doc_id), "passages": passages}


# --- the server -------------------------------------------------------------------------------


def build_server(library: Library) -> Server[Any]:
    """The MCP server over `library`; run it with a transport (stdio, or the HTTP sessions)."""

    async def on_list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[spec.tool(name) for name, spec in TOOLS.items()])

    async def on_call_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        return await call_tool(library, params.name, params.arguments or {})

    async def on_list_resources(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        return types.ListResourcesResult(resources=await resource_list(library))

    async def on_list_resource_templates(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        return types.ListResourceTemplatesResult(resource_templates=[TEMPLATE])

    async def on_read_resource(
        ctx: ServerRequestContext[Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        return await read_document(library, str(params.uri))

    return Server(
        "handbook",
        version=version(),
        title="Handbook",
        description="Answers from your technical manuals, with citations (document, page).",
        instructions=INSTRUCTIONS,
        on_list_tools=on_list_tools,
        on_call_tool=on_call_tool,
        on_list_resources=on_list_resources,
        on_list_resource_templates=on_list_resource_templates,
        on_read_resource=on_read_resource,
    )


def run_stdio(settings: Settings, release_after: float = RELEASE_AFTER_S) -> None:
    """`handbook mcp`: serve until the client closes stdin. stdout carries only the protocol
    (the SDK points file descriptor 1 at stderr while it serves); logs go to stderr."""
    import anyio
    from mcp.server.stdio import stdio_server

    logging.basicConfig(level=logging.WARNING, format="handbook mcp: %(levelname)s %(message)s")

    async def main() -> None:
        library = OwnHandbook(settings, release_after)
        server = build_server(library)
        try:
            async with stdio_server() as (read, write):
                await server.run(read, write, server.create_initialization_options())
        finally:
            await library.aclose()

    anyio.run(main)
