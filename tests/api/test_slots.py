"""The answer slots every answering route and MCP share (`api.slots`)."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncGenerator

import pytest

from api.slots import AnswerSlots, SlotsBusy
from handbook.errors import NotIndexed


async def events(log: list[str], fail_first: bool = False) -> AsyncGenerator[str, None]:
    try:
        if fail_first:
            raise NotIndexed("nothing to search")
        for event in ("sources", "token", "done"):
            yield event
    finally:
        log.append("closed")


async def free(slots: AnswerSlots) -> bool:
    try:
        async with slots.hold():
            return True
    except SlotsBusy:
        return False


def test_a_full_server_waits_the_queue_time_then_says_which_setting() -> None:
    async def main() -> None:
        slots = AnswerSlots(1, wait_s=0.2)
        async with slots.hold():
            started = asyncio.get_running_loop().time()
            with pytest.raises(SlotsBusy, match=r"api\.max_concurrent_answers"):
                async with slots.hold():
                    pass
            assert asyncio.get_running_loop().time() - started >= 0.2
        assert await free(slots)

    asyncio.run(main())


def test_a_stream_holds_its_slot_from_take_until_it_is_closed() -> None:
    async def main() -> None:
        slots = AnswerSlots(1, wait_s=0.05)
        log: list[str] = []
        held = await slots.take(events(log))
        assert not await free(slots), "taken before the first event is read"
        assert await anext(held) == "sources"
        await held.aclose()  # the client left after one event
        assert log == ["closed"] and await free(slots)

        held = await slots.take(events(log))
        assert [event async for event in held] == ["sources", "token", "done"]
        assert log == ["closed", "closed"] and await free(slots)

    asyncio.run(main())


def test_a_stream_that_fails_before_its_first_event_fails_at_take() -> None:
    async def main() -> None:
        slots = AnswerSlots(1, wait_s=0.05)
        log: list[str] = []
        with pytest.raises(NotIndexed):
            await slots.take(events(log, fail_first=True))
        assert log == ["closed"] and await free(slots)

    asyncio.run(main())


def test_a_stream_never_read_gives_its_slot_back_when_dropped() -> None:
    """A response that never starts (the client left at once) drops its events unread."""

    async def main() -> None:
        slots = AnswerSlots(1, wait_s=0.05)
        log: list[str] = []
        held = await slots.take(events(log))
        del held
        gc.collect()
        for _ in range(10):  # the event loop closes dropped generators in a task of its own
            await asyncio.sleep(0)
        assert log == ["closed"] and await free(slots)

    asyncio.run(main())
