"""What the routes use: the composition root's services, auth (users and roles), and answer
slots (`api.slots`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.auth import LOCAL, ROLE_KEY, UNAUTHORIZED, KeyRing, Principal, Role, forbidden
from api.jobs import IndexJobs
from api.slots import AnswerSlots
from app.handbook import Handbook
from handbook.config import Settings


@dataclass
class Services:
    settings: Settings
    handbook: Handbook
    jobs: IndexJobs
    slots: AnswerSlots
    started: float
    keys: KeyRing


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


bearer = HTTPBearer(
    auto_error=False,
    description="An API key from api.keys or api.keys_file; the key's user and role decide what "
    "it may do (`x-handbook-role` on each operation: reader or admin).",
)


async def authorize(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """Every /v1 and /api route: the user of the `Authorization: Bearer KEY` key (401 without
    one, when keys are configured; the local admin when none are), who must have the role the
    route declares (403). Keys in the query string are not accepted (they end up in logs)."""
    keys = services(request).keys
    principal = LOCAL
    if keys.enabled:
        found = keys.user(credentials.credentials) if credentials is not None else None
        if found is None:
            raise HTTPException(401, UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"})
        principal = found
    route = request.scope.get("route")
    declared = (getattr(route, "openapi_extra", None) or {}).get(ROLE_KEY)
    problem = forbidden(principal, Role(declared) if declared else None)
    if problem is not None:
        raise HTTPException(403, problem)
    return principal


def role(required: Role) -> dict[str, Any]:
    """A route's declaration of the role it needs: `@router.get(path, **role(Role.ADMIN))`.
    It goes into the OpenAPI operation, where `authorize` and `KeysBeforeBody` read it."""
    return {"openapi_extra": {ROLE_KEY: required.value}}


READER = role(Role.READER)
ADMIN = role(Role.ADMIN)
Svc = Annotated[Services, Depends(services)]
User = Annotated[Principal, Depends(authorize)]
