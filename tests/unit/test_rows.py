"""Rows are made by column name from the table definition, and checked against its insert
columns wherever they are handed over: ``TableSpec.check_columns``, ``arrow_batch``,
``Pipeline.land`` and ``Pipeline.parse_and_land`` (both when the job is built), and the one
record every job reads (``MESSAGE_FIELDS``).

Fast tests: ``Pipeline`` runs here over a stand-in table environment that answers the query's
column names, so these tests check what the pipeline does with the planner's answer. That the
jobs' real SQL gets the right answer from Flink's planner is ``test_job_rows.py``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from support import SEED

from jupiter_common.batch_parsing import parse_batch
from jupiter_common.errors import RowColumnsError
from jupiter_common.flink import pipeline as pipeline_module
from jupiter_common.flink.pipeline import Pipeline
from jupiter_common.flink.udfs import MESSAGE_COLUMNS, MESSAGE_FIELDS, PARSED_ROW, message_columns
from jupiter_common.settings import load_settings
from jupiter_common.tables import SESSION_EVENTS, SESSION_MOVEMENTS, SESSIONS_BASE
from jupiter_common.writer import arrow_batch
from jupiter_movements.job import movement_columns

EVENTS = SESSION_EVENTS.insert_columns


def test_the_insert_columns_pass() -> None:
    SESSION_EVENTS.check_columns(EVENTS, what="rows")
    SESSION_EVENTS.check_columns(reversed(EVENTS), what="rows", ordered=False)


def test_missing_extra_and_misordered_columns_are_named() -> None:
    got = [c for c in EVENTS if c not in ("lat", "previous_status")] + ["current_lat"]
    got[0], got[1] = got[1], got[0]
    with pytest.raises(RowColumnsError) as info:
        SESSION_EVENTS.check_columns(got, what="the rows of q")
    error = info.value
    assert error.table == "session_events"
    assert error.missing == ("previous_status", "lat")
    assert error.extra == ("current_lat",)
    assert error.misordered == ("vehicle_id", "session_id")
    message = str(error)
    assert message.startswith("the rows of q are not the insert columns of session_events:")
    assert "missing previous_status, lat" in message
    assert "not insert columns (or repeated) current_lat" in message
    assert "out of order vehicle_id, session_id" in message
    assert f"expected {', '.join(EVENTS)}" in message


def test_a_repeated_column_is_named() -> None:
    with pytest.raises(RowColumnsError) as info:
        SESSION_EVENTS.check_columns([*EVENTS, "lat"], what="rows")
    assert (info.value.missing, info.value.extra, info.value.misordered) == ((), ("lat",), ())


def test_by_name_the_order_does_not_matter_but_names_do() -> None:
    with pytest.raises(RowColumnsError) as info:
        SESSION_EVENTS.check_columns(["ts", *EVENTS[1:]], what="rows", ordered=False)
    assert (info.value.missing, info.value.extra, info.value.misordered) == (
        ("session_id",),
        ("ts",),
        (),
    )


def _movement_batch() -> dict[str, Any]:
    n = 2
    return {
        "session_id": ["5f1b1f0e-8f3a-4c1e-9d3a-0b7f6e2d1a01"] * n,
        "vehicle_id": ["5f1b1f0e-8f3a-4c1e-9d3a-0b7f6e2d1a02"] * n,
        "order_id": ["5f1b1f0e-8f3a-4c1e-9d3a-0b7f6e2d1a03"] * n,
        "timestamp": np.array([1, 2], dtype=np.int64),
        "status": ["en_route"] * n,
        "lat": np.array([1.0, 2.0]),
        "lon": np.array([3.0, 4.0]),
        "source_partition": np.array([0, 0], dtype=np.int32),
        "source_offset": np.array([5, 6], dtype=np.int64),
    }


def test_arrow_batch_takes_columns_by_name_in_any_order() -> None:
    columns = _movement_batch()
    shuffled = dict(reversed(columns.items()))
    batch = arrow_batch(SESSION_MOVEMENTS, shuffled)
    assert batch.schema == SESSION_MOVEMENTS.arrow_schema
    assert batch.column("source_offset").to_pylist() == [5, 6]


@pytest.mark.parametrize(
    ("change", "missing", "extra"),
    [
        (lambda c: c.pop("lon"), ("lon",), ()),
        (lambda c: c.update(speed=np.array([1.0, 2.0])), (), ("speed",)),
        (lambda c: c.update(current_lat=c.pop("lat")), ("lat",), ("current_lat",)),
    ],
)
def test_arrow_batch_refuses_columns_that_are_not_the_insert_columns(
    change: Any, missing: tuple[str, ...], extra: tuple[str, ...]
) -> None:
    columns = _movement_batch()
    change(columns)
    with pytest.raises(RowColumnsError) as info:
        arrow_batch(SESSION_MOVEMENTS, columns)
    assert (info.value.missing, info.value.extra) == (missing, extra)


# The one record: what ParseSessions returns, the SQL view, and what a RowsOf function gets.


def test_message_fields_are_the_parsed_row_and_the_message_columns() -> None:
    assert tuple(name for name, _ in MESSAGE_FIELDS) == MESSAGE_COLUMNS
    assert tuple(PARSED_ROW.field_names()) == (*MESSAGE_COLUMNS, "dead_letter")


def _values(*bodies: dict[str, Any] | bytes) -> list[bytes]:
    return [b if isinstance(b, bytes) else json.dumps(b).encode() for b in bodies]


def test_message_columns_have_every_message_field_in_order() -> None:
    status_only = {k: v for k, v in SEED.items() if k not in ("current_lat", "current_lon")}
    values = _values(SEED, b"not json", status_only)
    batch = parse_batch(values)
    partitions = np.array([3, 3, 4], dtype=np.int64)
    offsets = np.array([10, 11, 12], dtype=np.int64)

    every = message_columns(batch, partitions, offsets, only_valid=False)
    assert tuple(every) == MESSAGE_COLUMNS
    assert all(len(column) == 3 for column in every.values())
    assert list(every["source_offset"]) == [10, 0, 12]

    valid = message_columns(batch, partitions, offsets, only_valid=True)
    assert tuple(valid) == MESSAGE_COLUMNS
    assert valid["session_id"].to_pylist() == [SEED["session_id"]] * 2
    assert list(valid["source_partition"]) == [3, 4]
    assert list(valid["source_offset"]) == [10, 12]
    assert np.isnan(valid["current_lat"][1])


def test_movement_rows_are_the_insert_columns_of_session_movements() -> None:
    """movements-job's rows: its function over the one record, checked by name."""
    status_only = {k: v for k, v in SEED.items() if k not in ("current_lat", "current_lon")}
    batch = parse_batch(_values(SEED, status_only, b"{}", SEED))
    offsets = np.arange(4, dtype=np.int64)
    rows = movement_columns(message_columns(batch, offsets * 0, offsets, only_valid=True))
    SESSION_MOVEMENTS.check_columns(rows, what="movement_columns", ordered=False)
    landed = arrow_batch(SESSION_MOVEMENTS, rows)
    assert landed.column("source_offset").to_pylist() == [0, 3]
    assert landed.column("lat").to_pylist() == [SEED["current_lat"]] * 2
    none = np.zeros(0, dtype=np.int64)
    empty = movement_columns(message_columns(parse_batch([]), none, none, only_valid=True))
    assert arrow_batch(SESSION_MOVEMENTS, empty).num_rows == 0


