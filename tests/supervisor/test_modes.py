"""The mode state machine over every (mode, event) pair, and the lease, on a fake clock."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from agent.central.commands import Code, CommandRejected
from agent.central.jws import VerifiedCommand
from agent.controller.interface import (
    Alarms,
    ControllerStatus,
    ControlSource,
    FlashState,
)
from agent.supervisor.authority import Authority, backup_time_for
from agent.supervisor.lease import CentralLease
from agent.supervisor.modes import TRANSITIONS, Mode, ModeEvent, ModeMachine, next_mode

PAIRS = list(itertools.product(Mode, ModeEvent))


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_the_table_lists_every_pair_and_nothing_else() -> None:
    assert set(TRANSITIONS) == set(PAIRS)


@pytest.mark.parametrize(("mode", "event"), PAIRS, ids=lambda v: str(v))
def test_every_pair(mode: Mode, event: ModeEvent) -> None:
    clock = Clock()
    machine = ModeMachine(clock, initial=mode, reason="start")
    clock.now += 5
    change = machine.handle(event, "because")
    expected = next_mode(mode, event)
    if expected is None or expected is mode:
        assert change is None
        assert (machine.mode, machine.reason, machine.since) == (mode, "start", 1000.0)
    else:
        assert change is not None
        assert (change.before, change.after, change.event) == (mode, expected, event)
        assert (machine.mode, machine.reason, machine.since) == (expected, "because", 1005.0)
    # The rules the table must keep, whatever else changes in it:
    if machine.mode is Mode.CENTRAL and mode is not Mode.CENTRAL:
        assert event is ModeEvent.CENTRAL_COMMAND, "only a central command enters central"
    if event is ModeEvent.CONTROLLER_FAULT:
        assert machine.mode is Mode.FAULT, "a fault wins from every mode"
    if mode is Mode.FAULT and machine.mode is not Mode.FAULT:
        assert event is ModeEvent.CONTROLLER_OK
    if event is ModeEvent.CENTRAL_LOST and mode in (Mode.CENTRAL, Mode.FLASH):
        assert machine.mode is Mode.LOCAL, "losing central falls back to local"
    if mode is Mode.OVERRIDE and machine.mode not in (Mode.OVERRIDE, Mode.FAULT):
        assert event is ModeEvent.OVERRIDE_END


def test_a_missing_pair_is_an_error() -> None:
    with pytest.raises(KeyError):
        next_mode("nonsense", ModeEvent.CENTRAL_LOST)  # type: ignore[arg-type]


# -- the lease ---------------------------------------------------------------------------


def test_lease_lost_for_each_reason() -> None:
    clock = Clock()
    lease = CentralLease(clock, heartbeat_timeout_s=15)
    assert lease.lost() == "the broker connection is down"
    lease.broker(True)
    assert lease.lost() == "central has not been heard from"
    lease.heard()
    assert lease.lost() is None
    assert lease.deadline() == 1015.0
    clock.now = 1014.9
    assert lease.lost() is None
    clock.now = 1015.0
    assert lease.lost() is not None
    assert "no valid heartbeat for 15.0 s" in (lease.lost() or "")
    lease.heard()
    lease.command(lease_s=5)
    assert lease.deadline() == 1020.0
    clock.now = 1020.0
    assert lease.lost() == "the command's lease ran out"
    lease.release()
    assert lease.lost() is None
    lease.broker(False)
    assert lease.lost() == "the broker connection is down"
    assert lease.deadline() is None


# -- the authority: events from what happens -------------------------------------------------


class NoController:
    endpoint = "none"


def status(flash: FlashState = FlashState.NOT_FLASH) -> ControllerStatus:
    return ControllerStatus(
        received_at=0.0,
        phases=(),
        pattern=1,
        commanded=1,
        free_status="not_free",
        cycle_time_s=0,
        control=ControlSource.SYSTEM,
        flash=flash,
        alarms=Alarms(),
    )


def authority(**kwargs: Any) -> tuple[Authority, Clock, list[Any]]:
    clock = Clock()
    events: list[Any] = []
    made = Authority(
        controller=NoController(),  # type: ignore[arg-type]
        heartbeat_timeout_s=15,
        wall=clock,
        mono=clock,
        record=events.append,
        **kwargs,
    )
    return made, clock, events


def test_central_command_then_loss_falls_back_and_releases() -> None:
    auth, clock, events = authority()
    auth.broker(True)
    auth.applied(None, "control.pattern", 2)
    assert mode_of(auth) is Mode.CENTRAL
    assert auth.lease.lost() is None
    clock.now += 16
    why = auth.lease.lost()
    assert why is not None
    auth._event(ModeEvent.CENTRAL_LOST, why)
    assert mode_of(auth) is Mode.LOCAL
    assert auth._release, "the controller is released to its time-of-day schedule"
    assert [e["mode"] for e in events if e["kind"] == "mode"] == ["central", "local"]


def mode_of(auth: Authority) -> Mode:
    """The mode (a call, so that mypy does not narrow it between assertions)."""
    return auth.mode


def test_flash_and_faults_from_status() -> None:
    auth, _, _ = authority()
    auth.status(status(FlashState.STARTUP))
    assert mode_of(auth) is Mode.LOCAL, "start-up flash is not a mode"
    auth.status(status(FlashState.LOCAL_MANUAL))
    assert mode_of(auth) is Mode.FLASH
    auth.status(status())
    assert mode_of(auth) is Mode.LOCAL
    auth.status(status(FlashState.MMU))
    assert mode_of(auth) is Mode.FAULT
    auth.status(status(FlashState.MMU))
    assert mode_of(auth) is Mode.FAULT
    auth.status(status())
    assert mode_of(auth) is Mode.LOCAL
    auth.controller_link(False, "timeout")
    assert mode_of(auth) is Mode.FAULT
    auth.controller_link(True, "")
    assert mode_of(auth) is Mode.LOCAL


class Verdict:
    def __init__(self, synced: bool) -> None:
        self.synced = synced
        self.detail = "kernel: STA_UNSYNC set" if not synced else "synchronised"


class Trust:
    def __init__(self, synced: bool) -> None:
        self.synced = synced

    def check(self) -> Verdict:
        return Verdict(self.synced)


def command(cmd: str, args: Any) -> VerifiedCommand:
    from agent.central.commands import COMMANDS, CommandClaims

    model = COMMANDS[cmd].args.model_validate(args)
    claims = CommandClaims.model_validate(
        {"iss": "t", "aud": "d", "jti": "j1", "iat": 1, "exp": 2, "cmd": cmd, "args": args}
    )
    return VerifiedCommand(
        jti="j1", iss="t", kid="k", cmd=cmd, args=model, iat=1, exp=2, nbf=None,
        aud=("d",), claims=claims,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("args", "refused"),
    [
        ({"pattern": 2}, True),
        ({"pattern": "free", "activate_at": 2_000_000_000}, True),
        ({"pattern": "free"}, False),
        ({"pattern": "flash"}, False),
    ],
)
def test_an_untrusted_clock_refuses_coordination(args: dict[str, Any], refused: bool) -> None:
    auth, _, _ = authority(clock_trust=Trust(False))
    if refused:
        with pytest.raises(CommandRejected) as caught:
            auth.admit(command("control.pattern", args))
        assert caught.value.code is Code.E_CLOCK
        assert "STA_UNSYNC" in caught.value.detail
    else:
        auth.admit(command("control.pattern", args))
    auth.admit(command("control.release", {}))
    trusted, _, _ = authority(clock_trust=Trust(True))
    trusted.admit(command("control.pattern", args))


def test_override_refuses_central_control() -> None:
    auth, _, _ = authority()
    auth._event(ModeEvent.OVERRIDE_START, "technician T. Smith, 30 min")
    for cmd, args in (("control.pattern", {"pattern": 2}), ("control.release", {})):
        with pytest.raises(CommandRejected) as caught:
            auth.admit(command(cmd, args))
        assert caught.value.code is Code.E_OVERRIDE
    auth.admit(command("diag.request", {}))


def test_backup_time_is_longer_than_the_heartbeat_timeout() -> None:
    for timeout in (1, 5, 15, 60, 600):
        assert backup_time_for(timeout) > timeout


class RecordingController:
    """A controller double that records commands (the override logic, not the wire)."""

    endpoint = "recording"

    def __init__(self) -> None:
        self.commands: list[Any] = []

    async def command_pattern(self, command: Any) -> None:
        self.commands.append(command)


async def test_an_override_refuses_central_and_ends_by_itself() -> None:
    import asyncio

    from agent.supervisor.authority import OverrideRefused

    controller = RecordingController()
    clock = Clock()
    auth = Authority(controller=controller, heartbeat_timeout_s=15, wall=clock, mono=clock)  # type: ignore[arg-type]
    with pytest.raises(OverrideRefused):
        await auth.start_override(7, minutes=10, who="tech", plan_patterns=frozenset({1, 2}))
    with pytest.raises(OverrideRefused):
        await auth.start_override(1, minutes=0, who="tech", plan_patterns=frozenset({1, 2}))
    assert controller.commands == []
    override = await auth.start_override(
        2, minutes=10, who="T. Smith", plan_patterns=frozenset({1, 2})
    )
    assert mode_of(auth) is Mode.OVERRIDE
    assert controller.commands == [2]
    assert override.until_wall == clock.now + 600
    with pytest.raises(CommandRejected) as caught:
        auth.admit(command("control.pattern", {"pattern": 1}))
    assert caught.value.code is Code.E_OVERRIDE
    # The deadline passes: the lease watcher ends the override and releases the controller.
    clock.now += 601
    watcher = asyncio.create_task(auth.watch_lease())
    await asyncio.sleep(0.01)
    watcher.cancel()
    await asyncio.gather(watcher, return_exceptions=True)
    assert mode_of(auth) is Mode.LOCAL
    assert auth._release
    assert auth.override is None
    # A technician can also give control back early.
    await auth.start_override("flash", minutes=5, who="tech", plan_patterns=frozenset())
    assert auth.end_override("tech")
    assert mode_of(auth) is Mode.LOCAL
    assert not auth.end_override("tech")


def test_the_operator_docs_show_this_table() -> None:
    """docs/modes.md carries the transition table as the code has it."""
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "modes.md").read_text()
    for event in ModeEvent:
        cells = []
        for mode in Mode:
            after = next_mode(mode, event)
            cells.append("·" if after is None or after is mode else f"→ `{after}`")
        row = f"| `{event}` | " + " | ".join(cells) + " |"
        assert row in doc, f"docs/modes.md lacks or misstates: {row}"
