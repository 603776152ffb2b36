"""`handbook serve`: uvicorn with limits at the connection level, which the app cannot set.

uvicorn (with h11) waits without end for a request's line and headers, so a client can hold
connections open by sending them slowly, or nothing at all (slowloris). It also checks the size
of a request head only while the head is incomplete in its buffer: a complete 100 KB head that
arrives in one read passes. Here the head gets a deadline (`api.header_timeout_s`), h11 a bound
(`api.max_header_kb`), the number of connections a cap (`api.max_connections`), and
`RequestLimits` (api/app.py) checks a complete head's size and header count. Whether a large head
is still incomplete when h11 looks depends on how the network split it, so both refusals are the
same answer: 431 with the API's JSON error (uvicorn's own is a plain-text 400).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from handbook.config import Settings


class HeadDeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol, closing a connection that has not sent a complete request head
    `head_timeout` seconds after it opened or after its previous response."""

    head_timeout = 10.0
    max_head = 32 * 1024  # h11's bound on an incomplete head (h11_max_incomplete_event_size)
    head_too_large: tuple[list[tuple[bytes, bytes]], bytes] = ([], b"")  # RequestLimits' 431
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # as uvicorn's
        super().connection_made(transport)
        self._arm_head_timer()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # the head is complete (or the client left)
            self._cancel_head_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_head_timer()  # the next request's head, on a kept-alive connection

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to whatever h11 refuses. A head that grew past `max_head` before
        its blank line gets RequestLimits' 431 instead; anything else, uvicorn's plain 400."""
        buffered, _ = self.conn.trailing_data
        if len(buffered) <= self.max_head or _BLANK_LINE.search(buffered):
            super().send_400_response(msg)
            return
        headers, body = self.head_too_large
        response = h11.Response(status_code=431, headers=headers,
                                reason=b"Request Header Fields Too Large")  # fmt: skip
        for event in (response, h11.Data(data=body), h11.EndOfMessage()):
            self.transport.write(self.conn.send(event) or b"")
        self.transport.close()

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.logger.info("Closed a connection that sent no complete request head in time.")
            self.transport.close()


_BLANK_LINE = re.compile(rb"\n\r?\n")  # the end of a head, as h11 finds it


def protocol(settings: Settings) -> type[HeadDeadlineProtocol]:
    """The protocol class with these limits (uvicorn builds one instance per connection)."""
    from api.app import HTTP_CODES, HeadersTooLarge, error

    api = settings.api
    refusal = HeadersTooLarge(api.max_header_kb * 1024, api.max_headers)
    response = error(431, HTTP_CODES[431], refusal.detail, refusal.headers)
    return type(
        "HeadDeadline",
        (HeadDeadlineProtocol,),
        {
            "head_timeout": api.header_timeout_s,
            "max_head": api.max_header_kb * 1024,
            "head_too_large": (response.raw_headers, response.body),
        },
    )


def serve(settings: Settings, host: str, port: int) -> None:
    """Run the API with uvicorn until interrupted. What can stop it at start-up is checked
    first, before uvicorn runs the app (where a failure is a traceback and exit 3): every
    configured model and server (`preflight`), then the data folder's lock (another process,
    e.g. `handbook index`, may hold it). Each raises a `HandbookError`: one line, exit 1."""
    import uvicorn

    from api.app import create_app
    from app.handbook import Handbook, HomeLock
    from app.preflight import preflight

    preflight(settings)
    lock = HomeLock(settings.home)
    if Handbook.uses_home_lock(settings):
        lock.acquire()
    try:
        _run(uvicorn, create_app(settings, lock, host), settings, host, port)
    finally:
        lock.release()


def _run(uvicorn: Any, app: Any, settings: Settings, host: str, port: int) -> None:
    api = settings.api
    uvicorn.run(
        app,
        host=host,
        port=port,
        http=protocol(settings),
        h11_max_incomplete_event_size=api.max_header_kb * 1024,
        limit_concurrency=api.max_connections,
        server_header=False,
        log_level="info",
        access_log=False,
    )
