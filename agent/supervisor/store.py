"""What central told this device, durably: the loaded plan and the control in force.

A command is acknowledged ``accepted`` only once what it asks is on the medium
(SPEC §4), so that a crash or a power cut right after the ack loses nothing:

* ``plan.json`` — the last plan central loaded, with its command id and
  whether the controller has confirmed it (``applied``). On start the
  supervisor writes a stored-but-unconfirmed plan into the controller again.
* ``control.json`` — the last ``control.pattern`` / ``control.release`` in
  force, with its activation time and lease.

Both are :class:`~agent.central.durable.DurableFile` envelopes (write, fsync,
rename, fsync the directory; a checksum on read; a one-write-older backup).

Each also records whether the command's final ack was handed to the ack
sender (``answered``), so that an agent killed between ``accepted`` and
``applied`` finishes the command after its restart and answers it then
instead of never (SPEC §10). The flag is set when the ack is queued, not when
the broker confirmed it: an agent killed while its acks wait out a broker
outage loses them (docs/central-integration.md says so; ``state`` and the
events log carry the outcome). After a restart:
the supervisor writes a stored, unconfirmed plan and acknowledges it
``applied``; a control command is never resumed (SPEC §6), so it is answered
``failed`` (a release, which the restart carries out anyway, ``applied``).
Marking a control command done skips the fsync (``sync=False``: it survives
a killed process, not necessarily a power cut) to keep it off the command's
critical path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from agent.central.commands import Jti, NumericDate, StrictModel
from agent.central.durable import DurableFile, Loaded, StateFileError, model_parser
from agent.logs import get_logger
from agent.plan.model import PatternChoice, Plan

log = get_logger("supervisor.store")

PLAN_FILE = "plan.json"
CONTROL_FILE = "control.json"


class StoredPlan(StrictModel):
    """``plan.json``: the plan central loaded."""

    plan: Plan
    #: The ``plan.load`` command that brought it (None: the local fallback plan).
    jti: Jti | None
    stored_at: NumericDate
    #: True once the controller confirmed every object by read-back.
    applied: bool = False
    #: True once central had the final ack (applied or failed) of ``jti``; None
    #: for the fallback plan, and in files of agents that did not record it.
    answered: bool | None = None


class StoredControl(StrictModel):
    """``control.json``: the control command in force (None pattern: released)."""

    jti: Jti
    #: The pattern commanded; None after ``control.release``.
    pattern: PatternChoice | None
    activate_at: NumericDate | None = None
    lease_s: Annotated[float, Field(ge=1, le=86_400)] | None = None
    accepted_at: NumericDate
    applied: bool = False
    #: True once central had the final ack (applied or failed) of ``jti``;
    #: None in files of agents that did not record it.
    answered: bool | None = None


@dataclass(frozen=True, slots=True)
class _Files:
    plan: DurableFile
    control: DurableFile


def _plan_body(model: StoredPlan) -> dict[str, Any]:
    return model.model_dump(mode="json", exclude_none=False)


class CommandStore:
    """The plan and control files under the state directory."""

    def __init__(self, state_dir: Path) -> None:
        self._files = _Files(
            plan=DurableFile(state_dir / PLAN_FILE, kind="plan", indent=1),
            control=DurableFile(state_dir / CONTROL_FILE, kind="control"),
        )
        self._plan: StoredPlan | None = None
        self._control: StoredControl | None = None

    @classmethod
    def open(cls, state_dir: Path) -> CommandStore:
        """Load both files; raises StateFileError when one has no good copy."""
        store = cls(state_dir)
        plan: Loaded[StoredPlan] = store._files.plan.load(model_parser(StoredPlan))
        control: Loaded[StoredControl] = store._files.control.load(model_parser(StoredControl))
        store._plan = plan.value
        store._control = control.value
        for name, loaded in (("plan", plan), ("control", control)):
            if loaded.source == "backup":
                log.error("state_from_backup", file=name, problem=loaded.problem)
        return store

    @property
    def plan(self) -> StoredPlan | None:
        """The stored plan, if central ever loaded one."""
        return self._plan

    @property
    def control(self) -> StoredControl | None:
        """The control command in force, if any."""
        return self._control

    def store_plan(self, plan: Plan, *, jti: str | None, now: float) -> StoredPlan:
        """Store ``plan`` durably, not yet applied (nor answered, when a command brought it)."""
        answered = False if jti is not None else None
        stored = StoredPlan(plan=plan, jti=jti, stored_at=now, applied=False, answered=answered)
        self._files.plan.write(_plan_body(stored))
        self._plan = stored
        return stored

    def mark_plan_applied(self) -> None:
        """Record that the controller confirmed the stored plan (its ack follows)."""
        if self._plan is None or self._plan.applied:
            return
        answered = True if self._plan.answered is not None else None
        stored = self._plan.model_copy(update={"applied": True, "answered": answered})
        self._files.plan.write(_plan_body(stored))
        self._plan = stored

    def mark_plan_failed(self) -> None:
        """Record that central was told the stored plan failed (it stays unconfirmed)."""
        if self._plan is None or self._plan.answered is not False:
            return
        stored = self._plan.model_copy(update={"answered": True})
        self._plan = stored
        self._best_effort(self._files.plan, _plan_body(stored))

    def store_control(self, control: StoredControl) -> None:
        """Store the control command now in force, durably (not yet applied nor answered)."""
        control = control.model_copy(update={"applied": False, "answered": False})
        self._files.control.write(control.model_dump(mode="json"))
        self._control = control

    def mark_control_applied(self, jti: str) -> None:
        """Record that the controller holds the control command ``jti`` (its ack follows).

        Written without fsync (see the module docstring): it must survive a
        killed agent, which would otherwise answer the command ``failed``
        after its restart, but is not worth a millisecond per command.
        """
        if self._control is None or self._control.jti != jti or self._control.applied:
            return
        self._mark_control(applied=True)

    def mark_control_failed(self, jti: str) -> None:
        """Record that central was told the control command ``jti`` failed (no fsync)."""
        if self._control is None or self._control.jti != jti or self._control.answered:
            return
        self._mark_control(applied=self._control.applied)

    def _mark_control(self, *, applied: bool) -> None:
        assert self._control is not None
        control = self._control.model_copy(update={"applied": applied, "answered": True})
        self._control = control
        self._best_effort(self._files.control, control.model_dump(mode="json"))

    @staticmethod
    def _best_effort(file: DurableFile, body: dict[str, Any]) -> None:
        """Write a flag without fsync; a write that fails is logged, the flag kept in memory.

        (At worst a restarted agent answers the command a second time.)
        """
        try:
            file.write(body, sync=False)
        except StateFileError as err:
            log.error("state_flag_not_written", file=str(file.path), error=str(err))
