"""Users and roles against a real `handbook serve`: every route tried with no key, a wrong key,
a reader, another reader and an admin (the role matrix), and two users' sessions kept apart
while both are used at once."""

from __future__ import annotations

import shutil
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.auth import ROLE_KEY
from handbook.config import Settings
from tests.api.conftest import Server, start, wait_for
from tests.api.test_abuse import raw, request

ALICE, BOB, CAROL = "alice-key-7d1f0c", "bob-key-92ab44", "carol-key-0e55d1"
PLAIN_ONE, PLAIN_TWO = "plain-key-one-31", "plain-key-two-32"
KEYS_FILE = f"""# name and role per key
{ALICE} alice reader
{BOB} bob reader
{CAROL} carol admin
"""
OFF_TOPIC = "Who won the 1954 World Cup?"  # no passage: answered without the model
PUBLIC = {("GET", "/healthz"), ("GET", "/readyz")}


@pytest.fixture(scope="module")
def server(indexed_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Named users from a keys file, plain keys from HANDBOOK_API_KEYS; short answers (the
    roles are what is tested, not the model's prose)."""
    root = tmp_path_factory.mktemp("roles")
    shutil.copytree(indexed_home, root / "home")
    (root / "keys.txt").write_text(KEYS_FILE, "utf-8")
    yield from start(
        root / "home",
        root / "server.log",
        HANDBOOK_API_KEYS=f"{PLAIN_ONE},{PLAIN_TWO}",
        HANDBOOK_API__KEYS_FILE=str(root / "keys.txt"),
        HANDBOOK_CHAT__MAX_TOKENS="8",
        HANDBOOK_ANSWER__PASSAGES="1",
    )


def client(server: Server, key: str | None) -> httpx.Client:
    return server.client(key=key)


def new_session(server: Server, key: str) -> str:
    with client(server, key) as c:
        made = c.post("/v1/sessions", json={"title": f"of {key[:5]}"})
        assert made.status_code == 201, made.text
        return str(made.json()["id"])


def upload(server: Server, name: str) -> dict[str, Any]:
    text = f"# {name}\n\nThe test pump TP-{name[-4:]} delivers 9 litres per minute.\n"
    with client(server, CAROL) as c:
        job = c.post("/v1/documents", files={"file": (name, text.encode(), "text/markdown")})
        assert job.status_code == 202, job.text
        return wait_for(c, job.json())


@dataclass
class Cell:
    """One route, and the status each kind of caller must get."""

    method: str
    template: str
    request: Callable[[Server, str], tuple[str, dict[str, Any]]]
    """(caller's key) -> (concrete path, httpx keyword arguments); may create what it needs."""
    reader: int
    other: int
    admin: int

    @property
    def role(self) -> str:
        return "admin" if self.reader == 403 else "reader"


def fixed(path: str, **kwargs: Any) -> Callable[[Server, str], tuple[str, dict[str, Any]]]:
    return lambda server, key: (path, kwargs)


def alices_session(server: Server, key: str) -> tuple[str, dict[str, Any]]:
    return f"/v1/sessions/{new_session(server, ALICE)}", {}


def a_document(server: Server, key: str) -> tuple[str, dict[str, Any]]:
    """An admin gets a fresh upload to delete; anyone else the indexed sample (a 403 keeps it)."""
    if key == CAROL:
        job = upload(server, f"doomed-{uuid.uuid4().hex[:6]}.md")
        return f"/v1/documents/{job['documents'][0]['id']}", {}
    with client(server, CAROL) as c:
        return f"/v1/documents/{c.get('/v1/documents').json()[0]['id']}", {}


def a_job(server: Server, key: str) -> tuple[str, dict[str, Any]]:
    with client(server, CAROL) as c:
        jobs = c.get("/v1/jobs").json()
    job_id = jobs[0]["id"] if jobs else upload(server, "job-target.md")["id"]
    return f"/v1/jobs/{job_id}", {}


def an_upload(server: Server, key: str) -> tuple[str, dict[str, Any]]:
    name = f"upload-{uuid.uuid4().hex[:6]}.md"
    return "/v1/documents", {"files": {"file": (name, b"# Upload\n\nText.\n", "text/markdown")}}


CHAT = {"model": "handbook", "messages": [{"role": "user", "content": "What is the HP-200?"}]}
MCP_OPEN = {
    "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "role-matrix", "version": "0"}},
}  # fmt: skip
MCP_ACCEPT = {"Accept": "application/json, text/event-stream"}
OLLAMA_CHAT = {"model": "handbook", "messages": [{"role": "user", "content": OFF_TOPIC}],
               "stream": False}  # fmt: skip
OLLAMA_GENERATE = {"model": "handbook:latest", "prompt": OFF_TOPIC, "stream": False}
MATRIX = [
    Cell("GET", "/v1/models", fixed("/v1/models"), 200, 200, 200),
    Cell(
        "POST", "/v1/search", fixed("/v1/search", json={"query": "HP-200 pressure"}), 200, 200, 200
    ),
    Cell("POST", "/v1/ask", fixed("/v1/ask", json={"question": OFF_TOPIC}), 200, 200, 200),
    Cell("POST", "/v1/chat/completions", fixed("/v1/chat/completions", json=CHAT), 200, 200, 200),
    Cell("GET", "/v1/documents", fixed("/v1/documents"), 200, 200, 200),
    Cell("GET", "/v1/documents/{doc_id}", a_document, 200, 200, 200),
    Cell("POST", "/v1/documents", an_upload, 403, 403, 202),
    Cell("GET", "/v1/jobs", fixed("/v1/jobs"), 403, 403, 200),
    Cell("GET", "/v1/jobs/{job_id}", a_job, 403, 403, 200),
    Cell("DELETE", "/v1/documents/{doc_id}", a_document, 403, 403, 200),
    Cell("POST", "/v1/sessions", fixed("/v1/sessions", json={}), 201, 201, 201),
    Cell("GET", "/v1/sessions", fixed("/v1/sessions"), 200, 200, 200),
    Cell("GET", "/v1/sessions/{session_id}", alices_session, 200, 404, 200),
    Cell("DELETE", "/v1/sessions/{session_id}", alices_session, 200, 404, 200),
    Cell("POST", "/api/chat", fixed("/api/chat", json=OLLAMA_CHAT), 200, 200, 200),
    Cell("POST", "/api/generate", fixed("/api/generate", json=OLLAMA_GENERATE), 200, 200, 200),
    Cell("GET", "/api/tags", fixed("/api/tags"), 200, 200, 200),
    Cell("POST", "/api/show", fixed("/api/show", json={"model": "handbook"}), 200, 200, 200),
    Cell("GET", "/api/version", fixed("/api/version"), 200, 200, 200),
    Cell("POST", "/mcp", fixed("/mcp", json=MCP_OPEN, headers=MCP_ACCEPT), 200, 200, 200),
]
"""Every /v1 and /api (Ollama-compatible) operation, and every app served beside the routers
(MCP). `reader` is alice, whose session the session routes use; `other` is bob, another reader;
`admin` is carol."""
PAGES = {"/", "/static", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
"""Outside the OpenAPI schema and open to all: the web page, its files and the API docs."""


def served(routes: list[Any]) -> Iterator[Any]:
    """Every route the app serves, those of included routers too."""
    for route in routes:
        inner = getattr(route, "original_router", None)  # FastAPI's included router
        yield from served(inner.routes) if inner is not None else [route]


def test_every_route_with_every_kind_of_caller(server: Server, settings: Settings) -> None:
    """The role matrix. It is checked against the app's OpenAPI schema, so a new route without
    a row here (and so without a tested role) fails, as does a row whose role the schema does
    not declare; and against the app's routes: an app served outside the schema (MCP) needs a
    row too, and a `RoleGuard` declaring that row's role."""
    from api.app import create_app
    from api.auth import RoleGuard

    app = create_app(settings)
    schema = app.openapi()["paths"]
    operations = {(m.upper(), t) for t, ops in schema.items() for m in ops}
    documented = [c for c in MATRIX if c.template in schema]
    assert operations - PUBLIC == {(c.method, c.template) for c in documented}, "a row per route"
    for cell in documented:
        declared = schema[cell.template][cell.method.lower()].get(ROLE_KEY)
        assert declared == cell.role, (cell.method, cell.template, declared)
    apart = {r.path: r for r in served(app.routes) if r.path not in schema and r.path not in PAGES}
    assert set(apart) == {c.template for c in MATRIX if c.template not in schema}, "a row each"
    for cell in MATRIX:
        if cell.template in apart:
            guard = getattr(apart[cell.template], "endpoint", None)
            assert isinstance(guard, RoleGuard) and guard.role == cell.role, cell.template

    for cell in MATRIX:
        callers = [
            (None, 401), ("wrong-key", 401), (ALICE, cell.reader), (BOB, cell.other),
            (CAROL, cell.admin),
        ]  # fmt: skip
        for key, expected in callers:
            path, kwargs = cell.request(server, key or "")
            with client(server, key) as c:
                got = c.request(cell.method, path, **kwargs)
            where = (cell.method, cell.template, key)
            assert got.status_code == expected, (*where, got.status_code, got.text[:300])
            if expected >= 400:
                body = got.json()
                # Ollama's shape on /api: `error` is the message, which its clients show.
                ollama = cell.template.startswith("/api/")
                assert set(body) == ({"error"} if ollama else {"error", "message"}), (where, body)
                message = body["error"] if ollama else body["message"]
                assert "Traceback" not in message
                if expected == 401:
                    assert "Bearer" in message, (where, body)
            if expected == 403:
                assert "admin role" in got.json()["message"], where
            if expected == 404:  # another user's session: as if it did not exist
                assert "There is no session" in got.json()["message"], where
    for method, path in PUBLIC:
        for key in (None, "wrong-key", ALICE, CAROL):
            with client(server, key) as c:
                assert c.request(method, path).status_code == 200, (method, path, key)


def test_a_reader_is_refused_an_upload_before_its_body_is_read(server: Server) -> None:
    """As for a missing key: a reader cannot make the server take in an upload."""
    head = request(
        "POST",
        "/v1/documents",
        b"Authorization: Bearer " + ALICE.encode(),
        b"Content-Type: multipart/form-data; boundary=x",
        b"Content-Length: 1000000",
    )
    refused = raw(server, head)  # the body never comes: reading it would end in a 408
    assert refused.status == 403, refused
    assert refused.json()["error"] == "forbidden"
    assert refused.headers.get("connection") == "close"


def test_sessions_listing_is_per_user_and_all_is_for_admins(server: Server) -> None:
    alices, bobs = new_session(server, ALICE), new_session(server, BOB)
    with client(server, ALICE) as alice, client(server, CAROL) as carol:
        mine = {s["id"]: s for s in alice.get("/v1/sessions").json()}
        assert alices in mine and bobs not in mine
        assert {s["owner"] for s in mine.values()} == {"alice"}
        refused = alice.get("/v1/sessions", params={"all": "true"})
        assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
        everyone = {s["id"] for s in carol.get("/v1/sessions", params={"all": "true"}).json()}
        assert {alices, bobs} <= everyone
        assert alices not in {s["id"] for s in carol.get("/v1/sessions").json()}, "own by default"


def test_plain_keys_are_each_their_own_user(server: Server) -> None:
    """HANDBOOK_API_KEYS=k1,k2 keeps working (both may change the library, as before users
    existed), but a conversation started with k1 is not listed for k2."""
    started = new_session(server, PLAIN_ONE)
    with client(server, PLAIN_ONE) as one, client(server, PLAIN_TWO) as two:
        assert started in {s["id"] for s in one.get("/v1/sessions").json()}
        assert started not in {s["id"] for s in two.get("/v1/sessions").json()}
        owner = one.get(f"/v1/sessions/{started}").json()["session"]["owner"]
        assert owner.startswith("key-") and PLAIN_ONE not in owner, "the name shows no key"
        assert two.get("/v1/jobs").status_code == 200, "a plain key is an admin, as before"
    with client(server, ALICE) as alice:
        assert alice.get(f"/v1/sessions/{started}").status_code == 404


def test_two_users_asking_at_once_each_see_only_their_own(server: Server) -> None:
    """Alice and Bob create sessions and ask in them at the same time, through the REST API and
    streamed; afterwards each session holds only its owner's questions, each user lists only
    their own sessions, and neither can read or continue the other's."""
    questions = {
        ALICE: ["My name is Alice. What is the maximum pressure of the HP-200?", "Who am I?"],
        BOB: ["My name is Bob. Wie viel Drehmoment für die Radschrauben?", "Wer bin ich?"],
    }
    made: dict[str, str] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def converse(key: str) -> None:
        try:
            with client(server, key) as c:
                barrier.wait(timeout=30)
                session = c.post("/v1/sessions", json={}).json()["id"]
                made[key] = session
                for n, question in enumerate(questions[key]):
                    body = {"question": question, "session": session, "stream": n == 1}
                    answer = c.post("/v1/ask", json=body)
                    assert answer.status_code == 200, answer.text
        except BaseException as exc:  # re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=converse, args=(key,)) for key in questions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert not errors, errors
    for key, other in ((ALICE, BOB), (BOB, ALICE)):
        with client(server, key) as c:
            turns = c.get(f"/v1/sessions/{made[key]}").json()["turns"]
            assert [t["answer"]["question"] for t in turns] == questions[key]
            listed = {s["id"] for s in c.get("/v1/sessions").json()}
            assert made[key] in listed and made[other] not in listed
            assert c.get(f"/v1/sessions/{made[other]}").status_code == 404
            asked = c.post("/v1/ask", json={"question": "Hi", "session": made[other]})
            assert asked.status_code == 404
    with client(server, BOB) as bob:
        bobs_turns = bob.get(f"/v1/sessions/{made[BOB]}").json()["turns"]
        assert len(bobs_turns) == 2, "Alice's refused question added nothing to Bob's session"


def test_a_route_without_a_declared_role_is_refused_even_to_an_admin(settings: Settings) -> None:
    """Fails closed: a route added without `**READER` or `**ADMIN` is usable by nobody."""
    from api.app import create_app
    from api.auth import LOCAL, NO_ROLE, Principal, Role, RoleTable, forbidden

    app = create_app(settings)

    @app.get("/v1/undeclared")
    async def undeclared() -> dict[str, str]:
        return {}

    known, required = RoleTable().required(app, "GET", "/v1/undeclared")
    assert known and required is None
    assert forbidden(LOCAL, required) == NO_ROLE
    assert forbidden(Principal("alice", Role.READER), Role.ADMIN) is not None
    assert forbidden(Principal("carol", Role.ADMIN), Role.ADMIN) is None
    assert RoleTable().required(app, "GET", "/v1/jobs") == (True, Role.ADMIN)


def test_a_malformed_line_added_to_a_running_keys_file_is_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Refused at start-up (tests/api/test_startup.py); on a running server one typo must not
    lock every user out: that line is skipped, with a warning, and the others keep working."""
    from api.auth import KeyRing, Role

    keys = tmp_path / "keys.txt"
    keys.write_text("k-alice alice reader\n", "utf-8")
    ring = KeyRing((), keys, clock=lambda: 1e12)  # never "recent": re-read on every change
    assert ring.user("k-alice") is not None
    keys.write_text("k-alice alice reader\nk-bob bob admn\nk-carol carol admin\n", "utf-8")
    carol = ring.user("k-carol")
    assert carol is not None and carol.role is Role.ADMIN and carol.name == "carol"
    assert ring.user("k-alice") is not None and ring.user("k-bob") is None
    assert "Line 2 of the keys file" in caplog.text
