"""What the routes use: the composition root's services, auth, and answer slots."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.auth import UNAUTHORIZED, KeyRing
from api.jobs import IndexJobs
from handbook.app import Handbook
from handbook.config import Settings


@dataclass
class Services:
    settings: Settings
    handbook: Handbook
    jobs: IndexJobs
    answer_slots: asyncio.Semaphore
    started: float
    keys: KeyRing

    @asynccontextmanager
    async def answer_slot(self) -> AsyncIterator[None]:
        """One of `api.max_concurrent_answers` slots, or a 503 after `api.queue_timeout_s`."""
        try:
            await asyncio.wait_for(self.answer_slots.acquire(), self.settings.api.queue_timeout_s)
        except TimeoutError:
            raise HTTPException(
                503,
                "All answer slots are busy; try again shortly (api.max_concurrent_answers).",
                headers={"Retry-After": "5"},
            ) from None
        try:
            yield
        finally:
            self.answer_slots.release()


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


bearer = HTTPBearer(auto_error=False, description="An API key from api.keys or api.keys_file")


async def require_key(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """Every route but the health checks and the page: `Authorization: Bearer KEY` when keys
    are configured. Keys in the query string are not accepted (they end up in logs)."""
    keys = services(request).keys
    if not keys.enabled:
        return
    if credentials is None or not keys.accepts(credentials.credentials):
        raise HTTPException(401, UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"})


Svc = Annotated[Services, Depends(services)]
