"""The `api` section of the settings (`handbook serve`). Part of `handbook.config.Settings`;
a module of its own to keep config.py small."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from handbook.config_base import Section


class ApiSettings(Section):
    host: str = Field("127.0.0.1", description="`handbook serve` listens here.")
    port: int = Field(8000, ge=1, le=65535, description="`handbook serve` port.")
    keys: tuple[str, ...] = Field(
        (),
        description="API keys (`Authorization: Bearer KEY`); when set, every route but the "
        "health checks and the web page needs one. Each key is its own user with the admin "
        "role (name users and give roles in api.keys_file). Env: HANDBOOK_API_KEYS=k1,k2.",
    )
    keys_file: Path | None = Field(
        None,
        description="A file of API keys, one per line: `KEY NAME ROLE` (a named user, ROLE "
        "reader or admin) or a plain `KEY` (its own user, admin); lines starting with # are "
        "comments. Accepted besides api.keys. It is re-read when it changes: delete a line and "
        "that key is refused from the next request on, without a restart. When set, keys are "
        "required even if the file holds none; `serve` does not start if it cannot be read or "
        "a line is malformed, and none of its keys is accepted while it is missing.",
    )
    max_upload_mb: float = Field(50.0, gt=0, description="Largest document upload.")
    max_body_kb: int = Field(256, ge=1, description="Largest JSON request body.")
    max_header_kb: int = Field(
        32, ge=1, description="Largest request head (request line and all headers); else 431."
    )
    max_headers: int = Field(100, ge=1, description="Most request headers; more get a 431.")
    header_timeout_s: float = Field(
        10.0,
        gt=0,
        description="A client must send a request's line and headers within this many seconds "
        "of connecting (or of the previous response); else the connection is closed.",
    )
    body_timeout_s: float = Field(
        120.0,
        gt=0,
        description="A request body must arrive completely within this many seconds, else 408. "
        "Raise it for large uploads over slow links.",
    )
    max_connections: int = Field(
        200, ge=1, description="Open connections served at once; more get a 503 at once."
    )
    max_concurrent_answers: int = Field(
        4, ge=1, description="Answers generated at once; more requests wait their turn."
    )
    queue_timeout_s: float = Field(
        60.0, gt=0, description="How long a request waits for its turn before a 503."
    )
    cors_origins: tuple[str, ...] = Field(
        (), description="Origins allowed by CORS (off when empty), e.g. http://localhost:3000."
    )
    preload: bool = Field(
        default=True, description="Load the chat model at start-up (`handbook serve`)."
    )

    @field_validator("keys", "cors_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value
