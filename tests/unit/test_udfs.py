"""The data path's Python functions, in-process with a fake writer: what a batch of Kafka
records becomes (rows handed to the writer, dead letters returned, counters), in milliseconds.

PyFlink calls ``open`` once per task and ``eval`` once per Arrow batch; here the test does, with
a :class:`FakeContext` standing in for the metric group. The wiring (SQL, Arrow transport,
bundles, checkpoints) is the end-to-end tests' part.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from support import SEED

from jupiter_common.errors import ClickHouseWriteError
from jupiter_common.flink.udfs import LandRows, ParseAndLand, ParseSessions
from jupiter_common.settings import Settings, load_settings
from jupiter_common.tables import SESSION_EVENTS, SESSION_MOVEMENTS, TableSpec
from jupiter_common.writer import WriteResult
from jupiter_movements.job import movement_columns


class FakeCounter:
    def __init__(self) -> None:
        self.count = 0

    def inc(self, n: int = 1) -> None:
        self.count += n


class FakeGroup:
    """A metric group that keeps every counter by its path: a key/value sub-group (Prometheus
    labels) shows as ``key=value.``, a plain sub-group adds nothing."""

    def __init__(self, counters: dict[str, FakeCounter] | None = None, prefix: str = "") -> None:
        self.counters: dict[str, FakeCounter] = {} if counters is None else counters
        self.prefix = prefix

    def add_group(self, name: str, extra: str | None = None) -> FakeGroup:
        prefix = self.prefix if extra is None else f"{self.prefix}{name}={extra}."
        return FakeGroup(self.counters, prefix)

    def counter(self, name: str) -> FakeCounter:
        return self.counters.setdefault(self.prefix + name, FakeCounter())

    def counts(self) -> dict[str, int]:
        """The counters that counted, but the latency histogram's (tested in test_metrics)."""
        return {
            name: c.count
            for name, c in self.counters.items()
            if c.count and not name.startswith("table=")
        }


class FakeContext:
    def __init__(self) -> None:
        self.group = FakeGroup()

    def get_metric_group(self) -> FakeGroup:
        return self.group


class FakeWriter:
    """A :class:`~jupiter_common.writer.TableWriter` that keeps the batches it gets and answers
    with ``result`` (or raises ``error``)."""

    opened: ClassVar[list[FakeWriter]] = []

    def __init__(self, table: TableSpec) -> None:
        self.table = table
        self.batches: list[pa.Table] = []
        self.closed = False
        self.result: WriteResult | None = None
        self.error: Exception | None = None

    @classmethod
    def open(cls, settings: Settings, table: TableSpec) -> FakeWriter:
        writer = cls(table)
        cls.opened.append(writer)
        return writer

    def write(self, batch: pa.Table) -> WriteResult:
        if self.error is not None:
            raise self.error
        self.batches.append(batch)
        return self.result or WriteResult(batch.num_rows)

    def close(self) -> None:
        self.closed = True


@pytest.fixture(autouse=True)
def _fresh_writers() -> Iterator[None]:
    FakeWriter.opened.clear()
    yield
    FakeWriter.opened.clear()


SETTINGS = load_settings("movements", {})
PING = {**SEED, "status": "en_route", "current_lat": 40.5, "current_lon": -73.9}
NO_PING = {k: v for k, v in SEED.items() if k not in ("current_lat", "current_lon")}


def record(**changes: Any) -> bytes:
    return json.dumps({**SEED, **changes}).encode()


def columns(values: Sequence[bytes | None]) -> tuple[pd.Series, pd.Series, pd.Series]:
    """A batch as PyFlink hands it to a pandas function: value, partition, offset."""
    offsets = np.arange(100, 100 + len(values), dtype=np.int64)
    return (
        pd.Series(values, dtype=object),
        pd.Series(np.zeros(len(values), dtype=np.int32)),
        pd.Series(offsets),
    )


