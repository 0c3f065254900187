"""SessionMessage: the input contract (ids, timestamps, coordinates, status, GPS position)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import numpy as np
import pytest
from clickhouse_connect.driver.client import Client
from pydantic import ValidationError
from support import SEED

from jupiter_common.batch_parsing import ParsedBatch, parse_batch
from jupiter_common.clickhouse import ensure_table
from jupiter_common.flink.udfs import message_columns
from jupiter_common.parsing import parse_session
from jupiter_common.schema import COORDINATE_FIELDS, SessionMessage
from jupiter_common.tables import SESSION_EVENTS, SESSION_MOVEMENTS, SESSIONS_BASE, TableSpec
from jupiter_common.writer import ClickHouseWriter, RetryPolicy, arrow_batch
from jupiter_movements.job import movement_columns

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


# The most extreme values the contract accepts, each against its ClickHouse column: UUID,
# DateTime64(3, 'UTC') (and sessions_base's header_version computed from it), Float64,
# LowCardinality(String); and the largest Kafka coordinates for Int32 / Int64.
EXTREMES: list[dict[str, Any]] = [
    message(
        session_id="00000000-0000-0000-0000-000000000000",
        vehicle_id="{FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF}",
        order_id="urn:uuid:c1d2e3f4-a5b6-7c8d-9e0f-1a2b3c4d5e6f",
        status="a" * 64,
        timestamp="2000-01-01T00:00:00Z",
        start_lat=-90,
        start_lon=-180,
        end_lat=90,
        end_lon=180,
        current_lat=-0.0,
        current_lon=5e-324,
    ),
    message(
        session_id="F1E2D3C4B5A67C8D9E0F1A2B3C4D5E6F",
        status="Z.9-_" + "z" * 59,
        timestamp="2099-12-31T23:59:59.9999999-00:00",
        start_lat=89.99999999999999,
        current_lat=90,
        current_lon=-180,
    ),
    message(
        session_id="5f1b1f0e-8f3a-4c1e-9d3a-0b7f6e2d1a01",
        timestamp="2000-01-01T01:00:00.000999+01:00",
        current_lat=-90,
        current_lon=180,
    ),
]
TABLES: list[tuple[TableSpec, str]] = [
    (SESSION_MOVEMENTS, "toString(session_id), toString(vehicle_id), toString(order_id),"
     " toUnixTimestamp64Milli(timestamp), status, lat, lon, source_partition, source_offset"),
    (SESSION_EVENTS, "toString(session_id), toString(vehicle_id), toString(order_id),"
     " toUnixTimestamp64Milli(timestamp), status, previous_status, lat, lon, source_partition,"
     " source_offset"),
    (SESSIONS_BASE, "toString(session_id), toString(vehicle_id), toString(order_id),"
     " toUnixTimestamp64Milli(started_at), start_lat, start_lon, end_lat, end_lon,"
     " source_partition, source_offset"),
]  # fmt: skip


def _columns(table: TableSpec, batch: ParsedBatch, partitions: Any, offsets: Any) -> Any:
    """The insert columns the job makes of ``batch``'s messages (``MESSAGE_FIELDS`` columns):
    movements-job's own function, and for the stateful jobs what their SQL selects (every
    message taken as a header / a change)."""
    messages = message_columns(batch, partitions, offsets, only_valid=True)
    if table is SESSION_MOVEMENTS:
        return movement_columns(messages)
    names = ("session_id", "vehicle_id", "order_id", "source_partition", "source_offset")
    ids = {name: messages[name] for name in names}
    if table is SESSION_EVENTS:
        return {
            **ids,
            "timestamp": messages["timestamp_ms"],
            "status": messages["status"],
            "previous_status": messages["status"],
            "lat": messages["current_lat"],
            "lon": messages["current_lon"],
        }
    return {**ids, "started_at": messages["timestamp_ms"], "start_lat": messages["start_lat"],
            "start_lon": messages["start_lon"], "end_lat": messages["end_lat"],
            "end_lon": messages["end_lon"]}  # fmt: skip


def _expected(table: TableSpec, message: SessionMessage, partition: int, offset: int) -> Any:
    ids = (str(message.session_id), str(message.vehicle_id), str(message.order_id))
    if table is SESSION_MOVEMENTS:
        if message.current_lat is None:
            return None
        return (*ids, message.timestamp_ms, message.status, message.current_lat,
                message.current_lon, partition, offset)  # fmt: skip
    if table is SESSION_EVENTS:
        return (*ids, message.timestamp_ms, message.status, message.status, message.current_lat,
                message.current_lon, partition, offset)  # fmt: skip
    return (*ids, message.timestamp_ms, message.start_lat, message.start_lon, message.end_lat,
            message.end_lon, partition, offset)  # fmt: skip


@pytest.mark.parametrize(("table", "columns"), TABLES, ids=[t.name for t, _ in TABLES])
def test_every_value_the_contract_accepts_lands_in_clickhouse_unchanged(
    table: TableSpec, columns: str, chdb_client: Client
) -> None:
    """A value that passes validation must never fail the insert: that would fail the job
    again after every restart. The extreme valid messages go through the data path's parser,
    the job's columns and the writer into the real tables and read back exactly as
    ``parse_session`` reads them."""
    values = [json.dumps(body).encode() for body in EXTREMES]
    batch = parse_batch(values)
    assert batch.valid.all(), dict(batch.rejections)
    partitions = np.full(len(values), 2**31 - 1, dtype=np.int64)
    offsets = np.array([2**63 - 1 - i for i in range(len(values))], dtype=np.int64)
    expected = []
    for value, partition, offset in zip(values, partitions, offsets, strict=True):
        parsed = parse_session(value)
        assert isinstance(parsed, SessionMessage), parsed
        expected.append(_expected(table, parsed, int(partition), int(offset)))
    database = f"extremes_{table.name}"
    ensure_table(chdb_client, table, database)
    writer = ClickHouseWriter(chdb_client, table, database, RetryPolicy(max_retries=0))
    writer.write(arrow_batch(table, _columns(table, batch, partitions, offsets)))
    landed = chdb_client.query(
        f"SELECT {columns} FROM {database}.{table.name} ORDER BY source_offset DESC"
    ).result_rows
    assert [tuple(row) for row in landed] == [row for row in expected if row is not None]
    if table is SESSIONS_BASE:  # the earliest-wins version stays positive over the range
        versions = f"SELECT min(header_version) FROM {database}.{table.name}"
        assert chdb_client.query(versions).result_rows[0][0] > 0
