"""API keys: `api.keys` from the settings plus `api.keys_file`, re-read when the file changes,
so that deleting a line revokes a key on the next request without a restart.

Keys are checked twice: by `KeysBeforeBody` for every /v1 request before anything reads its
body (FastAPI reads and parses a body before it runs a route's dependencies, so a client
without a key could otherwise make the server take in a 50 MB upload), and by the routers'
`require_key` dependency (api/services.py), which also documents the scheme in OpenAPI.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from handbook.config import ApiSettings
from handbook.errors import ConfigError

log = logging.getLogger("handbook.api")
RECENT_S = 2.0
"""A file modified this recently is re-read on every check: two edits within one tick of the
file system's clock can leave its size and mtime unchanged."""
UNREADABLE = (-1, -1, -1, -1)
UNAUTHORIZED = (
    "A valid API key is needed: send `Authorization: Bearer KEY` with a key from api.keys or "
    "api.keys_file (not in the URL)."
)
PROTECTED = "/v1"


def parse_keys(text: str) -> tuple[str, ...]:
    """The keys in a keys file: one per line; blank lines and `#` comment lines are skipped.

    >>> parse_keys("# ops team\\nk1\\n\\n  k2  \\n#k3\\n")
    ('k1', 'k2')
    """
    lines = (line.strip() for line in text.splitlines())
    return tuple(line for line in lines if line and not line.startswith("#"))


class KeyRing:
    """The keys the API accepts right now: fixed ones plus the lines of a keys file, which is
    checked (one `stat`) on every request and re-read when it changed."""

    def __init__(
        self,
        keys: tuple[str, ...],
        keys_file: Path | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._fixed = tuple(k.encode("utf-8") for k in keys)
        self._file = keys_file
        self._clock = clock
        self._signature: tuple[int, ...] | None = None
        self._from_file: tuple[bytes, ...] = ()

    @classmethod
    def from_settings(cls, api: ApiSettings) -> KeyRing:
        return cls(api.keys, api.keys_file)

    @property
    def enabled(self) -> bool:
        """Keys are required: some are configured, or a keys file is named (even an empty one:
        emptying the file revokes every key in it, it does not open the API)."""
        return bool(self._fixed) or self._file is not None

    def check_file(self) -> None:
        """At start-up: a named keys file must be readable."""
        if self._file is None:
            return
        try:
            self._file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"api.keys_file {self._file} cannot be read ({exc}); create it with one key "
                "per line, or unset api.keys_file."
            ) from exc

    def current(self) -> tuple[bytes, ...]:
        """The keys accepted now."""
        return self._fixed + self._file_keys()

    def accepts(self, given: str) -> bool:
        """Whether `given` is one of the keys, compared in constant time. `given` is a header
        value, which Starlette decodes as Latin-1: its bytes are the bytes the client sent."""
        if not given:
            return False
        raw = given.encode("latin-1", errors="replace")
        found = False
        for key in self.current():
            found |= secrets.compare_digest(raw, key)  # no early exit: every key is compared
        return found

    def _file_keys(self) -> tuple[bytes, ...]:
        if self._file is None:
            return ()
        try:
            st = os.stat(self._file)
            signature = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
            if signature == self._signature and self._clock() - st.st_mtime >= RECENT_S:
                return self._from_file
            text = self._file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            if self._signature != UNREADABLE:
                log.warning("api.keys_file %s cannot be read (%s): no key in it is accepted "
                            "until it can", self._file, exc)  # fmt: skip
            self._signature, self._from_file = UNREADABLE, ()
            return ()
        keys = tuple(k.encode("utf-8") for k in parse_keys(text))
        if self._signature is not None and keys != self._from_file:
            log.info("api.keys_file %s changed: %d keys", self._file, len(keys))
        self._signature, self._from_file = signature, keys
        return keys


def bearer_token(authorization: str | None) -> str:
    """The key of an `Authorization: Bearer KEY` header value ('' for any other scheme),
    parsed as FastAPI's HTTPBearer does.

    >>> bearer_token("Bearer abc"), bearer_token("bearer  abc "), bearer_token("Basic abc")
    ('abc', 'abc', '')
    """
    scheme, _, token = (authorization or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


class KeysBeforeBody:
    """Refuses a /v1 request without a valid key before its body is read (see above)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] == "http" and (path == PROTECTED or path.startswith(PROTECTED + "/")):
            keys: KeyRing = scope["app"].state.services.keys
            token = bearer_token(Headers(scope=scope).get("authorization"))
            if keys.enabled and not keys.accepts(token):
                response = JSONResponse(
                    {"error": "unauthorized", "message": UNAUTHORIZED},
                    status_code=401,
                    # Close: the server need not take in a body nobody will read.
                    headers={"WWW-Authenticate": "Bearer", "Connection": "close"},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