def opened_parse_and_land() -> tuple[ParseAndLand, FakeContext, FakeWriter]:
    function = ParseAndLand(SETTINGS, SESSION_MOVEMENTS, movement_columns, FakeWriter.open)
    context = FakeContext()
    function.open(context)
    (writer,) = FakeWriter.opened
    return function, context, writer


def test_parse_and_land_writes_the_pings_and_returns_the_dead_letters() -> None:
    function, context, writer = opened_parse_and_land()
    batch = [
        json.dumps(PING).encode(),
        json.dumps(NO_PING).encode(),
        b"<not json>",
        json.dumps({**PING, "current_lat": 41.0}).encode(),
    ]
    letters = function.eval(*columns(batch))

    (written,) = writer.batches
    assert written.schema == SESSION_MOVEMENTS.arrow_schema
    assert written.column("lat").to_pylist() == [40.5, 41.0]
    assert written.column("source_offset").to_pylist() == [100, 103]
    assert written.column("session_id").to_pylist() == [SEED["session_id"]] * 2

    assert [letter is None for letter in letters] == [True, True, False, True]
    letter = json.loads(letters[2])
    assert (letter["reason"], letter["partition"], letter["offset"]) == ("not_json", 0, 102)
    assert letter["job"] == "movements"
    assert context.group.counts() == {
        "records_in": 4,
        "records_accepted": 3,
        "records_rejected": 1,
        "reason=not_json.records_rejected": 1,
        "rows_written": 2,
        "batches_written": 1,
    }


def test_the_writers_result_is_counted() -> None:
    function, context, writer = opened_parse_and_land()
    writer.result = WriteResult(written=1, skipped=2, retries=3)
    function.eval(*columns([json.dumps(PING).encode()] * 3))
    counts = context.group.counts()
    assert (counts["rows_written"], counts["rows_already_landed"], counts["insert_retries"]) == (
        1,
        2,
        3,
    )


def test_a_failed_write_fails_the_call_and_counts_its_retries() -> None:
    """The task must fail (Flink restarts it from the last checkpoint): the error is raised,
    never swallowed, and the retries it took still show on the dashboard."""
    function, context, writer = opened_parse_and_land()
    writer.error = ClickHouseWriteError("down", table="session_movements", rows=1, attempts=4)
    with pytest.raises(ClickHouseWriteError):
        function.eval(*columns([json.dumps(PING).encode()]))
    assert context.group.counts() == {
        "records_in": 1,
        "records_accepted": 1,
        "insert_retries": 3,
    }


def test_close_closes_the_writer() -> None:
    function, _, writer = opened_parse_and_land()
    function.close()
    assert writer.closed


def test_land_rows_hands_the_insert_columns_by_name() -> None:
    function = LandRows(SETTINGS, SESSION_EVENTS, FakeWriter.open)
    function.open(FakeContext())
    batch = pa.table(
        {
            "session_id": [SEED["session_id"]],
            "vehicle_id": [SEED["vehicle_id"]],
            "order_id": [SEED["order_id"]],
            "timestamp": [1_752_928_496_789],
            "status": ["en_route"],
            "previous_status": ["started"],
            "lat": [None],
            "lon": [None],
            "source_partition": [0],
            "source_offset": [7],
        }
    )
    assert set(batch.column_names) == set(SESSION_EVENTS.insert_columns)
    ordered = [batch.column(name).to_pandas() for name in SESSION_EVENTS.insert_columns]
    made = function.eval(*ordered)
    assert made.tolist() == [1]
    (written,) = FakeWriter.opened[0].batches
    assert written.schema == SESSION_EVENTS.arrow_schema
    assert written.column("previous_status").to_pylist() == ["started"]


def test_parse_sessions_returns_fields_or_the_dead_letter() -> None:
    function = ParseSessions(load_settings("events", {}))
    context = FakeContext()
    function.open(context)
    frame = function.eval(*columns([record(status="arrived"), b""]))
    assert frame["status"].tolist()[0] == "arrived"
    assert frame["dead_letter"].isna().tolist() == [True, False]
    assert json.loads(frame["dead_letter"][1])["reason"] == "empty"
    assert context.group.counts()["reason=empty.records_rejected"] == 1