# Pipeline over a stand-in table environment.


class _Schema:
    def __init__(self, names: Sequence[str]) -> None:
        self._names = list(names)

    def get_column_names(self) -> list[str]:
        return self._names


class _Query:
    def __init__(self, names: Sequence[str]) -> None:
        self._names = names

    def get_resolved_schema(self) -> _Schema:
        return _Schema(self._names)


class _Statements:
    def __init__(self) -> None:
        self.inserts: list[str] = []

    def add_insert_sql(self, sql: str) -> None:
        self.inserts.append(sql)


class FakeTableEnvironment:
    """Records what a Pipeline asks; ``sql_query`` answers ``columns`` as the planner would."""

    def __init__(self, columns: Sequence[str]) -> None:
        self.columns = columns
        self.statements = _Statements()
        self.functions: list[str] = []
        self.queries: list[str] = []

    def create_statement_set(self) -> _Statements:
        return self.statements

    def execute_sql(self, sql: str) -> None:
        pass

    def create_temporary_function(self, name: str, function: object) -> None:
        self.functions.append(name)

    def sql_query(self, sql: str) -> _Query:
        self.queries.append(sql)
        return _Query(self.columns)


def _pipeline(monkeypatch: pytest.MonkeyPatch, columns: Sequence[str]) -> Pipeline:
    monkeypatch.setattr(pipeline_module, "check_dead_letter_topic", lambda settings: None)
    t_env: Any = FakeTableEnvironment(columns)
    return Pipeline(load_settings("events"), t_env)


