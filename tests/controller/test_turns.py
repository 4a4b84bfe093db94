"""LinkTurns: one request at a time; a poll that waits on a silent controller fails."""

from __future__ import annotations

import asyncio

import pytest

from agent.controller.turns import LinkTurns
from agent.errors import LinkDown

BUDGET = 0.05


async def test_a_poll_behind_a_timed_out_request_fails_after_its_budget_of_silence() -> None:
    turns = LinkTurns()
    await turns.take(poll=False, budget_s=BUDGET, link="udp:test")  # a command's request
    turns.timed_out()  # its first try went unanswered
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(LinkDown, match=r"udp:test: no answer for 0\.\d\d s"):
        await turns.take(poll=True, budget_s=BUDGET, link="udp:test")
    assert loop.time() - started >= BUDGET
    assert turns.silent_waits == 1
    turns.release()
    # The failed poll left nothing behind: the next caller gets the link at once.
    async with asyncio.timeout(5):
        await turns.take(poll=True, budget_s=BUDGET, link="udp:test")
    turns.release()


async def test_a_slow_controller_answering_within_its_timeout_is_waited_for() -> None:
    """No try timed out: however long the request takes, the poll waits its turn."""
    turns = LinkTurns()
    await turns.take(poll=False, budget_s=BUDGET, link="pty")

    async def slow_set() -> None:
        await asyncio.sleep(6 * BUDGET)  # a SET answered after 0.3 s: healthy
        turns.heard()
        turns.release()

    writer = asyncio.create_task(slow_set())
    async with asyncio.timeout(5):
        await turns.take(poll=True, budget_s=BUDGET, link="pty")
    assert writer.done()
    assert turns.silent_waits == 0
    turns.release()


async def test_an_answer_after_a_timeout_clears_the_silence() -> None:
    turns = LinkTurns()
    await turns.take(poll=False, budget_s=1.0, link="pty")
    turns.timed_out()
    turns.heard()  # the retry was answered

    async def finish() -> None:
        await asyncio.sleep(0.2)
        turns.release()

    releasing = asyncio.create_task(finish())
    async with asyncio.timeout(5):
        await turns.take(poll=True, budget_s=0.05, link="pty")
    await releasing
    assert turns.silent_waits == 0
    turns.release()


async def test_a_poll_queued_behind_a_woken_waiter_is_still_budgeted() -> None:
    """Just after a release the lock reads unlocked while a woken command has not run."""
    turns = LinkTurns()
    await turns.take(poll=False, budget_s=BUDGET, link="pty")
    command = asyncio.create_task(turns.take(poll=False, budget_s=BUDGET, link="pty"))
    await asyncio.sleep(0)
    turns.release()  # the command is woken, not yet running
    turns.timed_out()
    with pytest.raises(LinkDown):
        async with asyncio.timeout(5):
            # Queued behind the command, which keeps the link and never hears back.
            await turns.take(poll=True, budget_s=BUDGET, link="pty")
    await command
    turns.release()


async def test_commands_always_wait_their_turn() -> None:
    turns = LinkTurns()
    await turns.take(poll=True, budget_s=BUDGET, link="pty")
    turns.timed_out()
    waiting = asyncio.create_task(turns.take(poll=False, budget_s=BUDGET, link="pty"))
    await asyncio.sleep(3 * BUDGET)
    assert not waiting.done()  # a command waits however long the link is busy
    turns.release()
    async with asyncio.timeout(5):
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
    async with asyncio.timeout(5):
        await turns.take(poll=False, budget_s=1.0, link="pty")
    turns.release()
