"""API keys and their users: `api.keys` from the settings plus `api.keys_file`, re-read when
the file changes, so that deleting a line revokes a key on the next request without a restart.
Each key belongs to a user (`Principal`) with a role (`Role`); each route declares the role it
needs in its OpenAPI operation (`ROLE_KEY`), and that declaration is what is enforced.

Keys and roles are checked twice: by `KeysBeforeBody` for every /v1 and /api request before anything
reads its body (FastAPI reads and parses a body before it runs a route's dependencies, so a
client without a key, or a reader, could otherwise make the server take in a 50 MB upload), and
by the routers' `authorize` dependency (api/services.py), which hands the route its user and
documents the scheme in OpenAPI.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

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
PROTECTED = ("/v1", "/api")
"""The paths under keys: Handbook's own API and the Ollama-compatible one."""


class Role(StrEnum):
    """What a key's user may do. `reader`: ask, search, list and read documents, their own
    sessions. `admin`: also upload and delete documents, follow index jobs, every session."""

    READER = "reader"
    ADMIN = "admin"


ROLE_KEY = "x-handbook-role"
"""The OpenAPI extension naming each operation's role; `KeysBeforeBody` enforces what it says."""


@dataclass(frozen=True)
class Principal:
    """The user a request acts as."""

    name: str
    role: Role

    def may(self, required: Role) -> bool:
        return self.role is Role.ADMIN or required is Role.READER


LOCAL = Principal("local", Role.ADMIN)
"""Without keys (loopback only) every request is the local admin, as the CLI is."""
LOOPBACK = ("127.0.0.1", "localhost", "::1")
"""The names `handbook serve` may listen on without keys, and answer to."""


def key_user(key: str) -> str:
    """The user of a plain key (no name in the keys file, or `api.keys`): each key its own,
    named by a digest so that its sessions survive a restart and the name shows no key.

    >>> key_user("k1")
    'key-6ab9f1eb'
    """
    return "key-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:8]


def plain_key(key: str) -> tuple[bytes, Principal]:
    """A key without a name: its own user, with the admin role (what every key could do before
    users and roles existed)."""
    return key.encode("utf-8"), Principal(key_user(key), Role.ADMIN)


def parse_keys(
    text: str, skip: Callable[[str], None] | None = None
) -> tuple[tuple[bytes, Principal], ...]:
    """The keys in a keys file, one per line: `KEY NAME ROLE` (a named user with role `reader`
    or `admin`) or a plain `KEY` (its own user, admin). Blank lines and `#` comment lines are
    skipped; any other line is a `ConfigError` naming it, or, with `skip`, is passed to it and
    left out (a typo in one line of a running server's file must not lock everyone out).

    >>> [(k, p.name, p.role.value) for k, p in parse_keys("# ops\\nk1 alice reader\\n\\n k2 \\n")]
    [(b'k1', 'alice', 'reader'), (b'k2', 'key-015f7e6b', 'admin')]
    >>> parse_keys("k3 bob owner")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    handbook.errors.ConfigError: Line 1 of the keys file is not `KEY`, nor `KEY NAME ROLE` ...
    """
    found: list[tuple[bytes, Principal]] = []
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if len(fields) == 1:
            found.append(plain_key(fields[0]))
        elif len(fields) == 3 and fields[2] in tuple(Role):
            found.append((fields[0].encode("utf-8"), Principal(fields[1], Role(fields[2]))))
        else:
            problem = (
                f"Line {number} of the keys file is not `KEY`, nor `KEY NAME ROLE` with ROLE "
                "reader or admin; fix or delete that line."
            )
            if skip is None:
                raise ConfigError(problem)
            skip(problem)
    return tuple(found)


