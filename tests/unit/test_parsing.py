"""parse_session: raw Kafka bytes to a SessionMessage or a Rejection, never an exception."""

from __future__ import annotations

import json
from typing import Any

import pytest
from parsing_corpus import CASES, REQUIRED_FIELDS, encode, fuzz_inputs
from pydantic import ValidationError
from support import SEED

from jupiter_common import parsing
from jupiter_common.parsing import MAX_PROBLEM_CHARS, Rejection, RejectReason, parse_session
from jupiter_common.schema import SessionMessage


def rejected(raw: bytes | None) -> Rejection:
    result = parse_session(raw)
    assert isinstance(result, Rejection), f"expected a rejection, got {result!r}"
    return result


def test_every_reject_reason_has_a_case() -> None:
    """``invalid`` has none: no rule of today's schema leads to it (it is tested with a stricter
    schema below)."""
    assert set(CASES) == set(RejectReason) - {RejectReason.INVALID}
    assert all(CASES.values())


@pytest.mark.parametrize(
    ("reason", "raw", "field"),
    [(reason, raw, field) for reason, inputs in CASES.items() for raw, field in inputs],
)
def test_parse_session_rejects_with_reason(
    reason: RejectReason, raw: bytes | None, field: str | None
) -> None:
    rejection = rejected(raw)
    assert rejection.reason is reason
    assert rejection.field == field
    assert rejection.message
    if field is not None:
        assert field in rejection.message


def test_reason_values_are_stable() -> None:
    """Dashboards and replays key on these strings."""
    assert {reason.value for reason in RejectReason} == {
        "empty",
        "not_utf8",
        "not_json",
        "not_an_object",
        "missing_field",
        "bad_uuid",
        "bad_status",
        "bad_timestamp",
        "bad_coordinate",
        "incomplete_position",
        "invalid",
    }


def test_valid_message_parses() -> None:
    result = parse_session(encode())
    assert isinstance(result, SessionMessage)
    assert result == SessionMessage.model_validate(SEED)


def test_status_message_without_position_parses() -> None:
    result = parse_session(encode(current_lat=..., current_lon=...))
    assert isinstance(result, SessionMessage)
    assert not result.is_ping


def test_not_utf8_message_names_the_offending_byte() -> None:
    rejection = rejected(b'{"a": "ok\xff"}')
    assert rejection.reason is RejectReason.NOT_UTF8
    assert "byte 9" in rejection.message
    assert "0xff" in rejection.message


def test_missing_fields_are_all_listed() -> None:
    rejection = rejected(b"{}")
    assert rejection.reason is RejectReason.MISSING_FIELD
    assert rejection.field == REQUIRED_FIELDS[0]
    for name in REQUIRED_FIELDS:
        assert name in rejection.message


# Field-level problems, most urgent first (NOT_JSON and NOT_AN_OBJECT exclude all others, and an
# incomplete position is only checked once every field is valid).
PRECEDENCE = (
    RejectReason.MISSING_FIELD,
    RejectReason.BAD_UUID,
    RejectReason.BAD_TIMESTAMP,
    RejectReason.BAD_STATUS,
    RejectReason.BAD_COORDINATE,
)
PROBLEMS: dict[RejectReason, tuple[str, object]] = {
    RejectReason.MISSING_FIELD: ("end_lat", ...),
    RejectReason.BAD_UUID: ("vehicle_id", "zzz"),
    RejectReason.BAD_TIMESTAMP: ("timestamp", "2025-07-19T12:34:56"),
    RejectReason.BAD_STATUS: ("status", ""),
    RejectReason.BAD_COORDINATE: ("start_lon", -181),
}


@pytest.mark.parametrize(
    ("first", "second"),
    [(a, b) for i, a in enumerate(PRECEDENCE) for b in PRECEDENCE[i + 1 :]],
)
def test_more_urgent_problem_wins(first: RejectReason, second: RejectReason) -> None:
    first_field, first_value = PROBLEMS[first]
    second_field, second_value = PROBLEMS[second]
    # The less urgent problem comes first in the document: field order must not matter.
    data: dict[str, Any] = {second_field: second_value}
    data.update((k, v) for k, v in SEED.items() if k not in (first_field, second_field))
    data[first_field] = first_value
    raw = json.dumps({k: v for k, v in data.items() if v is not ...}).encode()
    rejection = rejected(raw)
    assert rejection.reason is first
    assert rejection.field == first_field
    assert first_field in rejection.message
    assert second_field in rejection.message


