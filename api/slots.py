"""Answer slots: at most `api.max_concurrent_answers` answers are written at a time. A request
waits up to `api.queue_timeout_s` for a slot, then gets `SlotsBusy`: 503 with Retry-After over
HTTP, a tool error over MCP.

Every answering route takes its slot before its response starts, so that a full server is a
status code, never an error inside a 200 stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

from generation.events import AnswerEvent, Done
from handbook.config_api import ApiSettings
from handbook.errors import BackendUnavailable
from handbook.types import Answer

E = TypeVar("E")
RETRY_AFTER_S = 5


class SlotsBusy(BackendUnavailable):
    """No answer slot freed up within `api.queue_timeout_s`."""


class AnswerSlots:
    def __init__(self, count: int, wait_s: float) -> None:
        self._free = asyncio.Semaphore(count)
        self._wait_s = wait_s

    @classmethod
    def of(cls, api: ApiSettings) -> AnswerSlots:
        return cls(api.max_concurrent_answers, api.queue_timeout_s)

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        """One slot, or `SlotsBusy` after `api.queue_timeout_s`."""
        try:
            await asyncio.wait_for(self._free.acquire(), self._wait_s)
        except TimeoutError:
            raise SlotsBusy(
                "All answer slots are busy; try again shortly (api.max_concurrent_answers)."
            ) from None
        try:
            yield
        finally:
            self._free.release()

    async def answer(
        self,
        events: AsyncGenerator[AnswerEvent, None],
        each: Callable[[AnswerEvent], object] = lambda event: None,
    ) -> Answer:
        """The finished answer (the last event), written in a slot; `each` sees every event."""
        async with self.hold():
            try:
                async for event in events:
                    each(event)
                    if isinstance(event, Done):
                        return event.answer
            finally:
                await events.aclose()
        raise AssertionError("the answer's events ended without a Done event")

    async def take(self, events: AsyncGenerator[E, None]) -> AsyncGenerator[E, None]:
        """One answer's events in a slot, for a streamed response. The slot is taken and the
        first event computed here, before the response starts: a full server or a failed
        search is a status code. The slot is given back when the events end or are closed."""
        held = self._held(events)
        first = await anext(held)
        return _after(first, held)

    async def _held(self, events: AsyncGenerator[E, None]) -> AsyncGenerator[E, None]:
        try:
            async with self.hold():
                async for event in events:
                    yield event
        finally:
            await events.aclose()


async def _after(first: E, rest: AsyncGenerator[E, None]) -> AsyncGenerator[E, None]:
    try:
        yield first
        async for event in rest:
            yield event
    finally:
        await rest.aclose()
