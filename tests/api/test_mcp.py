"""The MCP server with the real `mcp` SDK client: over stdio (`python -m cli mcp`, as a
desktop assistant starts it) and over streamable HTTP (`/mcp` in a real `handbook serve`)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from tests.api.conftest import Server, start
from tests.conftest import ROOT, SAMPLES, run_cli

T = TypeVar("T")
ALICE, BOB = "alice-mcp-key-41", "bob-mcp-key-42"
TORQUE = "Wie viel Drehmoment für die Radschrauben?"  # answered on page 2 of the PDF
PRESSURE = "What is the maximum pressure of the HP-200?"
OFF_TOPIC = "Who won the 1954 World Cup?"
TOOLS = {"search", "ask", "list_documents"}


def environment(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HANDBOOK_")}
    env["HANDBOOK_HOME"] = str(home)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return env


@asynccontextmanager
async def over_stdio(home: Path, *options: str) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "cli", "mcp", *options], env=environment(home)
    )
    async with (
        stdio_client(params) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def run(home: Path, work: Callable[[ClientSession], Awaitable[T]]) -> T:
    async def main() -> T:
        async with over_stdio(home) as session:
            return await work(session)

    return asyncio.run(main())


def leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in leaves(inner)]
    return [exc]


def text(result: Any) -> str:
    return "".join(block.text for block in result.content if block.type == "text")


# --- stdio ------------------------------------------------------------------------------------


def test_stdio_lists_the_tools_and_the_document_template(own_index: Path) -> None:
    async def work(session: ClientSession) -> tuple[Any, Any, Any]:
        return (
            (await session.list_tools()).tools,
            (await session.list_resource_templates()).resource_templates,
            session.initialize_result,
        )

    tools, templates, init = run(own_index, work)
    assert {t.name for t in tools} == TOOLS
    by_name = {t.name: t for t in tools}
    assert "technical manuals" in (by_name["search"].description or "")
    assert "page" in (by_name["search"].description or "")
    assert "found" in (by_name["ask"].description or "")
    search_args = by_name["search"].input_schema
    assert search_args["required"] == ["query"]
    assert search_args["properties"]["k"]["anyOf"][0]["maximum"] == 20
    assert all(p.get("description") for p in search_args["properties"].values())
    assert by_name["ask"].input_schema["required"] == ["question"]
    assert all(t.annotations and t.annotations.read_only_hint for t in tools)
    assert [t.uri_template for t in templates] == ["handbook://documents/{doc}"]
    assert init is not None and init.server_info.name == "handbook"
    assert init.instructions and "ask" in init.instructions


def test_stdio_search_ask_and_read_a_document(own_index: Path) -> None:
    async def work(session: ClientSession) -> dict[str, Any]:
        found = {
            "search": await session.call_tool("search", {"query": "Drehmoment Radschrauben"}),
            "ask": await session.call_tool("ask", {"question": TORQUE}),
            "english": await session.call_tool("ask", {"question": PRESSURE}),
            "off": await session.call_tool("ask", {"question": OFF_TOPIC}),
            "docs": await session.call_tool("list_documents", {}),
            "resources": (await session.list_resources()).resources,
        }
        pdf = next(r for r in found["resources"] if str(r.name).endswith(".pdf"))
        found["read"] = await session.read_resource(pdf.uri)
        by_name = "handbook://documents/hydraulic_press_hp200.md"
        found["by_name"] = await session.read_resource(by_name)
        return found

    got = run(own_index, work)
    search = got["search"]
    assert not search.is_error, text(search)
    passages = search.structured_content["passages"]
    assert {p["title"] for p in passages} == {"Nordwagen Kompakt 3 - Werkstatthandbuch"}, passages
    assert all(p["path"].endswith("werkstatthandbuch_kompakt-3.pdf") for p in passages)
    torque = next(p for p in passages if "120 Nm" in p["text"])  # the torque table
    assert torque["page"] == 2 and torque["section"].startswith("2 Technische Daten"), torque
    assert [p["score"] for p in passages] == sorted((p["score"] for p in passages), reverse=True)
    assert json.loads(text(search)) == search.structured_content, "the same in the text block"

    ask = got["ask"].structured_content
    assert ask["found"] is True and ask["language"] == "de", ask
    assert "120 Nm" in ask["answer"] and ask["answer"].startswith("Laut den Handbüchern"), ask
    cited = ask["citations"][0]
    assert cited["title"] == "Nordwagen Kompakt 3 - Werkstatthandbuch" and cited["page"] == 2
    assert "[1]" in ask["answer"] and cited["n"] == 1
    english = got["english"].structured_content
    assert english["found"] and english["language"] == "en" and "210 bar" in english["answer"]
    assert english["citations"][0]["path"].endswith("hydraulic_press_hp200.md")
    off = got["off"].structured_content
    assert not got["off"].is_error and off["found"] is False, off

    documents = got["docs"].structured_content["documents"]
    assert sorted(d["name"] for d in documents) == sorted(p.name for p in SAMPLES.iterdir())
    assert {r.uri for r in got["resources"]} == {
        f"handbook://documents/{d['id']}" for d in documents
    }
    pdf = json.loads(got["read"].contents[0].text)
    assert pdf["name"] == "werkstatthandbuch_kompakt-3.pdf" and got["read"].contents[0].mime_type
    pages = [p["page"] for p in pdf["passages"]]
    assert len(pages) == pdf["chunks"] and pages == sorted(pages) and pages[0] == 1
    assert any("Radschrauben" in p["text"] and p["page"] == 2 for p in pdf["passages"])
    assert all(set(p) == {"page", "section", "text"} for p in pdf["passages"])
    markdown = json.loads(got["by_name"].contents[0].text)
    assert any("210 bar" in p["text"] for p in markdown["passages"])
    assert any(p["section"] == "2 Technical Data" for p in markdown["passages"])


def test_stdio_errors_are_mcp_errors_with_the_cli_messages(own_index: Path, tmp_path: Path) -> None:
    async def work(session: ClientSession) -> dict[str, Any]:
        found: dict[str, Any] = {
            "k": await session.call_tool("search", {"query": "pump", "k": 50}),
            "empty": await session.call_tool("ask", {"question": "   "}),
            "unknown_doc": await session.call_tool(
                "ask", {"question": "pump", "documents": ["nope.pdf"]}
            ),
            "extra": await session.call_tool("list_documents", {"all": True}),
        }
        for name, call in {
            "resource": session.read_resource("handbook://documents/nope.pdf"),
            "scheme": session.read_resource("file:///etc/passwd"),
            "tool": session.call_tool("delete_everything", {}),
        }.items():
            try:
                await call
            except MCPError as exc:
                found[name] = exc
        return found

    got = run(own_index, work)
    for name in ("k", "empty", "unknown_doc", "extra"):
        assert got[name].is_error, (name, got[name])
    assert text(got["k"]) == "k: Input should be less than or equal to 20"
    assert text(got["empty"]) == "question: String should have at least 1 character"
    unknown = "No indexed document matches 'nope.pdf'. See `handbook docs list`."
    assert text(got["unknown_doc"]) == unknown, "as `handbook ask --doc nope.pdf` says"
    assert text(got["extra"]).startswith("all: Extra inputs are not permitted")
    assert got["resource"].error.message == unknown
    assert "Unknown resource 'file:///etc/passwd'" in got["scheme"].error.message
    assert "Unknown tool 'delete_everything'" in got["tool"].error.message

    empty = tmp_path / "empty-home"
    nothing = run(empty, lambda s: s.call_tool("search", {"query": "pump"}))
    assert nothing.is_error and text(nothing) == (
        "Nothing is indexed yet. Run `handbook index PATH` first."
    )
    cli = subprocess.run(
        [sys.executable, "-m", "cli", "search", "pump"],
        env=environment(empty), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert cli.returncode == 1 and text(nothing) in cli.stderr, "the CLI's message"


def test_stdio_frees_the_data_folder_between_calls(own_index: Path, tmp_path: Path) -> None:
    """An assistant keeps its server running: the index is held while it is used, free again
    `--release-after` seconds after the last call (so `handbook index` can run), and opened
    again, with what was indexed meanwhile, at the next call."""
    from app.handbook import HomeLock
    from handbook.errors import StoreLocked

    def free() -> bool:
        lock = HomeLock(own_index)
        try:
            lock.acquire()
        except StoreLocked:
            return False
        lock.release()
        return True

    manual = tmp_path / "pump_tp9.md"
    manual.write_text("# TP-9 pump\n\nThe TP-9 pump delivers 42 litres per minute.\n", "utf-8")

    async def work(session: ClientSession) -> tuple[bool, float, Any, Any]:
        await session.call_tool("search", {"query": "HP-200 pressure", "k": 1})
        held = not free()
        waited = 0.0
        while not free() and waited < 60:
            await asyncio.sleep(0.2)
            waited += 0.2
        indexed = await asyncio.to_thread(run_cli, "index", str(manual), home=own_index)
        found = await session.call_tool(
            "ask", {"question": "How many litres does the TP-9 deliver?"}
        )
        return held, waited, indexed, found

    async def main() -> tuple[bool, float, Any, Any]:
        async with over_stdio(own_index, "--release-after", "2") as session:
            return await work(session)

    held, waited, indexed, found = asyncio.run(main())
    assert held, "the index is held right after a call"
    assert 0 < waited < 60, waited
    assert indexed.returncode == 0, indexed.stderr
    answer = found.structured_content
    assert answer["found"] and "42 litres" in answer["answer"], answer
    assert answer["citations"][0]["path"].endswith("pump_tp9.md")


def test_stdout_carries_only_the_protocol(own_index: Path) -> None:
    """Loading the models and answering write nothing but JSON-RPC lines to stdout; the
    server starts without loading a model (it answers initialize before any is needed)."""
    lines = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "raw", "version": "0"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
         "params": {"name": "ask", "arguments": {"question": PRESSURE}}},
    ]  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "cli", "mcp"],
        env=environment(own_index),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdin is not None and process.stdout is not None
    out: list[str] = []
    try:
        for line in lines:
            process.stdin.write(json.dumps(line) + "\n")
        process.stdin.flush()
        while not out or json.loads(out[-1]).get("id") != 2:  # any stray output: JSONDecodeError
            out.append(process.stdout.readline())
            assert out[-1], "the server ended before it answered"
        rest, err = process.communicate(timeout=60)  # closes stdin: the server ends
    finally:
        process.kill()
    replies = [json.loads(line) for line in [*out, *rest.splitlines()]]
    assert replies[0]["id"] == 1 and replies[0]["result"]["serverInfo"]["name"] == "handbook"
    answer = replies[-1]["result"]["structuredContent"]
    assert replies[-1]["id"] == 2 and answer["found"] and "210 bar" in answer["answer"]
    assert process.returncode == 0, err


# --- over HTTP in `handbook serve` ------------------------------------------------------------


@pytest.fixture(scope="module")
def server(indexed_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("mcp")
    shutil.copytree(indexed_home, root / "home")
    (root / "keys.txt").write_text(f"{ALICE} alice reader\n{BOB} bob reader\n", "utf-8")
    env = {"HANDBOOK_API__KEYS_FILE": str(root / "keys.txt")}
    yield from start(root / "home", root / "server.log", **env)


@asynccontextmanager
async def over_http(
    server: Server, key: str | None, seen: list[Any] | None = None
) -> AsyncIterator[ClientSession]:
    """The SDK's client with `Authorization: Bearer key`; `seen` collects its HTTP responses."""
    import httpx2

    async def record(response: httpx2.Response) -> None:
        if seen is not None:
            seen.append(response)

    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with (
        httpx2.AsyncClient(
            headers=headers, timeout=300, event_hooks={"response": [record]}
        ) as http,
        streamable_http_client(f"{server.url}/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def test_http_with_a_readers_key(server: Server) -> None:
    async def work() -> dict[str, Any]:
        async with over_http(server, ALICE) as session:
            tools = (await session.list_tools()).tools
            search = await session.call_tool("search", {"query": "HP-200 pressure", "k": 3})
            ask = await session.call_tool("ask", {"question": TORQUE})
            off = await session.call_tool("ask", {"question": OFF_TOPIC})
            resources = (await session.list_resources()).resources
            read = await session.read_resource(resources[0].uri)
            bad = await session.call_tool("search", {"query": "pump", "k": 0})
            return locals()

    got = asyncio.run(work())
    assert {t.name for t in got["tools"]} == TOOLS
    passages = got["search"].structured_content["passages"]
    assert len(passages) == 3 and passages[0]["path"].endswith("hydraulic_press_hp200.md")
    answer = got["ask"].structured_content
    assert answer["found"] and "120 Nm" in answer["answer"] and answer["language"] == "de"
    assert answer["citations"][0]["page"] == 2
    assert got["off"].structured_content["found"] is False
    assert json.loads(got["read"].contents[0].text)["passages"]
    assert got["bad"].is_error and text(got["bad"]) == (
        "k: Input should be greater than or equal to 1"
    )


@pytest.mark.parametrize("key", [None, "wrong-key"])
def test_http_without_a_valid_key_is_refused(server: Server, key: str | None) -> None:
    seen: list[Any] = []

    async def work() -> None:
        async with over_http(server, key, seen) as session:
            await session.list_tools()

    with pytest.raises(BaseException) as refused:  # in the SDK's task groups
        asyncio.run(work())
    assert any(isinstance(e, MCPError) for e in leaves(refused.value)), refused.value
    assert seen and {r.status_code for r in seen} == {401}, seen
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    raw = httpx.post(f"{server.url}/mcp", json={}, headers=headers)
    assert raw.status_code == 401 and raw.json()["error"] == "unauthorized"
    assert "Authorization: Bearer KEY" in raw.json()["message"]


def test_an_mcp_session_answers_only_the_user_who_opened_it(server: Server) -> None:
    """Bob, another reader, cannot use Alice's session id: it is as if it did not exist."""
    listing = {"jsonrpc": "2.0", "id": 7, "method": "tools/list"}

    async def work() -> tuple[str, int, int]:
        seen: list[Any] = []
        async with over_http(server, ALICE, seen) as session:
            session_id = seen[0].headers["mcp-session-id"]
            assert session.initialize_result is not None
            headers = {
                "Mcp-Session-Id": session_id,
                "Mcp-Protocol-Version": session.initialize_result.protocol_version,
                "Accept": "application/json, text/event-stream",
            }
            async with httpx.AsyncClient(base_url=server.url, timeout=60) as raw:
                as_bob = {**headers, "Authorization": f"Bearer {BOB}"}
                as_alice = {**headers, "Authorization": f"Bearer {ALICE}"}
                bob = await raw.post("/mcp", json=listing, headers=as_bob)
                alice = await raw.post("/mcp", json=listing, headers=as_alice)
            return session_id, bob.status_code, alice.status_code

    session_id, bob, alice = asyncio.run(work())
    assert session_id and bob == 404 and alice == 200, (bob, alice)


def test_http_without_keys_configured_is_the_local_user(indexed_home: Path, tmp_path: Path) -> None:
    """As the rest of the API: on loopback without keys, no key is needed; and, as the rest of
    the API, only requests addressed to a loopback name are answered (a page that points its
    own name at 127.0.0.1, DNS rebinding, gets 403)."""
    shutil.copytree(indexed_home, tmp_path / "home")

    async def work(plain: Server) -> Any:
        async with over_http(plain, None) as session:
            return await session.call_tool("list_documents", {})

    for plain in start(tmp_path / "home", tmp_path / "server.log"):
        listed = asyncio.run(work(plain))
        assert not listed.is_error and len(listed.structured_content["documents"]) == 4
        port = plain.url.rsplit(":", 1)[1]
        with httpx.Client(base_url=plain.url, timeout=60) as raw:
            for path in ("/", "/v1/documents", "/api/tags", "/mcp"):
                rebound = raw.get(path, headers={"Host": f"evil.example:{port}"})
                assert rebound.status_code == 403, (path, rebound.text)
                assert "localhost" in rebound.json()["message"]
            for name in ("localhost", "127.0.0.1", "[::1]"):
                local = raw.get("/v1/documents", headers={"Host": f"{name}:{port}"})
                assert local.status_code == 200, (name, local.text)