def test_land_calls_the_writer_with_the_insert_columns_by_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pipeline = _pipeline(monkeypatch, EVENTS)
    pipeline.land(SESSION_EVENTS, "SELECT ... FROM changes")
    t_env: Any = pipeline.t_env
    arguments = ", ".join(f"`{c}`" for c in EVENTS)
    assert t_env.statements.inserts == [
        f"INSERT INTO landed SELECT land_session_events({arguments}) FROM (SELECT ... FROM changes)"
    ]


def test_land_refuses_a_query_whose_columns_are_positional_at_build_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """events-job's query before its columns were named after the table's: the same number of
    columns in the same places, which the positional mapping took silently."""
    positional = (
        "session_id", "vehicle_id", "order_id", "timestamp_ms", "status", "previous_status",
        "current_lat", "current_lon", "source_partition", "source_offset",
    )  # fmt: skip
    pipeline = _pipeline(monkeypatch, positional)
    with pytest.raises(RowColumnsError) as info:
        pipeline.land(SESSION_EVENTS, "SELECT ...")
    assert info.value.missing == ("timestamp", "lat", "lon")
    assert info.value.extra == ("timestamp_ms", "current_lat", "current_lon")
    assert "the columns of the query landed in session_events" in str(info.value)
    t_env: Any = pipeline.t_env
    assert t_env.statements.inserts == []  # nothing added: the job is never submitted
    assert "land_session_events" not in t_env.functions


def test_land_refuses_misordered_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    swapped = list(SESSIONS_BASE.insert_columns)
    i, j = swapped.index("start_lat"), swapped.index("start_lon")
    swapped[i], swapped[j] = swapped[j], swapped[i]
    pipeline = _pipeline(monkeypatch, swapped)
    with pytest.raises(RowColumnsError, match="out of order start_lon, start_lat"):
        pipeline.land(SESSIONS_BASE, "SELECT ...")


def test_parse_and_land_checks_the_rows_function_at_build_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def positional_lat(messages: Any) -> Any:
        rows = dict(movement_columns(messages))
        rows["current_lat"] = rows.pop("lat")
        return rows

    pipeline = _pipeline(monkeypatch, ())
    with pytest.raises(RowColumnsError) as info:
        pipeline.parse_and_land(SESSION_MOVEMENTS, positional_lat)
    assert (info.value.missing, info.value.extra) == (("lat",), ("current_lat",))
    assert "positional_lat" in str(info.value)
    t_env: Any = pipeline.t_env
    assert "parse_and_land" not in t_env.functions

    pipeline.parse_and_land(SESSION_MOVEMENTS, movement_columns)
    assert t_env.functions == ["parse_and_land"]


def test_pa_arrays_filter_like_the_valid_mask() -> None:
    """message_columns filters Arrow and NumPy columns with the same mask."""
    batch = parse_batch(_values(b"[]", SEED))
    columns = message_columns(batch, np.zeros(2, np.int64), np.arange(2), only_valid=True)
    assert isinstance(columns["status"], pa.Array)
    assert [len(column) for column in columns.values()] == [1] * len(MESSAGE_COLUMNS)
