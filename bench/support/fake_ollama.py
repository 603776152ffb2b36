"""A local server speaking the Ollama routes Handbook uses, backed by the packaged GGUF model.

Implements `POST /api/chat` (NDJSON streaming, or one JSON object) and `POST /api/generate`
(preload) as documented in Ollama's API reference. Tokens come from the real SmolLM2 model
through llama.cpp, so they really stream, or from a `respond` function (an extraction model's
rows, for the graph tests). Requests are recorded for assertions.

Faults, set at any moment on `FakeOllama.fault`: "stall" (answers after `stall_s`), "garbage"
(200 with a body that is not Ollama's JSON), "error" (500), "drop" (the connection is closed
without an answer); `stop()` makes the server disappear (connections are refused).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import queue
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from handbook.config import ChatSettings
from handbook.types import Message, Role

MODEL = "smollm2:135m"


Respond = Callable[[list[dict[str, str]]], str]
TERM = re.compile(r"\b[A-ZÄÖÜ][\w-]*\d[\w-]*|\b[A-ZÄÖÜ][a-zäöüß]{5,}\b")


def extraction_rows(messages: list[dict[str, str]]) -> str:
    """What a capable extraction model answers, deterministically, in LightRAG 1.5.7's rows:
    the first six distinct terms of a chunk (model codes, capitalized nouns) as entities, each
    related to the next."""
    text = re.search(r"---Input Text---\n```\n(.*?)\n```", messages[-1]["content"], re.DOTALL)
    if text is None:  # a description summary, when an entity's descriptions are merged
        return "A component described in the manual."
    terms = list(dict.fromkeys(TERM.findall(text.group(1))))[:6]
    rows = [f"entity<|#|>{t}<|#|>equipment<|#|>{t} as the manual names it." for t in terms]
    rows += [
        f"relation<|#|>{a}<|#|>{b}<|#|>mentioned with<|#|>{a} is mentioned with {b}."
        for a, b in itertools.pairwise(terms)
    ]
    return "\n".join([*rows, "<|COMPLETE|>"])


class FakeOllama:
    def __init__(self, stall_s: float = 0.0, respond: Respond | None = None) -> None:
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.stall_s = stall_s
        self.respond = respond
        self.fault = "stall" if stall_s else ""
        self.stop: Callable[[], None] = lambda: None  # set by serve()
        self._backend: Any = None
        self._lock = threading.Lock()

    def load(self, max_tokens: int = 64) -> float:
        """Seconds it took to load the model (0 when it was loaded already)."""
        from generation.llamacpp import LlamaCppChat

        with self._lock:
            if self._backend is not None or self.respond is not None:
                return 0.0
            started = time.perf_counter()
            self._backend = LlamaCppChat(ChatSettings(max_tokens=max_tokens, temperature=0.0))
            asyncio.run(self._backend.load())
            return time.perf_counter() - started

    def tokens(self, messages: list[dict[str, str]], max_tokens: int) -> Iterator[str]:
        if self.respond is not None:
            yield from (p for p in re.findall(r"\S*\s*", self.respond(messages)) if p)
            return
        self.load(max_tokens)
        with self._lock:
            typed = [Message(Role(m["role"]), m["content"]) for m in messages]
            pieces: queue.Queue[str | None] = queue.Queue()
            stop = threading.Event()  # the client went away: stop generating

            async def produce() -> None:
                try:
                    async for piece in self._backend.stream(typed):
                        pieces.put(piece)
                        if stop.is_set():
                            break
                finally:
                    pieces.put(None)

            # Generation runs on its own thread; pieces are sent as they come, as Ollama does.
            producer = threading.Thread(target=asyncio.run, args=(produce(),), daemon=True)
            producer.start()
            try:
                while (piece := pieces.get()) is not None:
                    yield piece
            finally:
                stop.set()
                producer.join()

    def close(self) -> None:
        if self._backend is not None:
            asyncio.run(self._backend.close())


def _handler(fake: FakeOllama) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _json(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _ndjson(self, lines: Iterable[dict[str, Any]]) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/x-ndjson")
            self.end_headers()
            for line in lines:
                self.wfile.write(json.dumps(line).encode() + b"\n")
                self.wfile.flush()

        def do_GET(self) -> None:
            fake.requests.append((self.path, {}))
            record = {"name": MODEL, "model": MODEL, "size": 101_000_000, "digest": "d1"}
            if self.path == "/api/tags":
                self._json(200, {"models": [{**record, "modified_at": "2026-11-22T00:00:00Z"}]})
            elif self.path == "/api/ps":
                loaded = {**record, "size_vram": 0, "expires_at": "2026-11-22T00:30:00Z"}
                self._json(200, {"models": [loaded]})
            else:
                self._json(404, {"error": "not found"})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            fake.requests.append((self.path, body))
            if fake.fault == "stall":
                time.sleep(fake.stall_s)
            elif fake.fault == "drop":
                self.close_connection = True
                return
            elif fake.fault == "error":
                self._json(500, {"error": "llama runner process has terminated"})
                return
            elif fake.fault == "garbage":
                self.send_response(200)
                self.send_header("Content-Type", "application/x-ndjson")
                self.end_headers()
                self.wfile.write(b'\x00\x17<html>502 Bad Gateway{"mess\n')
                self.close_connection = True
                return
            model = body.get("model")
            if self.path == "/api/pull":
                steps = [("pulling manifest", 0), ("downloading", 50), ("downloading", 100)]
                progress = [{"status": st, "completed": n, "total": 100} for st, n in steps]
                self._ndjson([*progress, {"status": "success"}])
                return
            if model != MODEL:
                self._json(404, {"error": f"model '{model}' not found"})
                return
            if self.path == "/api/generate":
                loaded_ns = int(fake.load() * 1e9)
                reply = {"model": model, "response": "", "done": True, "load_duration": loaded_ns}
                self._json(200, reply)
                return
            if self.path != "/api/chat":
                self._json(404, {"error": "not found"})
                return
            limit = int((body.get("options") or {}).get("num_predict", 64))
            pieces = fake.tokens(body["messages"], limit)
            created = "2026-11-22T00:00:00Z"
            if not body.get("stream", True):
                text = "".join(pieces)
                message = {"role": "assistant", "content": text}
                self._json(
                    200, {"model": model, "created_at": created, "message": message, "done": True}
                )
                return
            assistant = {"model": model, "created_at": created, "done": False}

            def lines() -> Iterator[dict[str, Any]]:  # written as the pieces come
                for piece in pieces:
                    yield {**assistant, "message": {"role": "assistant", "content": piece}}
                end = {"message": {"role": "assistant", "content": ""}, "done_reason": "stop"}
                yield {**assistant, **end, "done": True}

            self._ndjson(lines())

    return Handler


@contextmanager
def serve(stall_s: float = 0.0, respond: Respond | None = None) -> Iterator[tuple[str, FakeOllama]]:
    fake = FakeOllama(stall_s, respond)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    server.handle_error = lambda request, address: None  # type: ignore[method-assign]  # a client that went away is no news
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stopped = threading.Event()

    def stop() -> None:
        if not stopped.is_set():
            stopped.set()
            server.shutdown()
            server.server_close()

    fake.stop = stop
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", fake
    finally:
        stop()
        fake.close()
