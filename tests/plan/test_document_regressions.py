"""Plan documents found by the long fuzz run (bench/fuzz.py) that once escaped as crashes.

Each input is the exact falsifying example; each must give a typed
:class:`~agent.errors.PlanSchemaError` that names the offending key.
"""

from __future__ import annotations

import pytest

from agent.errors import PlanSchemaError
from agent.plan.document import judge, parse_plan


@pytest.mark.parametrize(
    ("document", "path"),
    [
        # _clean_loc dropped the key as if it were a pydantic union-branch tag, left
        # an empty location, and _describe raised IndexError on loc[-1].
        pytest.param('{"[": null}', "[", id="top-level key '['"),
        pytest.param('{"int": 1}', "int", id="top-level key 'int'"),
        pytest.param('{"phases": [{"str": 1}]}', "phases[0].str", id="nested key 'str'"),
        pytest.param(
            '{"patterns": [{"a[b": 0}]}', "patterns[0].a[b", id="nested key with a bracket"
        ),
    ],
)
def test_unknown_key_that_looks_like_a_union_branch_is_named(document: str, path: str) -> None:
    with pytest.raises(PlanSchemaError) as caught:
        parse_plan(document)
    assert any(
        where == path and why.startswith("unknown field") for where, why in caught.value.problems
    )
    with pytest.raises(PlanSchemaError):
        judge(document)