class KeyRing:
    """The keys the API accepts right now, each with its user: fixed ones plus the lines of a
    keys file, which is checked (one `stat`) on every request and re-read when it changed."""

    def __init__(
        self,
        keys: tuple[str, ...],
        keys_file: Path | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._fixed = tuple(plain_key(k) for k in keys)
        self._file = keys_file
        self._clock = clock
        self._signature: tuple[int, ...] | None = None
        self._from_file: tuple[tuple[bytes, Principal], ...] = ()

    @classmethod
    def from_settings(cls, api: ApiSettings) -> KeyRing:
        return cls(api.keys, api.keys_file)

    @property
    def enabled(self) -> bool:
        """Keys are required: some are configured, or a keys file is named (even an empty one:
        emptying the file revokes every key in it, it does not open the API)."""
        return bool(self._fixed) or self._file is not None

    def check_file(self) -> None:
        """At start-up: a named keys file must be readable and every line well formed."""
        if self._file is None:
            return
        try:
            parse_keys(self._file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"api.keys_file {self._file} cannot be read ({exc}); create it with one key "
                "per line, or unset api.keys_file."
            ) from exc
        except ConfigError as exc:
            raise ConfigError(f"api.keys_file {self._file}: {exc}") from None

    def current(self) -> tuple[bytes, ...]:
        """The keys accepted now."""
        return tuple(key for key, _ in self._fixed + self._file_keys())

    def user(self, given: str) -> Principal | None:
        """The user whose key `given` is (None: no such key), compared in constant time.
        `given` is a header value, which Starlette decodes as Latin-1: its bytes are the bytes
        the client sent."""
        if not given:
            return None
        raw = given.encode("latin-1", errors="replace")
        found: Principal | None = None
        for key, principal in self._fixed + self._file_keys():
            if secrets.compare_digest(raw, key) and found is None:  # no early exit
                found = principal
        return found

    def accepts(self, given: str) -> bool:
        """Whether `given` is one of the keys."""
        return self.user(given) is not None

    def _file_keys(self) -> tuple[tuple[bytes, Principal], ...]:
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
        keys = parse_keys(
            text, lambda problem: log.warning("api.keys_file %s: %s", self._file, problem)
        )
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


FORBIDDEN = "This needs the {role} role; your key's user {name!r} is a {has}. Ask an admin."
NO_ROLE = "This route declares no role, so nobody may use it (api/auth.py: ROLE_KEY)."


def forbidden(principal: Principal, required: Role | None) -> str | None:
    """Why `principal` may not use a route that requires `required` (None: it may). A route
    without a declared role is refused to everyone: a forgotten declaration fails closed."""
    if required is None:
        return NO_ROLE
    if principal.may(required):
        return None
    return FORBIDDEN.format(role=required.value, name=principal.name, has=principal.role.value)


class RoleTable:
    """(method, path) -> the role its OpenAPI operation declares, read from the app's schema
    once, so that what the docs say is what is enforced."""

    def __init__(self) -> None:
        self._table: list[tuple[re.Pattern[str], dict[str, Role | None]]] | None = None

    def required(self, app: Any, method: str, path: str) -> tuple[bool, Role | None]:
        """(found, role): found is False for a path or method the schema does not have."""
        if self._table is None:
            self._table = [
                (
                    re.compile(re.sub(r"\{[^/]+\}", "[^/]+", template) + r"\Z"),
                    {
                        m.upper(): (Role(op[ROLE_KEY]) if ROLE_KEY in op else None)
                        for m, op in operations.items()
                    },
                )
                for template, operations in app.openapi()["paths"].items()
            ]
        for pattern, methods in self._table:
            if pattern.match(path) and method in methods:
                return True, methods[method]
        return False, None


class KeysBeforeBody:
    """Refuses a /v1 or /api request without a valid key (401), or whose user lacks the route's role
    (403), before its body is read (see above)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.roles = RoleTable()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        protected = any(path == p or path.startswith(p + "/") for p in PROTECTED)
        if scope["type"] == "http" and protected:
            known, required = self.roles.required(scope["app"], scope["method"], path)
            if await _admit(scope, receive, send, required, check_role=known) is None:
                return
        await self.app(scope, receive, send)


class RoleGuard:
    """An ASGI app served beside the routers (MCP at /mcp), behind the same keys and roles as
    /v1: without a valid key 401 (when keys are configured; without keys, the local admin),
    without `role` 403, both before the body is read. The user goes on in
    `scope["handbook.principal"]`."""

    def __init__(self, app: ASGIApp, role: Role) -> None:
        self.app = app
        self.role = role

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            principal = await _admit(scope, receive, send, self.role)
            if principal is None:
                return
            scope["handbook.principal"] = principal
        await self.app(scope, receive, send)


async def _admit(
    scope: Scope, receive: Receive, send: Send, required: Role | None, *, check_role: bool = True
) -> Principal | None:
    """The request's user, or None once the request is refused: 401 without a valid key (when
    keys are configured; without keys, the local admin), 403 when the user lacks `required`."""
    keys: KeyRing = scope["app"].state.services.keys
    principal = LOCAL
    if keys.enabled:
        found = keys.user(bearer_token(Headers(scope=scope).get("authorization")))
        if found is None:
            await _refuse(scope, receive, send, 401, "unauthorized", UNAUTHORIZED)
            return None
        principal = found
    problem = forbidden(principal, required) if check_role else None
    if problem is not None:
        await _refuse(scope, receive, send, 403, "forbidden", problem)
        return None
    return principal


async def _refuse(
    scope: Scope, receive: Receive, send: Send, status: int, code: str, message: str
) -> None:
    headers = {"Connection": "close"}  # the server need not take in a body nobody will read
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    response = JSONResponse({"error": code, "message": message}, status_code=status,
                            headers=headers)  # fmt: skip
    await response(scope, receive, send)


def host_name(host_header: str | None) -> str:
    """The name in a Host header, without port or IPv6 brackets.

    >>> [host_name(h) for h in ("localhost:8000", "[::1]:8000", "127.0.0.1", "Evil.Example.")]
    ['localhost', '::1', '127.0.0.1', 'evil.example']
    """
    host = (host_header or "").strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0].rstrip(".") if host.count(":") == 1 else host.rstrip(".")


class LoopbackHosts:
    """Without keys, a server on loopback answers only requests addressed to a loopback name.
    A web page the user opens elsewhere can point its own host name at 127.0.0.1 (DNS
    rebinding) and would otherwise read and change the index through the user's browser; its
    requests carry that name as Host, and get 403. With keys, the key is what counts."""

    def __init__(self, app: ASGIApp, *, loopback_only: bool) -> None:
        self.app = app
        self.loopback_only = loopback_only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.loopback_only and scope["type"] in ("http", "websocket"):
            keys: KeyRing = scope["app"].state.services.keys
            name = host_name(Headers(scope=scope).get("host"))
            if not keys.enabled and name not in LOOPBACK:
                message = (
                    f"This server has no API keys, so it answers only requests addressed to "
                    f"localhost or 127.0.0.1, not to {name or 'no host'!r}. Open it as "
                    "http://127.0.0.1:PORT/, or set API keys (api.keys_file) to serve it "
                    "under another name."
                )
                await _refuse(scope, receive, send, 403, "forbidden", message)
                return
        await self.app(scope, receive, send)
