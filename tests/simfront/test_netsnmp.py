"""Acceptance: the net-snmp tools against the real ``greenwave-sim serve`` process over UDP."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from agent.protocols import ntcip1202 as mib
from agent.protocols.snmp import Oid, oid_to_str

from .helpers import START_ARGS, SimProcess, example_plan, start_sim, wait_for

pytestmark = pytest.mark.skipif(
    shutil.which("snmpget", path="/usr/bin") is None,
    reason="net-snmp tools are not installed (Debian package 'snmp')",
)

COORD_PATTERN_STATUS = "1.3.6.1.4.1.1206.4.2.1.4.10.0"
SYSTEM_PATTERN_CONTROL = "1.3.6.1.4.1.1206.4.2.1.4.14.0"
PHASE_TABLE = "1.3.6.1.4.1.1206.4.2.1.1.2.1"
_LINE = re.compile(r"^\.?([\d.]+) = (?:(\w[\w-]*): )?(.*)$")


def snmp(
    tmp_path: Path, tool: str, sim: SimProcess, *args: str, community: str = "public"
) -> subprocess.CompletedProcess[str]:
    """Run one net-snmp tool against the simulator: SNMPv1, numeric OIDs, no MIB files."""
    env = {**os.environ, "MIBS": "", "SNMP_PERSISTENT_DIR": str(tmp_path / "snmp")}
    return subprocess.run(
        [
            f"/usr/bin/{tool}",
            "-v1",
            "-c",
            community,
            "-On",
            "-Ox",
            "-t",
            "1",
            "-r",
            "1",
            f"127.0.0.1:{sim.udp_port}",
            *args,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def values(output: str) -> dict[str, str]:
    """``OID = TYPE: value`` lines as {dotted OID: value text}."""
    out: dict[str, str] = {}
    for line in output.splitlines():
        match = _LINE.match(line.strip())
        if match:
            out[match.group(1)] = match.group(3).strip()
    return out


def integer(tmp_path: Path, sim: SimProcess, oid: str) -> int:
    """snmpget one INTEGER."""
    result = snmp(tmp_path, "snmpget", sim, oid)
    assert result.returncode == 0, result.stderr
    return int(values(result.stdout)[oid])


def instance(oid: Oid) -> str:
    """Dotted form for the tools."""
    return oid_to_str(oid)


def test_snmpget_reads_the_running_pattern(tmp_path: Path, sim: SimProcess) -> None:
    # Monday 07:00: the schedule runs pattern 1, once start-up flash is over.
    wait_for(
        "pattern 1 to run",
        lambda: integer(tmp_path, sim, COORD_PATTERN_STATUS) == 1,
        timeout=20,
    )
    result = snmp(
        tmp_path, "snmpget", sim, COORD_PATTERN_STATUS, instance(mib.GLOBAL_TIME.instance())
    )
    assert result.returncode == 0, result.stderr
    assert f".{COORD_PATTERN_STATUS} = INTEGER: 1" in result.stdout
    assert "Counter32: 17040" in result.stdout  # the controller clock, 2024-01-01


def test_snmpwalk_of_the_phase_table_gives_the_plan_in_ntcip_units(
    tmp_path: Path, sim: SimProcess
) -> None:
    result = snmp(tmp_path, "snmpwalk", sim, PHASE_TABLE)
    assert result.returncode == 0, result.stderr
    walked = values(result.stdout)
    assert "OID not increasing" not in result.stderr

    def column(obj: mib.MibObject, phase: int) -> str:
        return walked[instance(obj.instance(phase))]

    plan = example_plan()
    assert len(walked) == 16 * 13  # 16 phase rows, 13 columns
    for phase in plan.phases:
        number = phase.phase
        assert int(column(mib.PHASE_WALK, number)) == int(phase.walk or 0)  # seconds
        assert int(column(mib.PHASE_PEDESTRIAN_CLEAR, number)) == int(phase.ped_clear or 0)
        assert int(column(mib.PHASE_MINIMUM_GREEN, number)) == int(phase.min_green)
        assert int(column(mib.PHASE_MAXIMUM_1, number)) == int(phase.max_green or 0)
        assert int(column(mib.PHASE_YELLOW_CHANGE, number)) == round(phase.yellow * 10)  # tenths
        assert int(column(mib.PHASE_RED_CLEAR, number)) == round(phase.red_clear * 10)  # tenths
        ring = next(i for i, r in enumerate(plan.rings, start=1) if number in r)
        assert int(column(mib.PHASE_RING, number)) == ring
        concurrent = bytes.fromhex(column(mib.PHASE_CONCURRENCY, number).strip('"'))
        barrier = next(b for b in plan.barriers if number in b)
        assert set(concurrent) == {p for p in barrier if p not in plan.rings[ring - 1]}
    assert int(column(mib.PHASE_RING, 9)) == 0  # phases 9-16 are not used


def test_snmpwalk_of_the_whole_tree_ends_cleanly(tmp_path: Path, sim: SimProcess) -> None:
    result = snmp(tmp_path, "snmpwalk", sim, "1.3.6.1.4.1.1206.4.2")
    assert result.returncode == 0, result.stderr
    walked = values(result.stdout)
    assert instance(mib.CONTROLLER_LOCAL_TIME.instance()) in walked  # the last object
    assert instance(mib.MAX_PHASES.instance()) in walked  # the first
    assert "Error" not in result.stdout + result.stderr


def test_snmpset_of_system_pattern_control_changes_the_pattern_at_a_boundary(
    tmp_path: Path, sim: SimProcess
) -> None:
    wait_for(
        "pattern 1 to run",
        lambda: integer(tmp_path, sim, COORD_PATTERN_STATUS) == 1,
        timeout=20,
    )
    result = snmp(tmp_path, "snmpset", sim, SYSTEM_PATTERN_CONTROL, "i", "2")
    assert result.returncode == 0, result.stderr
    assert f".{SYSTEM_PATTERN_CONTROL} = INTEGER: 2" in result.stdout
    assert integer(tmp_path, sim, SYSTEM_PATTERN_CONTROL) == 2
    assert integer(tmp_path, sim, instance(mib.UNIT_CONTROL_STATUS.instance())) == 2
    # Pattern 1's cycle is 120 s: at --speed 50 the boundary comes within 2.4 s of wall time.
    wait_for(
        "pattern 2 to run",
        lambda: integer(tmp_path, sim, COORD_PATTERN_STATUS) == 2,
        timeout=30,
    )
    assert "snmp_set" in sim.log()


def test_a_wrong_community_gets_no_answer_at_all(tmp_path: Path, sim: SimProcess) -> None:
    env = {**os.environ, "MIBS": "", "SNMP_PERSISTENT_DIR": str(tmp_path / "snmp")}
    result = subprocess.run(
        [
            "/usr/bin/snmpget",
            "-v1",
            "-c",
            "wrong",
            "-t",
            "0.5",
            "-r",
            "0",
            "-On",
            f"127.0.0.1:{sim.udp_port}",
            COORD_PATTERN_STATUS,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )
    assert result.returncode != 0
    assert "Timeout" in result.stderr + result.stdout
    assert integer(tmp_path, sim, instance(mib.MAX_PHASES.instance())) == 16  # still serving
    wait_for("the drop to be logged", lambda: "snmp_bad_community_dropped" in sim.log(), timeout=5)


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        ((COORD_PATTERN_STATUS, "i", "3"), "readOnly"),
        ((instance(mib.PHASE_YELLOW_CHANGE.instance(2)), "i", "20"), "badValue"),
        (("1.3.6.1.4.1.1206.4.2.1.1.2.1.2.99", "i", "7"), "noSuchName"),
    ],
)
def test_snmpset_errors_reach_the_tool(
    tmp_path: Path, sim: SimProcess, args: tuple[str, ...], reason: str
) -> None:
    result = snmp(tmp_path, "snmpset", sim, *args)
    assert result.returncode != 0
    assert f"({reason})" in result.stdout + result.stderr


def test_the_write_hooks_work_from_the_command_line(tmp_path: Path) -> None:
    sim = start_sim(
        tmp_path,
        "--udp", "127.0.0.1:0", "--speed", "10", *START_ARGS,
        "--alter", "systemPatternControl=+1",
        "--refuse", "phaseYellowChange:badValue",
        "--ignore", "unitBackupTime",
    )  # fmt: skip
    try:
        result = snmp(tmp_path, "snmpset", sim, SYSTEM_PATTERN_CONTROL, "i", "2")
        assert result.returncode == 0, result.stderr
        assert integer(tmp_path, sim, SYSTEM_PATTERN_CONTROL) == 3
        yellow = instance(mib.PHASE_YELLOW_CHANGE.instance(2))
        result = snmp(tmp_path, "snmpset", sim, yellow, "i", "40")
        assert "(badValue)" in result.stdout + result.stderr
        assert integer(tmp_path, sim, yellow) == 45
        backup = instance(mib.UNIT_BACKUP_TIME.instance())
        assert snmp(tmp_path, "snmpset", sim, backup, "i", "60").returncode == 0
        assert integer(tmp_path, sim, backup) == 0
    finally:
        sim.stop()
