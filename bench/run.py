"""The benchmark command: every script under bench/, one table against SPEC §10.

    .venv/bin/python bench/run.py [--quick] [--only NAME,...] [--skip NAME,...]
                                  [--markdown FILE] [--out DIR] [--fuzz-examples N]

Needs what ``./scripts/setup`` installs on a fresh Debian-like machine: the
virtualenv (``.venv``) and mosquitto (the central, fallback, footprint and
fleet steps start their own brokers on loopback; without mosquitto they are
reported "not run"). Nothing else runs a broker or a network service.

Runs each benchmark as its own process, one after another, with ``--json
FILE`` so that this script reads its figures (each script's own tables go
to ``DIR/NAME.out``, its progress to ``DIR/NAME.err``):

=========== ============================================================== ========= =======
step        what                                                           full      --quick
=========== ============================================================== ========= =======
validator   plan documents judged per second                               7 s       1 s
codec       SNMP, PMPP, GB/T 20999 encode/decode per second                10 s      4 s
simulator   the simulator's speed and requests/s                           28 s      13 s
controller  status at 10 Hz over UDP/TCP/pty; serial wire share at 9600,   4.2 min   42 s
            38400, 115200 baud
central     publish → applied, CPU per command, idle CPU, RSS, signature   75 s      34 s
            verification, SPaT under 1,000 forged commands/s
fallback    link loss → local over 50 cuts (broker killed; heartbeats      3.2 min   18 s
            stop)
footprint   start to READY (10 starts), VmRSS/RssAnon, idle CPU            77 s      29 s
fleet       N agents + N simulators on one broker, green-wave rollout;     7 min     30 s
            N = 5, 10, 20, 40, 60 until something gives
fuzz        bench/fuzz.py: every codec property, 100,000 examples each     hours     80 s
=========== ============================================================== ========= =======

(Measured on a shared 2-core machine: 17 min 44 s for the full run without
fuzz, 4 min 10 s for ``--quick``.)

Then prints the machine (cores, CPU model, RAM, Python, kernel, date, load)
and one table: figure | value | SPEC §10 target | met / missed (or "—" for
a figure without a bar); ``--markdown FILE`` writes the same as markdown for
docs/performance.md. Benchmarks measure; the verdict column only compares
with the SPEC's numbers. Exit status 0 unless a step could not run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common import REPO, machine

from tests.broker import mosquitto_binary

BENCH = Path(__file__).resolve().parent
#: bench/fuzz.py's default (and SPEC §10's long run): examples per target.
FUZZ_DEFAULT_EXAMPLES = 100_000


@dataclass(frozen=True)
class Step:
    name: str
    script: str
    full: tuple[str, ...]
    quick: tuple[str, ...]
    #: Starts mosquitto.
    broker: bool = False
    #: Writes ``--json FILE`` (fuzz does not: its summary line and exit status are read).
    json: bool = True


STEPS = (
    Step("validator", "validator.py", ("--seconds", "2"), ("--seconds", "0.3")),
    Step("codec", "codec.py", ("--seconds", "1"), ("--seconds", "0.3")),
    Step("simulator", "simulator.py", ("--seconds", "4"), ("--seconds", "1")),
    Step(
        "controller",
        "controller.py",
        ("--seconds", "60", "--serial-seconds", "20"),
        ("--seconds", "5", "--serial-seconds", "5"),
    ),
    Step(
        "central",
        "central.py",
        ("--commands", "200", "--flood-rate", "1000", "--flood-seconds", "10"),
        ("--commands", "30", "--flood-rate", "1000", "--flood-seconds", "4"),
        broker=True,
    ),
    Step("fallback", "fallback.py", ("--cuts", "50"), ("--cuts", "4"), broker=True),
    Step(
        "footprint",
        "footprint.py",
        ("--starts", "10", "--idle-seconds", "30", "--burst", "100"),
        ("--starts", "3", "--idle-seconds", "5", "--burst", "10"),
        broker=True,
    ),
    Step(
        "fleet",
        "fleet.py",
        ("--agents", "5,10,20,40,60", "--idle-seconds", "20"),
        ("--agents", "3", "--idle-seconds", "5"),
        broker=True,
    ),
    Step("fuzz", "fuzz.py", (), ("--examples", "300"), json=False),
)


@dataclass
class Outcome:
    step: Step
    #: "ok", "failed" (non-zero exit), "not run" (why in ``note``).
    status: str
    seconds: float = 0.0
    figures: dict[str, Any] = field(default_factory=dict)
    note: str = ""


def run_step(step: Step, args: argparse.Namespace, out: Path) -> Outcome:
    """Run one benchmark script as a child process; its figures from its JSON file."""
    script = BENCH / step.script
    if not script.exists():
        return Outcome(step, "not run", note=f"bench/{step.script} does not exist yet")
    if step.broker and mosquitto_binary() is None:
        return Outcome(step, "not run", note="mosquitto not installed: run ./scripts/setup")
    options = list(step.quick if args.quick else step.full)
    if step.name == "fuzz" and args.fuzz_examples is not None:
        options = ["--examples", str(args.fuzz_examples)]
    json_path = out / f"{step.name}.json"
    if step.json:
        options += ["--json", str(json_path)]
    command = [sys.executable, str(script), *options]
    print(f"-- {step.name}: {' '.join(['bench/' + step.script, *options])}", flush=True)
    started = time.monotonic()
    with (
        (out / f"{step.name}.out").open("wb") as stdout,
        (out / f"{step.name}.err").open("wb") as stderr,
    ):
        proc = subprocess.Popen(command, stdout=stdout, stderr=stderr, cwd=REPO)
        try:
            code = proc.wait()
        except BaseException:
            # Ctrl-C or SIGTERM: let the child unwind (it stops its own processes), then go.
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            raise
    seconds = time.monotonic() - started
    outcome = Outcome(step, "ok" if code == 0 else "failed", seconds=seconds)
    if step.json and json_path.exists():
        outcome.figures = json.loads(json_path.read_text())
    if not step.json:
        lines = (out / f"{step.name}.out").read_text(errors="replace").splitlines()
        summary = [line for line in lines if line.startswith("summary:")]
        examples = int(options[options.index("--examples") + 1]) if "--examples" in options else 0
        outcome.figures = {
            "summary": summary[-1] if summary else "",
            "exit": code,
            "examples": examples or FUZZ_DEFAULT_EXAMPLES,
        }
    if code != 0:
        tail = (out / f"{step.name}.err").read_text(errors="replace").strip().splitlines()[-3:]
        outcome.note = f"exit {code}: " + " | ".join(tail)
    print(f"   {outcome.status} in {seconds:.0f} s{'; ' + outcome.note if outcome.note else ''}")
    return outcome


# -- the table ---------------------------------------------------------------------------

Row = tuple[str, str, str, str]


def verdict(ok: bool | None) -> str:
    return "—" if ok is None else ("met" if ok else "**missed**")


def get(figures: dict[str, Any], *path: str) -> Any:
    """``figures[path[0]][path[1]]…``, or None where any key is missing."""
    value: Any = figures
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def rows_validator(f: dict[str, Any]) -> list[Row]:
    docs = f.get("documents", {})
    cells = ", ".join(f"{v['per_s']:,}" for v in docs.values())
    return [("plan validator: plans judged/s (8-phase, 4-phase, unsafe)", cells, "", verdict(None))]


def rows_codec(f: dict[str, Any]) -> list[Row]:
    rows = []
    for name, v in f.get("codecs", {}).items():
        if "decode" in name or "encode frame" in name or "encode status GetRequest" in name:
            rows.append((f"codec {name}", f"{v['per_s']:,}/s ({v['bytes']} B)", "", verdict(None)))
    return rows


def rows_simulator(f: dict[str, Any]) -> list[Row]:
    one, four = f.get("process_1_in_flight", {}), f.get("process_4_in_flight", {})
    return [
        (
            "simulator: status requests answered/s (1 / 4 in flight)",
            f"{one.get('requests_per_s', 0):,.0f} / {four.get('requests_per_s', 0):,.0f}",
            "",
            verdict(None),
        )
    ]


def rows_controller(f: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for name, v in f.get("status", {}).items():
        p99 = v["gap_p99_ms"]
        rows.append(
            (
                f"status poll gap at 10 Hz, {name}: p50 / p99",
                f"{v['gap_p50_ms']:.1f} / {p99:.1f} ms",
                "p99 ≤ 150 ms",
                verdict(p99 <= 150),
            )
        )
    for baud, v in f.get("serial", {}).items():
        share = v["share_percent"]
        rows.append(
            (
                f"serial poll rate / wire limit at {baud} baud",
                f"{share:.1f} % ({v['achieved_per_s']:.2f} of {v['wire_allows_per_s']:.2f}/s)",
                "≥ 90 %",
                verdict(share >= 90),
            )
        )
    return rows


def rows_central(f: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    applied = get(f, "commands", "applied") or {}
    if applied.get("n"):
        rows.append(
            (
                f"command latency publish → applied, p50 / p99 (n={applied['n']})",
                f"{applied['p50_ms']:.1f} / {applied['p99_ms']:.1f} ms",
                "p99 ≤ 50 ms",
                verdict(applied["p99_ms"] <= 50),
            )
        )
    cpu = get(f, "agent", "cpu_ms_per_command")
    if cpu is not None:
        rows.append(("agent CPU per command", f"{cpu:.2f} ms", "≤ 2 ms", verdict(cpu <= 2)))
    for label, key in (
        ("normally", "spat_gap_no_flood"),
        ("under 1,000 forged/s", "spat_gap_flood"),
    ):
        gap = get(f, "flood", key) or {}
        if gap.get("n"):
            rows.append(
                (
                    f"SPaT update gap p99, {label}",
                    f"{gap['p99_ms']:.1f} ms ({gap.get('per_s', 0):.2f}/s)",
                    "≤ 150 ms",
                    verdict(gap["p99_ms"] <= 150),
                )
            )
    valid = get(f, "flood", "valid_command") or {}
    if valid:
        rows.append(
            (
                "valid commands applied during the flood",
                f"{valid.get('applied')} of {valid.get('sent')}",
                "",
                verdict(None),
            )
        )
    labels = {
        "forged": "signature verification: forged tokens refused/s",
        "heartbeat": "signature verification: valid heartbeats/s",
        "control.pattern": "signature verification: valid control.pattern/s (fsync)",
    }
    for kind, label in labels.items():
        v = get(f, "verify", kind)
        if v:
            rows.append((label, f"{v['per_s']:,.0f} ({v['us_each']:.0f} µs)", "", verdict(None)))
    return rows


def rows_fallback(f: dict[str, Any]) -> list[Row]:
    s = f.get("fallback", {})
    target = s.get("target_s", 0.0)
    rows: list[Row] = []
    labels = {"broker": "broker killed", "heartbeat": "heartbeats stop (from the last)"}
    for kind, label in labels.items():
        k = s.get(kind) or {}
        r = k.get("released_s") or {}
        if not r.get("n"):
            continue
        ok = k["over_target"] == 0 and k["never_released"] == 0
        rows.append(
            (
                f"fallback → controller local, {label}: min / median / max (n={k['cuts']})",
                f"{r['min']:.3f} / {r['median']:.3f} / {r['max']:.3f} s",
                f"≤ {target:g} s every time (timeout {s['heartbeat_timeout_s']:g} s + 1)",
                verdict(ok),
            )
        )
    return rows


def rows_footprint(f: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    ready = f.get("start_to_ready_s") or {}
    if ready.get("n"):
        rows.append(
            (
                f"start to READY, min / median / max (n={ready['n']})",
                f"{ready['min']:.2f} / {ready['median']:.2f} / {ready['max']:.2f} s",
                "≤ 1.5 s",
                verdict(ready["max"] <= 1.5),
            )
        )
    mem = f.get("memory") or {}
    after = mem.get("rss_after_burst") or {}
    if after:
        mb = after["vmrss_mib"] * 2**20 / 1e6
        rows.append(
            (
                "resident memory (VmRSS after a command burst)",
                f"{mb:.1f} MB ({after['vmrss_mib']:.1f} MiB; private {after['rss_anon_mib']:.1f})",
                "≤ 60 MB",
                verdict(mb <= 60),
            )
        )
    idle = mem.get("idle_cpu_percent")
    if idle is not None:
        rows.append(
            (
                "idle CPU (10 Hz poll and SPaT)",
                f"{idle:.2f} % of one core",
                "≤ 1 %",
                verdict(idle <= 1),
            )
        )
    return rows


def rows_fleet(f: dict[str, Any]) -> list[Row]:
    sizes = [s for s in f.get("sizes", []) if "rollout" in s]
    if not sizes:
        return [("fleet on this machine", "no fleet ran", "", verdict(None))]
    rows: list[Row] = []
    for size in sizes:
        n, r, u = size["agents"], size["rollout"], size["idle"]["usage"]
        running = r.get("running_s")
        gives = "; ".join(size["gives"]) or "nothing gives"
        rows.append(
            (
                f"fleet N={n}: rollout to every intersection applied / running",
                f"{_s(r.get('control_applied_s'))} / {_s(running)}",
                "",
                verdict(None),
            )
        )
        rows.append(
            (
                f"fleet N={n}: broker CPU, RSS; agent CPU, RSS (mean); limit",
                f"{u['broker']['cpu_percent_sum']:.1f} %, {u['broker']['rss_mib_sum']:.0f} MiB; "
                f"{u['agents']['cpu_percent_mean']:.2f} %, {u['agents']['rss_mib_mean']:.0f} MiB; "
                f"{gives}",
                "",
                verdict(None),
            )
        )
    tried = ", ".join(str(s["agents"]) for s in sizes)
    rows.append(
        (
            f"fleet: largest N of those tried ({tried}) where nothing gave",
            str(f.get("holds")),
            "",
            "—",
        )
    )
    return rows


def rows_fuzz(f: dict[str, Any]) -> list[Row]:
    passed = f.get("exit") == 0
    long_run = f.get("examples", 0) >= FUZZ_DEFAULT_EXAMPLES
    judged = verdict(passed) if long_run or not passed else "— (short run)"
    return [
        (
            f"fuzz: every codec property, {f.get('examples', 0):,} examples a target",
            (f.get("summary") or "no summary line").removeprefix("summary: "),
            "≥ 100k cases, no failure",
            judged,
        )
    ]


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


#: The table's order: SPEC §10's bars first, then throughputs, the fleet and the fuzz run.
ROWS: dict[str, Callable[[dict[str, Any]], list[Row]]] = {
    "central": rows_central,
    "fallback": rows_fallback,
    "footprint": rows_footprint,
    "controller": rows_controller,
    "validator": rows_validator,
    "codec": rows_codec,
    "simulator": rows_simulator,
    "fleet": rows_fleet,
    "fuzz": rows_fuzz,
}


def table(outcomes: dict[str, Outcome]) -> list[Row]:
    rows: list[Row] = []
    for name, build in ROWS.items():
        outcome = outcomes.get(name)
        if outcome is None:
            continue
        if outcome.status != "ok" and not outcome.figures:
            rows.append((f"{name}", outcome.status, "", outcome.note[:80]))
            continue
        try:
            rows += build(outcome.figures)
        except (KeyError, TypeError, ValueError) as err:
            rows.append((f"{name}", f"unreadable figures ({err!r})", "", "—"))
    return rows


def machine_line(m: dict[str, Any]) -> str:
    return (
        f"{m['machine']}, {m['cores']} cores ({m['cpu']}), {m['ram_gib']} GiB RAM, "
        f"Python {m['python']}, Linux {m['kernel']}; {m['date']}; "
        f"load average at the start {', '.join(str(x) for x in m['load_average'])}"
    )


def text_table(rows: list[Row]) -> str:
    widths = [max(len(r[i]) for r in [("figure", "value", "SPEC §10 target", "met?"), *rows])
              for i in range(4)]  # fmt: skip
    widths[1] = min(widths[1], 60)
    lines = []
    for row in [("figure", "value", "SPEC §10 target", "met?"), *rows]:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
        if len(lines) == 1:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def markdown(rows: list[Row], m: dict[str, Any], command: str, seconds: float) -> str:
    out = [
        f"Measured with `{command}` ({seconds / 60:.0f} min) on {machine_line(m)}.",
        "",
        "| figure | value | SPEC §10 target | met? |",
        "|---|---|---|---|",
    ]
    out += [f"| {' | '.join(cell.replace('|', '/') for cell in row)} |" for row in rows]
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a short smoke run of everything")
    parser.add_argument("--only", default="", help="comma-separated steps to run")
    parser.add_argument("--skip", default="", help="comma-separated steps to leave out")
    parser.add_argument("--markdown", type=Path, default=None, help="write the table here too")
    parser.add_argument(
        "--out", type=Path, default=None, help="keep each step's output and JSON here"
    )
    parser.add_argument("--fuzz-examples", type=int, default=None, help="examples per fuzz target")
    args = parser.parse_args()
    names = [s.name for s in STEPS]
    only = [x for x in args.only.split(",") if x]
    skip = [x for x in args.skip.split(",") if x]
    unknown = sorted(set(only + skip) - set(names))
    if unknown:
        parser.error(f"unknown step(s) {', '.join(unknown)}; steps: {', '.join(names)}")
    steps = [s for s in STEPS if (not only or s.name in only) and s.name not in skip]
    before = machine()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = args.out or Path(tempfile.gettempdir()) / f"greenwave-bench-{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    print(f"greenwave benchmarks{' (--quick)' if args.quick else ''}; output in {out}")
    started = time.monotonic()
    outcomes: dict[str, Outcome] = {}
    for step in steps:
        outcomes[step.name] = run_step(step, args, out)
    seconds = time.monotonic() - started
    rows = table(outcomes)
    print(f"\nmachine: {machine_line(before)}")
    print(f"all steps: {seconds:.0f} s\n")
    print(text_table(rows))
    command = "bench/run.py" + (" --quick" if args.quick else "")
    if args.only:
        command += f" --only {args.only}"
    if args.skip:
        command += f" --skip {args.skip}"
    text = markdown(rows, before, command, seconds)
    (out / "table.md").write_text(text)
    if args.markdown is not None:
        args.markdown.write_text(text)
    failed = [o.step.name for o in outcomes.values() if o.status == "failed"]
    if failed:
        print(f"\nsteps that failed: {', '.join(failed)} (see {out}/NAME.err)")
        sys.exit(1)


if __name__ == "__main__":
    main()
