"""Reading a plan document: bytes → :class:`Plan`, or one clear reason per problem.

This is where plan data enters the agent (from a file, or from a ``plan.load``
command), so this is where library errors become domain errors:

* the size is checked before anything is parsed (:data:`MAX_PLAN_BYTES`);
* JSON errors become :class:`PlanParseError` with line and column;
  duplicate keys, ``NaN``/``Infinity`` and absurdly long numbers are refused
  too — the standard library would silently accept or crash on them;
* pydantic errors become :class:`PlanSchemaError`, one ``(path, reason)`` per
  problem, with a hint for a mistyped field name (``yelow`` → ``yellow``).

Then :func:`judge` runs the validator. Nothing here prints or exits; the CLI
and the command handler decide what to do with the result.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from agent.errors import PlanParseError, PlanSchemaError
from agent.plan.limits import DEFAULT_SITE_LIMITS, SiteLimits
from agent.plan.model import MAX_PLAN_BYTES, Plan
from agent.plan.validator import Report, validate_plan


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r} in one object; which value counts?")
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number a plan can hold")


def _size_text(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MiB" if n >= 1024 * 1024 else f"{n} bytes"


def parse_json(data: bytes | str) -> Any:
    """Parse plan JSON strictly; raise :class:`PlanParseError` with a position when not."""
    size = len(data.encode() if isinstance(data, str) else data)
    if size > MAX_PLAN_BYTES:
        raise PlanParseError(
            f"the document is {_size_text(size)}; a plan document is at most "
            f"{_size_text(MAX_PLAN_BYTES)}"
        )
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as err:
            raise PlanParseError(
                f"not UTF-8 text (byte {err.start}: invalid {err.reason})"
            ) from err
    else:
        text = data
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip():
        raise PlanParseError("the document is empty")
    try:
        return json.loads(
            text,
            object_pairs_hook=_reject_duplicate_keys,
            parse_constant=_reject_constant,
        )
    except json.JSONDecodeError as err:
        raise PlanParseError(
            f"line {err.lineno}, column {err.colno}: {err.msg}",
            line=err.lineno,
            column=err.colno,
        ) from err
    except RecursionError as err:
        raise PlanParseError("the document is nested too deeply to be a plan") from err
    except ValueError as err:
        # Duplicate keys, NaN/Infinity, integers past Python's digit limit.
        raise PlanParseError(str(err)) from err


def format_loc(loc: Sequence[int | str]) -> str:
    """A pydantic error location as a JSON path: ``phases[2].yellow``."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path or "(document)"


def _known_fields(model: type[BaseModel], loc: Sequence[int | str]) -> list[str]:
    """Field names of the model at ``loc`` (the parent of an unknown field)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int) or current is None:
            continue
        fields = getattr(current, "model_fields", None)
        if fields is None or part not in fields:
            return []
        annotation = fields[part].annotation
        current = _model_inside(annotation)
    fields = getattr(current, "model_fields", None)
    return list(fields) if fields else []


def _model_inside(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_inside(arg)
        if found is not None:
            return found
    return None


def _describe(error: Any, model: type[BaseModel]) -> str:
    kind = error["type"]
    loc = error["loc"]
    if kind == "extra_forbidden" and loc:
        known = _known_fields(model, loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        listing = f" (known: {', '.join(known)})" if known and not close else ""
        return f"unknown field{hint}{listing}"
    if kind == "missing":
        return "required field is missing"
    message = str(error["msg"])
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    value = error.get("input")
    if kind.endswith("_type") and not isinstance(value, dict | list):
        # default=str: a TOML config holds dates and times, which JSON has no form for.
        message += f" (got {json.dumps(value, default=str)[:40]})"
    return message


def schema_problems(err: ValidationError, model: type[BaseModel]) -> tuple[tuple[str, str], ...]:
    """Every pydantic error as ``(path, reason)``, deduplicated, in document order."""
    seen: dict[tuple[str, str], None] = {}
    for error in err.errors(include_url=False):
        loc = _clean_loc(error["loc"])
        if error["type"] == "extra_forbidden" and error["loc"]:
            # The last part is the document's own key, whatever it looks like
            # (a key named "[" or "int" is not a union branch).
            loc = (*_clean_loc(error["loc"][:-1]), error["loc"][-1])
        seen[(format_loc(loc), _describe({**error, "loc": loc}, model))] = None
    return tuple(seen)


def _clean_loc(loc: Sequence[int | str]) -> tuple[int | str, ...]:
    # pydantic names union branches in the location ('int', "literal['free','flash']",
    # 'function-after[...]'); they are not part of the document's path.
    return tuple(
        part
        for part in loc
        if not (isinstance(part, str) and ("[" in part or part in {"int", "float", "str"}))
    )


def parse_plan(data: bytes | str) -> Plan:
    """A plan document from raw bytes; :class:`PlanParseError` or :class:`PlanSchemaError`."""
    obj = parse_json(data)
    if not isinstance(obj, dict):
        raise PlanSchemaError(
            "the document is not a JSON object",
            problems=(("(document)", "a plan document is a JSON object {…}"),),
        )
    try:
        return Plan.model_validate(obj)
    except ValidationError as err:
        problems = schema_problems(err, Plan)
        raise PlanSchemaError(
            f"not a valid plan document ({len(problems)} problem(s))", problems=problems
        ) from err


def read_plan_file(path: Path) -> Plan:
    """Read and parse a plan file; unreadable files raise :class:`PlanParseError`."""
    try:
        size = path.stat().st_size
        if size > MAX_PLAN_BYTES:
            raise PlanParseError(
                f"the file is {_size_text(size)}; a plan document is at most "
                f"{_size_text(MAX_PLAN_BYTES)}"
            )
        with path.open("rb") as handle:
            data = handle.read(MAX_PLAN_BYTES + 1)
    except OSError as err:
        raise PlanParseError(f"cannot read the file: {err.strerror or err}") from err
    return parse_plan(data)


def judge(data: bytes | str, limits: SiteLimits = DEFAULT_SITE_LIMITS) -> tuple[Plan, Report]:
    """Parse and validate in one step (the path every plan takes into the agent)."""
    plan = parse_plan(data)
    return plan, validate_plan(plan, limits)
