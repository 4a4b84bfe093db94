"""A noisy serial line for tests: a TCP relay that puts junk before, inside or after PMPP frames.

The agent connects to the relay (``tcp://127.0.0.1:PORT``), the relay to the
simulator's PMPP TCP port. Bytes are passed on frame by frame (flag to flag),
so a test can say exactly where noise lands::

    to the simulator:  [junk] 7E 05 13 C1 <request> FCS 7E [junk]
    to the agent:      7E 05 13 C1 <resp [junk] onse> FCS 7E

An injection is armed for the next frame in one direction (:meth:`NoisyLine.arm`)
or for every frame (:meth:`NoisyLine.every`). Bytes outside frames are passed
on as they come.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from agent.protocols.pmpp import FLAG

Direction = Literal["to_sim", "to_agent"]
Where = Literal["before", "inside", "after"]
#: Turns one frame into what is sent in its place.
Mangle = Callable[[bytes], bytes]


def mangle(where: Where, junk: bytes) -> Mangle:
    """Put ``junk`` before, in the middle of, or after a frame."""

    def apply(frame: bytes) -> bytes:
        if where == "before":
            return junk + frame
        if where == "after":
            return frame + junk
        middle = len(frame) // 2
        return frame[:middle] + junk + frame[middle:]

    return apply


def split_frames(buffer: bytearray) -> list[bytes]:
    """Take every complete frame (flag .. flag, stray bytes in front kept) off ``buffer``."""
    out: list[bytes] = []
    while True:
        start = buffer.find(FLAG)
        if start < 0:
            return out
        end = buffer.find(FLAG, start + 1)
        if end < 0:
            return out
        if end == start + 1:  # an idle flag: pass it on, look again from the next one
            out.append(bytes(buffer[: start + 1]))
            del buffer[: start + 1]
            continue
        out.append(bytes(buffer[: end + 1]))
        del buffer[: end + 1]


@dataclass
class _Direction:
    armed: list[Mangle] = field(default_factory=list)
    always: Mangle | None = None
    frames: int = 0

    def next_mangle(self) -> Mangle | None:
        self.frames += 1
        if self.armed:
            return self.armed.pop(0)
        return self.always


class NoisyLine:
    """The relay; ``async with NoisyLine(target) as line``, then connect to ``line.port``."""

    def __init__(self, target: tuple[str, int]) -> None:
        self._target = target
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.directions: dict[Direction, _Direction] = {
            "to_sim": _Direction(),
            "to_agent": _Direction(),
        }
        self.port = 0

    async def __aenter__(self) -> NoisyLine:
        self._server = await asyncio.start_server(self._on_client, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    def arm(self, direction: Direction, where: Where, junk: bytes) -> None:
        """Put ``junk`` ``where`` in the next frame going ``direction``."""
        self.directions[direction].armed.append(mangle(where, junk))

    def arm_mangle(self, direction: Direction, change: Mangle) -> None:
        """Send ``change(frame)`` instead of the next frame going ``direction``."""
        self.directions[direction].armed.append(change)

    def every(self, direction: Direction, change: Mangle | None) -> None:
        """Send ``change(frame)`` instead of every frame going ``direction`` (None: stop)."""
        self.directions[direction].always = change

    def frames(self, direction: Direction) -> int:
        """Frames relayed so far in ``direction``."""
        return self.directions[direction].frames

    async def _on_client(
        self, agent_r: asyncio.StreamReader, agent_w: asyncio.StreamWriter
    ) -> None:
        sim_r, sim_w = await asyncio.open_connection(*self._target)
        self._writers |= {agent_w, sim_w}
        pumps = [
            asyncio.create_task(self._pump(agent_r, sim_w, "to_sim"), name="noisy-to-sim"),
            asyncio.create_task(self._pump(sim_r, agent_w, "to_agent"), name="noisy-to-agent"),
        ]
        self._tasks.update(pumps)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for task in pumps:
            task.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
        self._tasks.difference_update(pumps)
        for writer in (agent_w, sim_w):
            writer.close()
            self._writers.discard(writer)

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, direction: Direction
    ) -> None:
        buffer = bytearray()
        state = self.directions[direction]
        while data := await reader.read(4096):
            buffer += data
            for piece in split_frames(buffer):
                is_frame = len(piece) > 1 and piece[-1] == FLAG and FLAG in piece[:-1]
                change = state.next_mangle() if is_frame else None
                writer.write(change(piece) if change is not None else piece)
            await writer.drain()
