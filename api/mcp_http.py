"""`/mcp` in `handbook serve`: the MCP server (`api.mcp_server`) over streamable HTTP, with
the API's Handbook and answer slots. `api.app` serves it behind `api.auth.RoleGuard`, the API's
keys and roles."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any

from api.mcp_server import build_server

if TYPE_CHECKING:
    from starlette.types import Receive, Scope, Send

    from api.slots import AnswerSlots
    from app.handbook import Handbook


class ServedHandbook:
    """For `/mcp` in `handbook serve`: the API's services (`app.state.services`)."""

    def __init__(self, app: Any) -> None:
        self._app = app

    @asynccontextmanager
    async def use(self) -> AsyncIterator[Handbook]:
        yield self._app.state.services.handbook

    @property
    def slots(self) -> AnswerSlots:
        slots: AnswerSlots = self._app.state.services.slots
        return slots


class HttpEndpoint:
    """The ASGI app served at `/mcp` (behind `api.auth.RoleGuard`): MCP's streamable HTTP
    sessions over the API's Handbook. `run()` belongs in the app's lifespan."""

    def __init__(self, app: Any) -> None:
        from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

        self.sessions = StreamableHTTPSessionManager(app=build_server(ServedHandbook(app)))

    def run(self) -> AbstractAsyncContextManager[None]:
        return self.sessions.run()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
        from mcp.server.auth.provider import AccessToken

        principal = scope.get("handbook.principal")
        if principal is not None:  # so that a session answers only the user who opened it
            token = AccessToken(token=principal.name, client_id=principal.name, scopes=[])
            scope["user"] = AuthenticatedUser(token)
        await self.sessions.handle_request(scope, receive, send)