def test_message_mentions_every_problem() -> None:
    changes = {field: value for field, value in PROBLEMS.values()}
    rejection = rejected(encode(**changes, current_lat=91))
    assert rejection.reason is RejectReason.MISSING_FIELD
    assert rejection.field == "end_lat"
    for field in [*(field for field, _ in PROBLEMS.values()), "current_lat"]:
        assert rejection.message.count(f"{field}: ") == 1, field
    assert "Field required" in rejection.message
    assert "no time zone" in rejection.message


def test_missing_field_beats_incomplete_position() -> None:
    rejection = rejected(encode(session_id=..., current_lon=...))
    assert rejection.reason is RejectReason.MISSING_FIELD
    assert rejection.field == "session_id"


def test_an_error_no_reason_names_gets_its_own_reason() -> None:
    """A rule the classifier does not know (here: a field a stricter schema adds) is labelled
    ``invalid``, never counted under another reason such as ``incomplete_position``."""

    class WithFleet(SessionMessage):
        fleet_size: int

    with pytest.raises(ValidationError) as caught:
        WithFleet.model_validate_json(encode(fleet_size="many"))
    rejection = parsing._rejection_from(caught.value)
    assert rejection.reason is RejectReason.INVALID
    assert rejection.field == "fleet_size"


def test_parse_session_never_raises() -> None:
    inputs = fuzz_inputs()
    assert len(inputs) == 800
    reasons: set[RejectReason] = set()
    for raw in inputs:
        result = parse_session(raw)
        assert isinstance(result, SessionMessage | Rejection), raw
        if isinstance(result, Rejection):
            assert result.reason in RejectReason
            assert result.message, raw
            reasons.add(result.reason)
    # The mutations reach well past the byte-level checks.
    assert {RejectReason.NOT_UTF8, RejectReason.NOT_JSON, RejectReason.MISSING_FIELD} <= reasons


@pytest.mark.parametrize("timestamp", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_parse_session_never_raises_on_timestamps_at_the_edge_of_time(timestamp: str) -> None:
    rejection = rejected(encode(timestamp=timestamp))
    assert rejection.reason is RejectReason.BAD_TIMESTAMP
    assert rejection.field == "timestamp"


@pytest.mark.parametrize(
    "value", ["x" * 1_000_000, "\x01" * 200_000, "2025-07-19T12:34:56.789" + "9" * 500_000]
)
def test_a_huge_refused_value_is_quoted_only_by_its_prefix(value: str) -> None:
    """A rejection message quotes a refused value only as far as a human needs to recognise
    it: a 1 MB value must not make a 1 MB message (and a dead letter Kafka refuses)."""
    rejection = rejected(encode(timestamp=value))
    assert rejection.reason is RejectReason.BAD_TIMESTAMP
    assert f"({len(value):,} characters)" in rejection.message
    assert len(rejection.message) < 200
    assert repr(value[:8])[:-1] in rejection.message  # the start of the value is shown


def test_a_short_refused_value_is_quoted_whole() -> None:
    rejection = rejected(encode(timestamp="2025-07-19T12:34:56"))
    assert "'2025-07-19T12:34:56' has no time zone" in rejection.message
    assert "characters)" not in rejection.message


def test_every_problem_in_a_message_is_bounded() -> None:
    body = {key: "\x01" * 100_000 for key in SEED} | {"current_lat": 1.0}
    rejection = rejected(json.dumps(body).encode())
    problems = rejection.message.split("; ")
    assert len(problems) == len(SEED) - 1  # every field but current_lat
    assert all(len(problem) <= MAX_PROBLEM_CHARS for problem in problems)


@pytest.mark.parametrize("depth", [1_000, 400_000])
def test_deeply_nested_json_is_refused_not_crashed_on(depth: int) -> None:
    """The JSON parser stops at its recursion limit (no stack overflow in the worker)."""
    nested = "[" * depth + "]" * depth
    for raw in (nested, json.dumps(SEED)[:-1] + f', "x": {nested}}}'):
        rejection = rejected(raw.encode())
        assert rejection.reason is RejectReason.NOT_JSON
        assert "recursion limit" in rejection.message


def test_a_huge_unknown_field_is_ignored() -> None:
    """Unknown fields are ignored whatever their size: the message is valid (the contract)."""
    result = parse_session(encode(extra="\x01" * 900_000, **{"k" * 100_000: [1] * 1000}))
    assert isinstance(result, SessionMessage)
    assert result == SessionMessage.model_validate(SEED)
