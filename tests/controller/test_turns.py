"""LinkTurns: one request at a time, and a poll that waits in silence fails like a missed poll."""

from __future__ import annotations

import asyncio

import pytest

from agent.controller.turns import LinkTurns
from agent.errors import LinkDown

BUDGET = 0.05


async def test_a_poll_behind_a_silent_request_fails_after_its_budget() -> None:
    turns = LinkTurns()
    await turns.take(poll=False, budget_s=BUDGET, link="udp:test")  # a command's request
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(LinkDown, match=r"udp:test: no answer for 0\.05 s"):
        await turns.take(poll=True, budget_s=BUDGET, link="udp:test")
    assert loop.time() - started >= BUDGET
    assert turns.silent_waits == 1
    turns.release()
    # The failed poll left nothing behind: the next caller gets the link at once.
    async with asyncio.timeout(1):
        await turns.take(poll=True, budget_s=BUDGET, link="udp:test")
    turns.release()


async def test_a_poll_behind_a_request_that_is_answered_waits_its_turn() -> None:
    turns = LinkTurns()
    await turns.take(poll=False, budget_s=BUDGET, link="pty")

    async def busy_but_answering() -> None:
        # A long plan write: the controller answers every BUDGET / 2.
        for _ in range(8):
            await asyncio.sleep(BUDGET / 2)
            turns.heard()
        turns.release()

    writer = asyncio.create_task(busy_but_answering())
    async with asyncio.timeout(5):
        await turns.take(poll=True, budget_s=BUDGET, link="pty")
    assert writer.done()
    assert turns.silent_waits == 0
    turns.release()


async def test_a_poll_takes_a_free_link_at_once_and_commands_always_wait() -> None:
    turns = LinkTurns()
    await turns.take(poll=True, budget_s=BUDGET, link="pty")
    waiting = asyncio.create_task(turns.take(poll=False, budget_s=BUDGET, link="pty"))
    await asyncio.sleep(3 * BUDGET)
    assert not waiting.done()  # a command waits however long the link is busy
    turns.release()
    async with asyncio.timeout(1):
        await waiting
    turns.release()


async def test_a_cancelled_poll_never_keeps_the_link() -> None:
    turns = LinkTurns()
    await turns.take(poll=False, budget_s=1.0, link="pty")
    poll = asyncio.create_task(turns.take(poll=True, budget_s=1.0, link="pty"))
    await asyncio.sleep(0)
    turns.release()  # the poll's acquire is granted...
    poll.cancel()  # ...and the poll is cancelled before it sees it
    with pytest.raises(asyncio.CancelledError):
        await poll
    await asyncio.sleep(0)
    async with asyncio.timeout(1):
        await turns.take(poll=False, budget_s=1.0, link="pty")
    turns.release()
