"""``greenwave plan …``: judge timing plan files before they go anywhere near a controller."""

from __future__ import annotations

import json
import shutil
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import typer
from pydantic import ValidationError

from agent.cli.common import (
    CONFIG_OPTION_HELP,
    EXIT_OK,
    EXIT_UNSAFE,
    EXIT_UNUSABLE,
    config_if_present,
    guarded,
)
from agent.cli.local_cmd import (
    CONFIG_OPTION,
    SOCKET_OPTION,
    OneLineCommand,
    on_the_socket,
    phi,
    say,
    socket_path,
    terminal_width,
)
from agent.errors import GreenwaveError, PlanParseError, PlanSchemaError
from agent.local import client
from agent.local.render import plan_lines
from agent.plan.document import read_plan_file
from agent.plan.limits import DEFAULT_SITE_LIMITS, SiteLimits
from agent.plan.model import Plan
from agent.plan.validator import Report, Violation, validate_plan

app = typer.Typer(
    help="Timing plans: validate files against the safety rules; show the agent's plan.",
    no_args_is_help=True,
)

#: Version of the ``--json`` output layout (docs/plan-format.md).
JSON_FORMAT_VERSION = 1


@dataclass
class FileResult:
    """The outcome for one file, in the shape the JSON output documents."""

    file: str
    status: str  # valid | unsafe | invalid | unreadable
    plan: Plan | None = None
    report: Report | None = None
    problems: list[dict[str, str]] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if self.status in {"invalid", "unreadable"}:
            return EXIT_UNUSABLE
        return EXIT_UNSAFE if self.status == "unsafe" else EXIT_OK

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"file": self.file, "status": self.status}
        if self.plan is not None:
            out["plan"] = {
                "version": self.plan.version,
                "name": self.plan.name,
                "phases": len(self.plan.phases),
                "patterns": len(self.plan.patterns),
                "day_plans": len(self.plan.day_plans),
            }
        if self.report is not None:
            out["violations"] = [v.to_json() for v in self.report.errors]
            out["warnings"] = [v.to_json() for v in self.report.warnings]
        if self.problems:
            out["problems"] = self.problems
        return out


def judge_file(path: Path, limits: SiteLimits) -> FileResult:
    """Parse and validate one file; never raises for bad input."""
    name = str(path)
    try:
        plan = read_plan_file(path)
    except PlanParseError as err:
        problem: dict[str, str] = {"path": "(document)", "message": err.message}
        if err.line is not None:
            problem["line"] = str(err.line)
            problem["column"] = str(err.column)
        return FileResult(file=name, status="unreadable", problems=[problem])
    except PlanSchemaError as err:
        return FileResult(
            file=name,
            status="invalid",
            problems=[{"path": path_, "message": why} for path_, why in err.problems],
        )
    report = validate_plan(plan, limits)
    return FileResult(
        file=name, status="valid" if report.ok else "unsafe", plan=plan, report=report
    )


def _wrap(text: str, indent: str) -> str:
    if not sys.stdout.isatty():
        return indent + text
    width = min(shutil.get_terminal_size((80, 24)).columns, 100)
    return textwrap.fill(text, width=width, initial_indent=indent, subsequent_indent=indent + "  ")


def _violation_line(v: Violation) -> str:
    label = v.rule if v.severity == "error" else f"{v.rule} (warning)"
    return f"{label}: {v.message}"


def _print_text(result: FileResult) -> None:
    if result.status in {"unreadable", "invalid"}:
        kind = "cannot read" if result.status == "unreadable" else "not a plan document"
        typer.echo(f"{result.file}: {kind}: {len(result.problems)} problem(s)")
        for problem in result.problems:
            where = "" if problem["path"] == "(document)" else f"{problem['path']}: "
            typer.echo(f"  {result.file}: {where}{problem['message']}")
        return
    assert result.plan is not None
    assert result.report is not None
    plan, report = result.plan, result.report
    name = f' "{plan.name}"' if plan.name else ""
    summary = (
        f"plan version {plan.version}{name}: {len(plan.phases)} phases, "
        f"{len(plan.patterns)} patterns, {len(plan.day_plans)} day plans"
    )
    if report.ok:
        typer.echo(f"{result.file}: valid, {summary}")
    else:
        typer.echo(f"{result.file}: REJECTED, {len(report.errors)} rule violation(s); {summary}")
    for v in (*report.errors, *report.warnings):
        typer.echo(_wrap(_violation_line(v), "  "))


@app.command("validate")
@guarded
def validate(
    files: list[Path] = typer.Argument(
        ..., help="Plan files (JSON) to judge.", metavar="FILE...", show_default=False
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print one JSON document (see docs/plan-format.md)."
    ),
    config: Path | None = typer.Option(None, "--config", "-c", help=CONFIG_OPTION_HELP),
) -> None:
    """Judge plan files against every safety rule and this site's limits.

    Exit 0 when every file is valid, 1 when a plan breaks a rule, 2 when a file
    cannot be read or is not a plan document.
    """
    agent_config, limits_source = config_if_present(config)
    limits = agent_config.site if agent_config is not None else DEFAULT_SITE_LIMITS
    results = [judge_file(path, limits) for path in files]
    code = max(r.exit_code for r in results)  # unusable (2) > unsafe (1) > valid (0)
    if as_json:
        document = {
            "format": JSON_FORMAT_VERSION,
            "site_limits": limits_source,
            "exit_code": code,
            "files": [r.to_json() for r in results],
        }
        typer.echo(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        for result in results:
            _print_text(result)
        counts = {s: sum(r.status == s for r in results) for s in ("valid", "unsafe")}
        unusable = len(results) - counts["valid"] - counts["unsafe"]
        typer.echo(
            f"{len(results)} file(s): {counts['valid']} valid, {counts['unsafe']} rejected, "
            f"{unusable} unusable (site limits: {limits_source})"
        )
    raise typer.Exit(code)


@app.command("show", cls=OneLineCommand)
@guarded
@on_the_socket
def show(
    as_json: bool = typer.Option(
        False, "--json", help="Print the stored plan as JSON (docs/technician.md)."
    ),
    socket: Path | None = SOCKET_OPTION,
    config: Path | None = CONFIG_OPTION,
) -> None:
    """Show the plan the running agent holds: phases, patterns, day plans, schedule.

    Asks the agent over its control socket (as 'greenwave status' does); the
    plan is the one central loaded, or the local fallback plan.
    """
    document = client.request(socket_path(socket, config), "plan.show")
    if as_json:
        say(json.dumps(document, indent=2, ensure_ascii=False))
        return
    try:
        lines = plan_lines(document, width=terminal_width(), phi=phi(), now=time.time())
    except (ValidationError, KeyError, TypeError) as err:
        raise GreenwaveError(
            f"cannot lay this plan out ({type(err).__name__}; a newer agent?): use --json"
        ) from None
    for line in lines:
        say(line)
