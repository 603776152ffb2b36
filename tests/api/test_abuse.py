"""Hostile clients against a real `handbook serve` (uvicorn on loopback): attempts to get past
the API keys, file names and ids that try to leave the data folder, and oversized, lying or
slow requests. Every refusal must be a 4xx (JSON where the app answers), and the server must
stay up with nothing in its log but warnings."""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.auth import UNAUTHORIZED
from handbook.config import Settings
from tests.api.conftest import KEY, Server, free_port, start, wait_for

FILE_KEYS = ("file-key-alpha-1", "file-key-bravo-2")
SENTINEL = "SENTINEL: this file must never be read or overwritten through the API.\n"
PUBLIC = {"/healthz", "/readyz"}
"""Schema routes that need no key. Everything else in the OpenAPI schema must answer 401."""
HIDDEN = {"/", "/static", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
"""Routes outside the schema: the page, its files and the API docs, none with data."""
GUARDED = {"/mcp"}
"""Routes outside the schema with data, behind the keys (MCP): every method needs a key."""


@pytest.fixture(scope="module")
def server(indexed_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Keys from api.keys and from a keys file; short timeouts and a 1 MB upload limit so
    the limits are cheap to hit; one document indexed from a folder outside uploads/; and
    sentinel files beside and inside the data folder."""
    root = tmp_path_factory.mktemp("abuse")
    home = root / "home"
    shutil.copytree(indexed_home, home)
    outside = root / "outside"
    outside.mkdir()
    (outside / "outside_manual.md").write_text(
        "# Outside manual\n\nThe outside pump OP-3 delivers 7 litres per minute.\n", "utf-8"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("HANDBOOK_")}
    subprocess.run(
        [sys.executable, "-m", "cli", "index", str(outside)],
        env={**env, "HANDBOOK_HOME": str(home)},
        check=True,
        capture_output=True,
        timeout=300,
    )
    for sentinel in (root / "sentinel.md", home / "sentinel.md"):
        sentinel.write_text(SENTINEL, "utf-8")
    (root / "keys.txt").write_text("# test keys\n" + "\n".join(FILE_KEYS) + "\n", "utf-8")
    yield from start(
        home,
        root / "server.log",
        HANDBOOK_API_KEYS=KEY,
        HANDBOOK_API__KEYS_FILE=str(root / "keys.txt"),
        HANDBOOK_API__MAX_UPLOAD_MB="1",
        HANDBOOK_API__BODY_TIMEOUT_S="2",
        HANDBOOK_API__HEADER_TIMEOUT_S="2",
    )


# --- helpers -------------------------------------------------------------------------------


@dataclass
class Raw:
    status: int | None  # None: the server closed without an answer
    headers: dict[str, str]
    body: bytes
    seconds: float

    def json(self) -> Any:
        return json.loads(self.body)


def raw(
    server: Server, pieces: bytes | Sequence[bytes], pause: float = 0.0, timeout: float = 10
) -> Raw:
    """Bytes sent as they are (no client library normalizes them), the answer read until the
    server closes. Sending stops as soon as the server answers."""
    host, port = server.url.removeprefix("http://").split(":")
    started = time.monotonic()
    data = b""
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        for piece in [pieces] if isinstance(pieces, bytes) else pieces:
            if select.select([sock], [], [], 0)[0]:
                break  # answered (or closed) already
            try:
                sock.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):
                break
            time.sleep(pause)
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except ConnectionResetError:
            pass
        except TimeoutError:
            data += b""  # judged below: no status line means no answer
    seconds = time.monotonic() - started
    if not data.startswith(b"HTTP/1.1 "):
        return Raw(None, {}, data, seconds)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines[1:])}
    if "content-length" in headers:  # the first answer only
        body = body[: int(headers["content-length"])]
    return Raw(int(lines[0].split()[1]), headers, body, seconds)


def request(method: str, target: str | bytes, *headers: bytes, body: bytes = b"") -> bytes:
    """A raw HTTP/1.1 request that asks the server to close the connection afterwards."""
    path = target if isinstance(target, bytes) else target.encode()
    lines = [method.encode() + b" " + path + b" HTTP/1.1", b"Host: 127.0.0.1", *headers]
    if body:
        lines.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join([*lines, b"Connection: close", b"", b""]) + body


AUTH = b"Authorization: Bearer " + KEY.encode()
JSON = b"Content-Type: application/json"


def multipart(disposition: bytes, content: bytes) -> tuple[bytes, dict[str, str]]:
    """A multipart body written by hand, so that the file name goes out byte for byte."""
    boundary = b"abuse" + uuid.uuid4().hex.encode()
    body = b"".join([
        b"--", boundary, b"\r\nContent-Disposition: ", disposition,
        b"\r\nContent-Type: application/octet-stream\r\n\r\n", content,
        b"\r\n--", boundary, b"--\r\n",
    ])  # fmt: skip
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary.decode()}"}


def assert_refused(response: httpx.Response | Raw, status: int, code: str) -> None:
    assert response.status == status if isinstance(response, Raw) else (
        response.status_code == status), (response, getattr(response, "text", None))  # fmt: skip
    body = response.json()
    assert set(body) == {"error", "message"} and body["error"] == code, body
    assert "Traceback" not in body["message"]


def sentinels(server: Server) -> list[Path]:
    return [server.home.parent / "sentinel.md", server.home / "sentinel.md"]


def assert_sentinels_untouched(server: Server) -> None:
    for sentinel in sentinels(server):
        assert sentinel.read_text("utf-8") == SENTINEL, sentinel


def route_paths(routes: Iterable[Any], prefix: str = "") -> set[str]:
    """Every path the app routes, inside included routers too (FastAPI keeps them nested)."""
    found: set[str] = set()
    for route in routes:
        nested = getattr(route, "original_router", None)
        if nested is not None:
            found |= route_paths(nested.routes, prefix + route.include_context.prefix)
        else:
            found.add(prefix + route.path)
    return found


def alive(server: Server) -> None:
    assert httpx.get(f"{server.url}/healthz", timeout=10).json() == {"status": "ok"}


# --- keys ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Bearer wrong-key",
        f"Bearer {KEY.upper()}",  # keys are case-sensitive
        f"Bearer {KEY[:-1]}",  # a prefix of a real key
        f"Bearer {KEY}x",  # a real key with more after it
        f"Bearer {KEY} other-key",
        f"Bearer {KEY[:4]} {KEY[4:]}",  # whitespace inside
        f"Bearer {FILE_KEYS[0]}{FILE_KEYS[1]}",
        f"Bearer\t{KEY}",  # not the scheme followed by a space
        f"Basic {KEY}",
        f"Basic {base64.b64encode(f'user:{KEY}'.encode()).decode()}",
        f"Token {KEY}",
        KEY,  # no scheme
        f"{KEY} Bearer",
        "Bearer ä" + KEY,  # not ASCII: was a 500 (compare_digest refuses non-ASCII str)
        b"Bearer \xff\xfe\xfd",  # not UTF-8 either
    ],
)
def test_missing_wrong_and_malformed_keys_are_refused(
    server: Server, authorization: str | bytes | None
) -> None:
    headers: list[bytes] = []
    if authorization is not None:
        value = authorization.encode("latin-1") if isinstance(authorization, str) else authorization
        headers.append(b"Authorization: " + value)
    refused = raw(server, request("GET", "/v1/documents", *headers))  # sent byte for byte
    assert_refused(refused, 401, "unauthorized")
    assert refused.json()["message"] == UNAUTHORIZED
    assert refused.headers["www-authenticate"] == "Bearer"
    assert KEY.encode() not in refused.body and b"hydraulic" not in refused.body, "no data"


def test_the_scheme_is_case_insensitive_but_the_key_is_not(server: Server) -> None:
    """RFC 7235: `bearer` is the same scheme as `Bearer`; the key itself must match exactly."""
    for scheme in ("Bearer", "bearer", "BEARER"):
        ok = httpx.get(f"{server.url}/v1/documents", headers={"Authorization": f"{scheme} {KEY}"})
        assert ok.status_code == 200 and ok.json(), scheme


@pytest.mark.parametrize("name", ["api_key", "key", "token", "access_token", "apikey"])
def test_keys_in_the_url_are_refused(server: Server, name: str) -> None:
    url = f"{server.url}/v1/documents?{name}={KEY}"
    refused = httpx.get(url)
    assert_refused(refused, 401, "unauthorized")
    assert KEY not in refused.text
    in_userinfo = httpx.get(server.url.replace("http://", f"http://{KEY}@") + "/v1/documents")
    assert_refused(in_userinfo, 401, "unauthorized")  # httpx sends it as Basic auth


def test_a_key_removed_from_the_keys_file_is_refused_on_the_next_request(server: Server) -> None:
    keys_file = server.home.parent / "keys.txt"
    original = keys_file.read_text("utf-8")
    a, b = FILE_KEYS
    c = "file-key-charlie"[: len(a)]  # the same length: the file keeps its size
    with (
        httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {a}"}) as key_a,
        httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {b}"}) as key_b,
        httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {c}"}) as key_c,
        server.client() as fixed,
    ):
        try:
            assert key_a.get("/v1/documents").status_code == 200
            assert key_b.get("/v1/documents").status_code == 200
            # Edited in place, same size, within the same second: still noticed.
            keys_file.write_text(original.replace(a, c), "utf-8")
            assert len(original) == len(keys_file.read_text("utf-8"))
            assert_refused(key_a.get("/v1/documents"), 401, "unauthorized")  # same connection
            assert key_c.get("/v1/documents").status_code == 200
            assert key_b.get("/v1/documents").status_code == 200, "the other key keeps working"
            # Replaced atomically (a new inode), as editors and config tools do.
            replacement = keys_file.with_suffix(".new")
            replacement.write_text(f"# only c now\n{c}\n", "utf-8")
            replacement.replace(keys_file)
            assert_refused(key_b.get("/v1/documents"), 401, "unauthorized")
            assert key_c.get("/v1/documents").status_code == 200
            # The file gone: its keys are refused, api.keys still work.
            keys_file.unlink()
            assert_refused(key_c.get("/v1/documents"), 401, "unauthorized")
            assert fixed.get("/v1/documents").status_code == 200
        finally:
            keys_file.write_text(original, "utf-8")
        assert key_a.get("/v1/documents").status_code == 200, "restored"
    assert "keys_file" in server.log.read_text(), "the missing file was logged"


def test_every_route_but_the_public_ones_needs_a_key(server: Server, settings: Settings) -> None:
    """Enumerated from the app, so a route added without the key check fails here."""
    from api.app import create_app

    app = create_app(settings)  # not started: only its routes are read
    schema = app.openapi()["paths"]
    served = httpx.get(f"{server.url}/openapi.json").json()["paths"]
    assert set(served) == set(schema), "the server runs this code"
    assert route_paths(app.routes) - set(schema) == HIDDEN | GUARDED, (
        "a new route outside the OpenAPI schema: add it to HIDDEN only if it holds no data"
    )
    for path in GUARDED:
        for method in ("GET", "POST", "DELETE"):
            for headers in ({}, {"Authorization": "Bearer wrong"}):
                response = httpx.request(method, server.url + path, headers=headers, json={})
                assert_refused(response, 401, "unauthorized")
    checked = 0
    for template, operations in schema.items():
        path = template.replace("{", "").replace("}", "")  # e.g. /v1/documents/doc_id
        for method in operations:
            for headers in ({}, {"Authorization": "Bearer wrong"}):
                response = httpx.request(method, server.url + path, headers=headers, json={})
                if template in PUBLIC:
                    assert response.status_code == 200, (method, template)
                elif template.startswith("/api/"):  # Ollama's error shape: `error` is the message
                    assert response.status_code == 401, (method, template)
                    assert set(response.json()) == {"error"}, response.json()
                    assert "Bearer" in response.json()["error"], response.json()
                    checked += 1
                else:
                    assert_refused(response, 401, "unauthorized")
                    checked += 1
    assert checked >= 2 * 19, "every protected operation was tried"
    for path in ("/", "/openapi.json", "/docs", "/static/app.js"):
        assert httpx.get(server.url + path).status_code in (200, 404), path


def test_a_request_without_a_key_is_refused_before_its_body_is_read(server: Server) -> None:
    """FastAPI parses a body before it runs dependencies: without the early check, anyone
    could make the server take in (and spool to disk) an upload of api.max_upload_mb."""
    head = request(
        "POST",
        "/v1/documents",
        b"Content-Type: multipart/form-data; boundary=x",
        b"Content-Length: 1000000",
    )
    refused = raw(server, head)  # the body never comes: reading it would end in a 408
    assert refused.status == 401, refused
    assert refused.headers.get("connection") == "close"


# --- file names and ids --------------------------------------------------------------------

TOKEN = uuid.uuid4().hex[:8]


@pytest.mark.parametrize(
    ("disposition", "stored"),
    [
        (b'filename="../../sentinel.md"', "sentinel.md"),
        (b'filename="../../../../../../tmp/pwned-%s.md"' % TOKEN.encode(), f"pwned-{TOKEN}.md"),
        (b'filename="/tmp/pwned-abs-%s.md"' % TOKEN.encode(), f"pwned-abs-{TOKEN}.md"),
        (b'filename="..\\\\..\\\\win-%s.md"' % TOKEN.encode(), f"win-{TOKEN}.md"),
        (b'filename="C:\\\\Windows\\\\evil.md"', "evil.md"),
        (b'filename="..%2F..%2Fsentinel.md"', "%2F..%2Fsentinel.md"),  # stored, not decoded
        (b'filename="%2e%2e%2fsentinel.md"', "%2e%2e%2fsentinel.md"),
        (b'filename="nul\x00/../../sentinel.md"', "sentinel.md"),
        (b'filename="x.md\x00.pdf"', None),  # NUL dropped: x.md.pdf, and not a PDF: 415
        (b'filename="..\xef\xbc\x8f..\xef\xbc\x8fsentinel.md"', "\uff0f..\uff0fsentinel.md"),
        (b'filename="..\xe2\x88\x95..\xe2\x88\x95sentinel.md"', "\u2215..\u2215sentinel.md"),
        (b'filename="\xe2\x80\xaedm.exe.md"', "dm.exe.md"),  # right-to-left override dropped
        (b'filename="' + b"a" * 1000 + b'.md"', "a" * 197 + ".md"),
        (b'filename="' + b"a" * 5000 + b'.md"', None),  # a part header over 4 KB: 400
        (b'filename="' + "ä".encode() * 300 + b'.md"', "ä" * 98 + ".md"),  # was a 500
        (b'filename="x.md"; filename="../../sentinel.md"', "sentinel.md"),
        (b"filename*=UTF-8''..%2F..%2Fsentinel.md", None),  # not a file part: 422
        (b'filename="../../etc/passwd"', None),  # no type: 415
        (b'filename="...."', None),
        (b'filename="uploads/../"', None),
        (b'filename=""', None),
    ],
)
def test_hostile_upload_names_stay_inside_uploads(
    server: Server, disposition: bytes, stored: str | None
) -> None:
    uploads = server.home / "uploads"
    content = f"# Hostile name\n\nUpload {uuid.uuid4().hex} of run {TOKEN}.\n".encode()
    body, headers = multipart(b'form-data; name="file"; ' + disposition, content)
    with server.client() as client:
        response = client.post("/v1/documents", content=body, headers=headers)
        if stored is None:
            assert 400 <= response.status_code < 500, response.text
            assert response.json()["error"] in ("upload_rejected", "invalid_request", "bad_request")
        else:
            assert response.status_code == 202, response.text
            job = wait_for(client, response.json())
            assert job["path"] == stored and job["state"] == "done", job
            target = uploads / stored
            assert target.read_bytes() == content and target.parent == uploads
            assert len(stored.encode()) <= 200
            doc = job["documents"][0]["id"]
            assert client.delete(f"/v1/documents/{doc}").status_code == 200
            assert not target.exists()
    assert_sentinels_untouched(server)
    assert not list(Path("/tmp").glob(f"pwned*{TOKEN}*"))
    assert all(p.is_file() and not p.name.startswith(".") for p in uploads.iterdir()), (
        "only plain files directly in uploads/, no partial ones left"
    )


@pytest.mark.parametrize(
    "target",
    [
        "/v1/documents/../../sentinel.md",
        "/v1/documents/..%2F..%2Fsentinel.md",
        "/v1/documents/%2e%2e%2f%2e%2e%2fsentinel.md",
        "/v1/documents/%2e%2e",
        "/v1/documents/..",
        "/v1/documents/%00",
        "/v1/documents/..%5C..%5Csentinel.md",
        "/v1/documents/%2Ftmp%2Fsentinel.md",
        "/v1/documents/" + "%c3%a4" * 2000,
        "/v1/jobs/..%2F..%2Fsentinel.md",
        "/v1/jobs/%00",
        "/v1/sessions/..%2F..%2Fsessions.sqlite",
        "/v1/sessions/..",
        "/v1/sessions/%00",
    ],
)
def test_ids_in_the_path_name_no_file(server: Server, target: str) -> None:
    with server.client() as client:
        before = client.get("/v1/documents").json()
        for method in ("GET", "DELETE"):
            answer = raw(server, request(method, target, AUTH))
            if answer.status == 400 and answer.body == b"Invalid HTTP request received.":
                continue  # refused by the HTTP parser before the app
            assert answer.status in (404, 405), (method, answer)  # jobs have no DELETE
            assert SENTINEL.encode() not in answer.body
        assert client.get("/v1/documents").json() == before, "nothing was deleted"
    assert_sentinels_untouched(server)


def test_deleting_a_document_indexed_from_outside_uploads_keeps_its_file(server: Server) -> None:
    outside = server.home.parent / "outside" / "outside_manual.md"
    with server.client() as client:
        docs = {d["name"]: d["id"] for d in client.get("/v1/documents").json()}
        assert client.delete(f"/v1/documents/{docs['outside_manual.md']}").status_code == 200
        assert client.get(f"/v1/documents/{docs['outside_manual.md']}").status_code == 404
    assert outside.is_file(), "DELETE removes uploads only, never a file indexed in place"


def test_document_filters_naming_files_read_nothing(server: Server) -> None:
    names = ["../../sentinel.md", str(server.home / "sentinel.md"), "/etc/passwd", "~/.ssh/id_rsa"]
    with server.client() as client:
        for name in names:
            for route, field in (("/v1/search", "query"), ("/v1/ask", "question")):
                refused = client.post(route, json={field: "pump", "docs": [name]})
                assert_refused(refused, 409, "not_indexed")
                assert "SENTINEL" not in refused.text and "root:" not in refused.text


@pytest.mark.parametrize(
    "target",
    [
        "/static/../../api/app.py",
        "/static/..%2F..%2Fapi%2Fapp.py",
        "/static/%2e%2e/%2e%2e/api/app.py",
        "/static/%2e%2e/app.py",
        "/static//etc/passwd",
        "/static/%2Fetc%2Fpasswd",
        "/static/..%5Capp.py",
        "/static/%00",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/static/../../../sentinel.md",
    ],
)
def test_static_files_stay_in_their_folder(server: Server, target: str) -> None:
    answer = raw(server, request("GET", target))
    assert answer.status in (400, 404), answer
    for secret in (b"def create_app", b"root:", SENTINEL.encode()):
        assert secret not in answer.body


# --- headers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        [b"X-Big: " + b"a" * 100_000],
        [b"X-H%d: v" % n for n in range(5000)],
        [b"Authorization: Bearer " + b"k" * 60_000],
        [b"Cookie: " + b"c=1; " * 10_000],
    ],
    ids=["100KB header", "5000 headers", "60KB Authorization", "50KB cookie"],
)
def test_oversized_request_heads_get_431(server: Server, headers: list[bytes]) -> None:
    answer = raw(server, request("GET", "/v1/documents", AUTH, *headers))
    assert_refused(answer, 431, "headers_too_large")
    assert "api.max_header_kb" in answer.json()["message"]
    alive(server)


def test_an_oversized_head_arriving_slowly_gets_the_same_431(server: Server) -> None:
    """Incomplete in the parser's buffer, so h11 refuses it before the app: the same answer as
    a complete one, whichever way the network split the bytes."""
    head = request("GET", "/v1/documents", AUTH, b"X-Big: " + b"a" * 100_000)
    answer = raw(server, [head[i : i + 8192] for i in range(0, len(head), 8192)], pause=0.01)
    assert_refused(answer, 431, "headers_too_large")
    assert "api.max_header_kb" in answer.json()["message"]
    assert answer.headers["connection"] == "close"
    alive(server)


def test_a_malformed_head_still_gets_uvicorns_400(server: Server) -> None:
    answer = raw(server, b"GET /v1/documents HTTP/1.1\r\nHost 127.0.0.1\r\n\r\n")
    assert answer.status == 400 and answer.body == b"Invalid HTTP request received.", answer
    alive(server)


@pytest.mark.parametrize("sent", [b"", b"GET /v1/documents HTTP/1.1\r\nHost: x\r\n"])
def test_a_slow_or_silent_request_head_is_cut_off(server: Server, sent: bytes) -> None:
    """uvicorn alone waits for ever (slowloris); api.header_timeout_s is 2 s here."""
    answer = raw(server, [sent] if sent else [], timeout=10)
    assert answer.status is None and answer.body == b"", answer
    assert 1.5 < answer.seconds < 5, answer.seconds


# --- bodies --------------------------------------------------------------------------------


def test_a_content_length_larger_than_the_body_times_out_with_408(server: Server) -> None:
    head = request("POST", "/v1/search", AUTH, JSON, b"Content-Length: 100")
    answer = raw(server, head + b'{"query": "pump"}')
    assert_refused(answer, 408, "timeout")
    assert "api.body_timeout_s" in answer.json()["message"] and answer.seconds < 5


def test_a_content_length_smaller_than_the_body_reads_only_that_much(server: Server) -> None:
    body = b'{"query": "pump"}'
    head = request("POST", "/v1/search", AUTH, JSON, b"Content-Length: 5")
    answer = raw(server, head.replace(b"Connection: close\r\n", b"") + body)
    assert_refused(answer, 422, "invalid_request")  # `{"que` is not JSON
    alive(server)


@pytest.mark.parametrize("length", [b"-1", b"abc", b"1e3", b"99999999999999999999999"])
def test_a_malformed_content_length_is_refused(server: Server, length: bytes) -> None:
    answer = raw(server, request("POST", "/v1/search", AUTH, JSON, b"Content-Length: " + length))
    assert answer.status in (400, 413), answer


def test_a_chunked_body_over_the_limit_gets_413(server: Server) -> None:
    head = request("POST", "/v1/search", AUTH, JSON, b"Transfer-Encoding: chunked")
    chunk = b"%x\r\n%s\r\n" % (64 * 1024, b" " * 64 * 1024)
    answer = raw(server, [head, *[chunk] * 8, b"0\r\n\r\n"])  # 512 KB, the limit is 256 KB
    assert_refused(answer, 413, "too_large")
    assert "api.max_body_kb" in answer.json()["message"]


def test_a_chunked_upload_over_the_limit_gets_413_and_leaves_nothing(server: Server) -> None:
    body, headers = multipart(b'form-data; name="file"; filename="big.txt"', b"x" * 1_600_000)
    head = request(
        "POST", "/v1/documents", AUTH, f"Content-Type: {headers['Content-Type']}".encode(),
        b"Transfer-Encoding: chunked",
    )  # fmt: skip
    chunks = [
        b"%x\r\n%s\r\n" % (len(p), p)
        for p in (body[i : i + 65536] for i in range(0, len(body), 65536))
    ]
    answer = raw(server, [head, *chunks, b"0\r\n\r\n"])
    assert_refused(answer, 413, "too_large")
    assert not (server.home / "uploads" / "big.txt").exists()
    assert not list((server.home / "uploads").glob(".*")), "no partial file"


def test_a_body_trickling_in_is_cut_off_with_408(server: Server) -> None:
    body = json.dumps({"query": "pump " * 40}).encode()
    head = request("POST", "/v1/search", AUTH, JSON, b"Content-Length: %d" % len(body))
    answer = raw(server, [head, *[body[i : i + 4] for i in range(0, len(body), 4)]], pause=0.2)
    assert_refused(answer, 408, "timeout")
    assert answer.seconds < 6, "cut at api.body_timeout_s (2 s), not when the body ends (11 s)"


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"[" * 100_000, 400, "nested too deeply"),
        (b'{"a":' * 40_000, 400, "nested too deeply"),
        (json.dumps({"question": "x" * 200_000}).encode(), 422, "at most 4000"),
        (json.dumps({"question": "x" * 1_000_000}).encode(), 413, "api.max_body_kb"),
        (json.dumps({"question": "pump", "docs": ["x"] * 20_000}).encode(), 422, "at most 50"),
        (b'{"question": "\xff\xfe"}', 400, "send a JSON object"),
    ],
    ids=["100k [", "40k {", "200KB string", "1MB string", "20k docs", "not UTF-8"],
)
def test_hostile_json_bodies_get_4xx(server: Server, body: bytes, status: int, words: str) -> None:
    with server.client() as client:
        answer = client.post("/v1/ask", content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == status, answer.text[:300]
    assert words in answer.json()["message"]


def test_a_huge_chat_message_gets_422_not_a_model_error(server: Server) -> None:
    """Was a 503 after 11 s: a 100k-token message reached the model and overflowed its context."""
    message = {"role": "user", "content": "pump " * 40_000}
    with server.client() as client:
        answer = client.post(
            "/v1/chat/completions", json={"model": "handbook", "messages": [message]}
        )
    assert_refused(answer, 422, "invalid_request")
    assert "4000 characters" in answer.json()["message"]


# --- serve ---------------------------------------------------------------------------------


def test_serve_beyond_loopback_counts_the_keys_file(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HANDBOOK_")}
    env.update(HANDBOOK_HOME=str(tmp_path / "home"), HANDBOOK_API__PRELOAD="false")
    keys_file = tmp_path / "keys.txt"
    port = free_port()
    command = [sys.executable, "-m", "cli", "serve", "--host", "0.0.0.0", "--port", str(port)]
    env["HANDBOOK_API__KEYS_FILE"] = str(keys_file)
    missing = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert missing.returncode == 1 and "cannot be read" in missing.stderr, missing.stderr
    keys_file.write_text("# nobody yet\n\n", "utf-8")
    empty = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert empty.returncode == 2 and "api.keys_file" in empty.stderr, empty.stderr
    keys_file.write_text("# ops\nserve-key\n", "utf-8")
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.3)
        url = f"http://127.0.0.1:{port}/v1/documents"
        assert httpx.get(url).status_code == 401
        assert httpx.get(url, headers={"Authorization": "Bearer serve-key"}).status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=30)


# --- afterwards ----------------------------------------------------------------------------


def test_after_all_the_abuse_the_server_is_healthy_and_logged_no_traceback(
    server: Server,
) -> None:
    """Runs last in this module (pytest keeps file order)."""
    alive(server)
    with server.client() as client:
        assert client.post("/v1/search", json={"query": "pump", "k": 1}).status_code == 200
    log = server.log.read_text()
    assert "Traceback" not in log and "internal error" not in log, log[-4000:]
    assert "Exception in ASGI application" not in log
    assert_sentinels_untouched(server)
