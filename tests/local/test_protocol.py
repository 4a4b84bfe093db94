"""The control socket's wire format, on bytes: framing, requests, replies (sans-I/O)."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.local.protocol import (
    MAX_ERROR_CHARS,
    MAX_REQUEST_BYTES,
    Failure,
    LineFramer,
    LineTooLong,
    LocalProtocolError,
    Ok,
    OverrideRequest,
    StatusRequest,
    WatchRequest,
    encode_error,
    encode_ok,
    parse_reply,
    parse_request,
    request_line,
)

REQUESTS = [
    b'{"verb": "status"}',
    b'{"verb": "watch", "args": {"rate_hz": 2.5}}',
    b'{"verb": "plan.show", "args": {}}',
    b'{"verb": "override", "args": {"pattern": 3, "minutes": 10}}',
    b'{"verb": "override", "args": {"pattern": "flash", "minutes": 0.5}, "sudo_user": "jsmith"}',
    b'{"verb": "release"}',
    b'{"verb": "diag"}',
]
STREAM = b"".join(line + b"\n" for line in REQUESTS)


# -- framing, four ways ------------------------------------------------------------------------


def test_whole_stream_gives_every_line() -> None:
    framer = LineFramer(MAX_REQUEST_BYTES)
    assert framer.feed(STREAM) == REQUESTS
    assert framer.end() is None


def test_byte_by_byte_gives_the_same_lines() -> None:
    framer = LineFramer(MAX_REQUEST_BYTES)
    lines = [line for i in range(len(STREAM)) for line in framer.feed(STREAM[i : i + 1])]
    assert lines == REQUESTS


def test_trailing_bytes_wait_for_their_newline_or_the_end() -> None:
    framer = LineFramer(MAX_REQUEST_BYTES)
    assert framer.feed(REQUESTS[0] + b"\n" + REQUESTS[1][:5]) == [REQUESTS[0]]
    assert framer.feed(REQUESTS[1][5:]) == []
    assert framer.end() == REQUESTS[1]  # a client that half-closed after writing


@pytest.mark.parametrize("cut", range(len(REQUESTS[3])))
def test_every_strict_prefix_is_incomplete(cut: int) -> None:
    framer = LineFramer(MAX_REQUEST_BYTES)
    assert framer.feed(REQUESTS[3][:cut]) == []


@pytest.mark.parametrize(
    ("data", "lines"),
    [
        pytest.param(b"\n\n  \r\n", [], id="blank-lines-skipped"),
        pytest.param(b"ab\r\n", [b"ab\r"], id="cr-kept-for-json-to-ignore"),
        pytest.param(b"x" * 9 + b"\n", [b"x" * 9], id="exactly-the-cap"),
    ],
)
def test_framing_table(data: bytes, lines: list[bytes]) -> None:
    assert LineFramer(10).feed(data) == lines


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"x" * 10, id="cap-reached-without-newline"),
        pytest.param(b"x" * 10 + b"\n", id="line-one-over"),
        pytest.param(b"ok\n" + b"y" * 50, id="long-line-after-a-good-one"),
    ],
)
def test_a_line_over_the_cap_is_refused_and_the_buffer_dropped(data: bytes) -> None:
    framer = LineFramer(10)
    with pytest.raises(LineTooLong):
        framer.feed(data)
    assert framer.end() is None


@given(st.binary(max_size=2000), st.integers(min_value=2, max_value=300))
def test_any_bytes_frame_or_refuse_and_never_hold_more_than_the_cap(data: bytes, cap: int) -> None:
    framer = LineFramer(cap)
    try:
        lines = framer.feed(data)
    except LineTooLong:
        return
    assert all(len(line) < cap and b"\n" not in line for line in lines)
    rest = framer.end()
    assert rest is None or len(rest) < cap


# -- requests ----------------------------------------------------------------------------------


def test_every_verb_parses_to_its_model() -> None:
    parsed = [parse_request(line) for line in REQUESTS]
    assert [p.verb for p in parsed] == [
        "status", "watch", "plan.show", "override", "override", "release", "diag",
    ]  # fmt: skip
    assert isinstance(parsed[0], StatusRequest)
    assert isinstance(parsed[1], WatchRequest)
    assert parsed[1].args.rate_hz == 2.5
    assert isinstance(parsed[3], OverrideRequest)
    assert parsed[3].args.pattern == 3
    assert parsed[4].sudo_user == "jsmith"


@pytest.mark.parametrize(
    ("line", "says"),
    [
        pytest.param(b"", "not JSON", id="empty"),
        pytest.param(b"{", "not JSON", id="truncated"),
        pytest.param(b"\xc3\x28", "not JSON", id="bad-utf8"),
        pytest.param(b"null", "JSON object", id="null"),
        pytest.param(b'"status"', "JSON object", id="a-string"),
        pytest.param(b"{}", "no verb", id="no-verb"),
        pytest.param(b'{"verb": 7}', "verb", id="verb-not-a-string"),
        pytest.param(b'{"verb": "reboot"}', "unknown verb 'reboot'", id="unknown-verb"),
        pytest.param(b'{"verb": "status", "args": []}', "args", id="args-a-list"),
        pytest.param(b'{"verb": "status", "args": {"a": 1}}', "args.a: unknown", id="extra-arg"),
        pytest.param(b'{"verb": "status", "as": "root"}', "as: unknown", id="extra-field"),
        pytest.param(
            b'{"verb": "override", "args": {"minutes": 1}}', "args.pattern", id="no-pattern"
        ),
        pytest.param(
            b'{"verb": "override", "args": {"pattern": 0, "minutes": 1}}', "1-253", id="pattern-0"
        ),
        pytest.param(
            b'{"verb": "override", "args": {"pattern": 254, "minutes": 1}}',
            "1-253",
            id="pattern-254",
        ),
        pytest.param(
            b'{"verb": "override", "args": {"pattern": "standby", "minutes": 1}}',
            "1-253",
            id="standby-is-not-a-technician-pattern",
        ),
        pytest.param(
            b'{"verb": "override", "args": {"pattern": 2, "minutes": "5"}}', "minutes", id="string"
        ),
        pytest.param(
            b'{"verb": "override", "args": {"pattern": 2, "minutes": 0}}', "minutes", id="zero"
        ),
        pytest.param(
            b'{"verb": "override", "args": {"pattern": 2, "minutes": 481}}',
            "minutes",
            id="too-long",
        ),
        pytest.param(b'{"verb": "watch", "args": {"rate_hz": 11}}', "rate", id="too-fast"),
        pytest.param(b'{"verb": "status", "sudo_user": "Root Admin"}', "sudo_user", id="bad-user"),
        pytest.param(b"[" * 10_000, "not JSON", id="deep-nesting"),
    ],
)
def test_bad_requests_say_what_is_wrong_in_one_line(line: bytes, says: str) -> None:
    with pytest.raises(LocalProtocolError) as refused:
        parse_request(line)
    message = str(refused.value)
    assert says in message
    assert "\n" not in message
    assert len(message) <= MAX_ERROR_CHARS
    assert refused.value.code == "E_REQUEST"


def test_an_oversized_request_is_too_large() -> None:
    with pytest.raises(LineTooLong):
        parse_request(b'{"verb": "status", "x": "' + b"a" * MAX_REQUEST_BYTES + b'"}')


@given(st.binary(max_size=500))
def test_any_bytes_parse_or_raise_our_error(data: bytes) -> None:
    with contextlib.suppress(LocalProtocolError):
        parse_request(data)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
        lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
        max_leaves=20,
    )
)
def test_any_json_parses_or_raises_our_error(value: object) -> None:
    with contextlib.suppress(LocalProtocolError):
        parse_request(json.dumps(value).encode())


def test_the_client_line_is_one_accepted_request() -> None:
    line = request_line("override", {"pattern": "free", "minutes": 2}, sudo_user="jsmith")
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    request = parse_request(line[:-1])
    assert isinstance(request, OverrideRequest)
    assert (request.args.pattern, request.args.minutes, request.sudo_user) == (
        "free",
        2.0,
        "jsmith",
    )
    with pytest.raises(LocalProtocolError):
        request_line("override", {"pattern": 2})


# -- replies -----------------------------------------------------------------------------------


def test_replies_round_trip_and_errors_stay_on_one_line() -> None:
    ok = parse_reply(encode_ok({"mode": "local", "phases": [1, 2]})[:-1])
    assert isinstance(ok, Ok)
    assert ok.result == {"mode": "local", "phases": [1, 2]}
    line = encode_error("E_OVERRIDE", "pattern 9 is not\nin the plan\x1b[31m" + "!" * 1000)
    assert line.count(b"\n") == 1
    failure = parse_reply(line[:-1])
    assert isinstance(failure, Failure)
    assert failure.code == "E_OVERRIDE"
    assert failure.error.startswith("pattern 9 is not in the plan [31m")
    assert len(failure.error) <= MAX_ERROR_CHARS
    # A newer agent may add envelope fields: the client ignores them.
    assert isinstance(parse_reply(b'{"ok": true, "result": 1, "took_ms": 3}'), Ok)


@pytest.mark.parametrize(
    "line",
    [b"", b"not json", b"[]", b'{"ok": "yes"}', b'{"ok": false, "code": "nope", "error": "x"}'],
)
def test_a_garbled_reply_is_our_error(line: bytes) -> None:
    with pytest.raises(LocalProtocolError):
        parse_reply(line)


def test_a_result_that_is_not_json_is_refused_by_the_encoder() -> None:
    with pytest.raises(ValueError, match="Out of range"):
        encode_ok({"x": float("nan")})
    with pytest.raises(TypeError):
        encode_ok({"x": object()})
