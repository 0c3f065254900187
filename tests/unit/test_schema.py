"""SessionMessage: the input contract (ids, timestamps, coordinates, status, GPS position)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest
from pydantic import ValidationError
from support import SEED

from jupiter_common.schema import COORDINATE_FIELDS, SessionMessage

# 2025-07-19T12:34:56.789Z by hand: 1970..2024 is 55 years with 14 leap days -> 20089 days;
# Jan..Jun 2025 is 181 days, plus 18 -> 20288 days = 1752883200 s; 12:34:56 = 45296 s.
SEED_EPOCH_MS = 1_752_928_496_789


def message(**changes: Any) -> dict[str, Any]:
    """The seed message with ``changes`` applied; a value of ``...`` removes the field."""
    result = dict(SEED)
    for key, value in changes.items():
        if value is ...:
            result.pop(key, None)
        else:
            result[key] = value
    return result


def validate(data: dict[str, Any]) -> SessionMessage:
    """Validate as the jobs do: from JSON text."""
    return SessionMessage.model_validate_json(json.dumps(data))


def errors_of(text: str) -> list[dict[str, Any]]:
    with pytest.raises(ValidationError) as info:
        SessionMessage.model_validate_json(text)
    return [dict(error) for error in info.value.errors()]


def test_seed_example_validates() -> None:
    parsed = validate(SEED)
    assert parsed.session_id == UUID(SEED["session_id"])
    assert parsed.vehicle_id == UUID(SEED["vehicle_id"])
    assert parsed.order_id == UUID(SEED["order_id"])
    assert parsed.status == "en_route"
    assert parsed.timestamp == datetime(2025, 7, 19, 12, 34, 56, 789_000, tzinfo=UTC)
    assert (parsed.start_lat, parsed.start_lon) == (40.7527, -73.9772)
    assert (parsed.end_lat, parsed.end_lon) == (40.7580, -73.9855)
    assert (parsed.current_lat, parsed.current_lon) == (40.7550, -73.9800)
    assert parsed.is_ping


@pytest.mark.parametrize(
    "timestamp",
    [
        "2025-07-19T12:34:56.789Z",
        "2025-07-19T12:34:56.789+00:00",
        "2025-07-19T14:34:56.789+02:00",
        "2025-07-19T07:04:56.789-05:30",
        "2025-07-20T01:34:56.789+13:00",
    ],
)
def test_timestamp_with_zone_normalises_to_utc(timestamp: str) -> None:
    parsed = validate(message(timestamp=timestamp))
    assert parsed.timestamp == datetime(2025, 7, 19, 12, 34, 56, 789_000, tzinfo=UTC)
    assert parsed.timestamp.tzinfo is UTC
    assert parsed.timestamp_ms == SEED_EPOCH_MS


@pytest.mark.parametrize(
    ("timestamp", "microsecond"),
    [
        ("2025-07-19T12:34:56.7899Z", 789_000),
        ("2025-07-19T12:34:56.789999Z", 789_000),
        ("2025-07-19T12:34:56.000999Z", 0),
        ("2025-07-19T12:34:56.5+02:00", 500_000),
    ],
)
def test_sub_millisecond_digits_are_truncated(timestamp: str, microsecond: int) -> None:
    parsed = validate(message(timestamp=timestamp))
    assert parsed.timestamp.microsecond == microsecond
    assert parsed.timestamp.second == 56


@pytest.mark.parametrize(
    "timestamp",
    ["2025-07-19T12:34:56.789", "2025-07-19T12:34:56", "2025-07-19 12:34:56", "2025-07-19"],
)
def test_timestamp_without_zone_is_refused(timestamp: str) -> None:
    errors = errors_of(json.dumps(message(timestamp=timestamp)))
    assert [error["loc"] for error in errors] == [("timestamp",)]
    assert "time zone" in errors[0]["msg"]


@pytest.mark.parametrize("timestamp", [1752928496, 1752928496789, 1752928496.789, "1752928496"])
def test_unix_number_timestamp_is_refused(timestamp: object) -> None:
    errors = errors_of(json.dumps(message(timestamp=timestamp)))
    assert [error["loc"] for error in errors] == [("timestamp",)]


@pytest.mark.parametrize("timestamp", ["", "yesterday", "2025-13-01T00:00:00Z", None, True])
def test_timestamp_garbage_is_refused(timestamp: object) -> None:
    errors = errors_of(json.dumps(message(timestamp=timestamp)))
    assert [error["loc"] for error in errors] == [("timestamp",)]


def test_extra_fields_are_ignored() -> None:
    parsed = validate(message(speed_kmh=42, driver={"name": "x"}, tags=["a"]))
    assert parsed == validate(SEED)
    assert "speed_kmh" not in parsed.model_dump()
    assert not hasattr(parsed, "speed_kmh")


def test_upper_case_ids_are_accepted_and_equal() -> None:
    upper = validate(
        message(
            session_id=SEED["session_id"].upper(),
            vehicle_id=SEED["vehicle_id"].upper(),
            order_id=SEED["order_id"].upper(),
        )
    )
    lower = validate(SEED)
    assert upper.session_id == lower.session_id == UUID(SEED["session_id"])
    assert upper.vehicle_id == lower.vehicle_id
    assert upper.order_id == lower.order_id
    assert upper == lower
    assert str(upper.session_id) == SEED["session_id"]


@pytest.mark.parametrize("field", ["session_id", "vehicle_id", "order_id"])
@pytest.mark.parametrize("value", ["", "not-a-uuid", "f1e2d3c4-b5a6-7c8d-9e0f", 12345, None])
def test_bad_ids_are_refused(field: str, value: object) -> None:
    errors = errors_of(json.dumps(message(**{field: value})))
    assert [error["loc"] for error in errors] == [(field,)]


def _limit(field: str) -> float:
    return 90.0 if field.endswith("_lat") else 180.0


@pytest.mark.parametrize("field", COORDINATE_FIELDS)
@pytest.mark.parametrize("sign", [1, -1])
def test_coordinate_exactly_at_the_boundary_is_accepted(field: str, sign: int) -> None:
    value = sign * _limit(field)
    parsed = validate(message(**{field: value}))
    assert getattr(parsed, field) == value


@pytest.mark.parametrize("field", COORDINATE_FIELDS)
@pytest.mark.parametrize("sign", [1, -1])
def test_coordinate_just_beyond_the_boundary_is_refused(field: str, sign: int) -> None:
    limit = sign * _limit(field)
    for value in (math.nextafter(limit, sign * math.inf), limit + sign * 1e-7, limit * 2):
        errors = errors_of(json.dumps(message(**{field: value})))
        assert [error["loc"] for error in errors] == [(field,)], value


@pytest.mark.parametrize("field", COORDINATE_FIELDS)
@pytest.mark.parametrize("value", ["40.75", "0", "", True, False, [40.7], {"v": 1}])
def test_non_number_coordinate_is_refused(field: str, value: object) -> None:
    errors = errors_of(json.dumps(message(**{field: value})))
    assert [error["loc"] for error in errors] == [(field,)]


@pytest.mark.parametrize("field", COORDINATE_FIELDS)
@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", '"NaN"', "1e999"])
def test_nan_like_coordinate_is_refused(field: str, literal: str) -> None:
    """pydantic's JSON parser reads the non-standard literals NaN/Infinity as floats; the field's
    ``allow_inf_nan=False`` then refuses them (and 1e999 overflows to infinity). Either way the
    message must not validate, and the complaint must be about that field (or the JSON)."""
    text = json.dumps(message(**{field: 0.0})).replace(f'"{field}": 0.0', f'"{field}": {literal}')
    assert literal in text
    errors = errors_of(text)
    assert errors
    assert all(error["loc"] == (field,) or error["type"] == "json_invalid" for error in errors)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_nan_like_coordinate_from_python_is_refused(value: float) -> None:
    with pytest.raises(ValidationError):
        SessionMessage.model_validate(message(current_lat=value))


def test_message_without_current_position_is_not_a_ping() -> None:
    parsed = validate(message(current_lat=..., current_lon=...))
    assert not parsed.is_ping
    assert parsed.current_lat is None
    assert parsed.current_lon is None


def test_message_with_current_position_is_a_ping() -> None:
    parsed = validate(SEED)
    assert parsed.is_ping
    assert (parsed.current_lat, parsed.current_lon) == (40.7550, -73.9800)


def test_zero_zero_position_is_still_a_ping() -> None:
    assert validate(message(current_lat=0, current_lon=0.0)).is_ping


def test_explicit_null_position_is_not_a_ping() -> None:
    parsed = validate(message(current_lat=None, current_lon=None))
    assert not parsed.is_ping
    assert parsed.current_lat is None
    assert parsed.current_lon is None


@pytest.mark.parametrize(
    "changes",
    [
        {"current_lat": ...},
        {"current_lon": ...},
        {"current_lat": None},
        {"current_lon": None},
    ],
)
def test_only_one_current_coordinate_is_refused(changes: dict[str, Any]) -> None:
    errors = errors_of(json.dumps(message(**changes)))
    assert len(errors) == 1
    assert "current_lat and current_lon must be given together" in errors[0]["msg"]


@pytest.mark.parametrize(
    "status",
    ["", " ", "   ", "a" * 65, "en route", " arrived", "arrived\n", "1st", "_x", "é", None, 5],
)
def test_bad_status_is_refused(status: object) -> None:
    errors = errors_of(json.dumps(message(status=status)))
    assert [error["loc"] for error in errors] == [("status",)]


@pytest.mark.parametrize(
    "status", ["en_route", "arrived", "started", "A", "a" * 64, "x-1.b_2", "CANCELLED"]
)
def test_good_status_is_accepted(status: str) -> None:
    assert validate(message(status=status)).status == status


@pytest.mark.parametrize(
    ("timestamp", "expected_ms"),
    [
        ("2025-07-19T12:34:56.789Z", SEED_EPOCH_MS),
        ("2000-01-01T00:00:00Z", 946_684_800_000),
        ("2000-01-01T00:00:00.001Z", 946_684_800_001),
        ("2000-01-01T01:00:00+01:00", 946_684_800_000),
        ("2099-12-31T23:59:59.999Z", 4_102_444_799_999),
        ("2000-02-29T00:00:00Z", 951_782_400_000),
    ],
)
def test_timestamp_ms_is_epoch_milliseconds(timestamp: str, expected_ms: int) -> None:
    assert validate(message(timestamp=timestamp)).timestamp_ms == expected_ms


@pytest.mark.parametrize(
    "timestamp",
    [
        "1999-12-31T23:59:59.999Z",
        "2000-01-01T00:59:59+01:00",
        "2100-01-01T00:00:00Z",
        "1970-01-01T00:00:00Z",
    ],
)
def test_timestamps_outside_2000_to_2100_are_refused(timestamp: str) -> None:
    with pytest.raises(ValidationError, match=r"outside 2000-01-01 \.\. 2100-01-01"):
        validate(message(timestamp=timestamp))


def test_message_is_frozen() -> None:
    parsed = validate(SEED)
    with pytest.raises(ValidationError):
        parsed.status = "arrived"
