"""The Python functions of the data path: vectorized, so records cross between the JVM and
Python in Arrow batches (``python.fn-execution.arrow.batch.size`` rows), never one at a time.

- :class:`ParseSessions` parses a batch of raw Kafka values (:func:`parse_batch`) and returns a
  row per record: the message's fields, or the record's dead letter.
- :class:`LandRows` hands a batch of table rows to the job's writer (a
  :class:`~jupiter_common.writer.TableWriter`, ClickHouse's unless a test gives another: one
  Arrow insert per call) and returns how many rows each input row made (0 or 1).
- :class:`ParseAndLand` does both in one call for a job without state between the two
  (movements-job): the rows never leave Python.

Every job sees a message as the same record: the columns of :data:`MESSAGE_FIELDS`, in SQL (the
view :meth:`~jupiter_common.flink.pipeline.Pipeline.valid_messages`) and in Python (what a
:data:`RowsOf` function gets). Rows reach a writer by column name, checked against the table's
insert columns (:meth:`~jupiter_common.tables.TableSpec.check_columns`).

Both writing functions write synchronously inside the call; the batches are Flink's bundles, so
Flink's bundle policy is the flush policy. Flink finishes every Python bundle before a
checkpoint barrier passes, so every row of a record before a checkpoint is in ClickHouse when
the checkpoint completes; after a restart the records after it are read again, and the writer
leaves out the rows already there (:mod:`jupiter_common.landed`). A writing function is not
deterministic, so the planner neither folds nor repeats its calls.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
from pyflink.table import DataTypes
from pyflink.table.udf import FunctionContext, ScalarFunction, udf
from pyflink.table.udf import UserDefinedScalarFunctionWrapper as ScalarUdf

from jupiter_common.batch_parsing import ParsedBatch, parse_batch
from jupiter_common.dead_letter import SourceRecord, dead_letter
from jupiter_common.errors import ClickHouseWriteError
from jupiter_common.flink.metrics import LatencyHistogram, event_time_column
from jupiter_common.logs import configure_worker_logging
from jupiter_common.parsing import RejectReason
from jupiter_common.settings import Settings
from jupiter_common.tables import TableSpec
from jupiter_common.writer import OpenWriter, arrow_batch, open_clickhouse_writer

MESSAGE_FIELDS: Final = (
    ("session_id", DataTypes.STRING()),
    ("vehicle_id", DataTypes.STRING()),
    ("order_id", DataTypes.STRING()),
    ("status", DataTypes.STRING()),
    ("timestamp_ms", DataTypes.BIGINT()),
    ("start_lat", DataTypes.DOUBLE()),
    ("start_lon", DataTypes.DOUBLE()),
    ("end_lat", DataTypes.DOUBLE()),
    ("end_lon", DataTypes.DOUBLE()),
    ("current_lat", DataTypes.DOUBLE()),
    ("current_lon", DataTypes.DOUBLE()),
    ("source_partition", DataTypes.INT()),
    ("source_offset", DataTypes.BIGINT()),
)
"""A valid message, as every job sees it: what :class:`ParseSessions` returns of it, in this
order, and what a :data:`RowsOf` function gets. The one definition of Jupiter's record."""

MESSAGE_COLUMNS: Final = tuple(name for name, _ in MESSAGE_FIELDS)

PARSED_ROW: Final = DataTypes.ROW(
    [DataTypes.FIELD(name, kind) for name, kind in MESSAGE_FIELDS]
    + [DataTypes.FIELD("dead_letter", DataTypes.STRING())]
)

Offsets = npt.NDArray[np.int64]
Columns = Mapping[str, Any]
RowsOf = Callable[[Columns], Columns]
"""A job's rows of the valid messages of a batch: their :data:`MESSAGE_FIELDS` columns (see
:func:`message_columns`) -> the table's insert columns by name (see
:func:`~jupiter_common.writer.arrow_batch`)."""


def message_columns(
    batch: ParsedBatch, partitions: Offsets, offsets: Offsets, *, only_valid: bool
) -> dict[str, Any]:
    """The :data:`MESSAGE_FIELDS` columns of a parsed batch, in that order: strings as Arrow
    arrays, numbers as NumPy arrays. One entry per record (null, NaN or 0 where the record is
    not valid), or with ``only_valid`` one per valid record."""
    valid = batch.valid
    found: dict[str, Any] = {
        "session_id": batch.session_id,
        "vehicle_id": batch.vehicle_id,
        "order_id": batch.order_id,
        "status": batch.status,
        "timestamp_ms": batch.timestamp_ms,
        "start_lat": batch.start_lat,
        "start_lon": batch.start_lon,
        "end_lat": batch.end_lat,
        "end_lon": batch.end_lon,
        "current_lat": batch.current_lat,
        "current_lon": batch.current_lon,
        "source_partition": np.where(valid, partitions, 0).astype(np.int32),
        "source_offset": np.where(valid, offsets, 0).astype(np.int64),
    }
    columns = {name: found[name] for name in MESSAGE_COLUMNS}
    if only_valid and not valid.all():
        mask = pa.array(valid)
        return {
            name: values.filter(mask) if isinstance(values, pa.Array) else values[valid]
            for name, values in columns.items()
        }
    return columns


def _dead_letters(
    job: str, topic: str, values: pd.Series, partitions: Offsets, offsets: Offsets,
    batch: ParsedBatch,
) -> list[str | None]:  # fmt: skip
    letters: list[str | None] = [None] * len(values)
    for index, rejection in batch.rejections.items():
        source = SourceRecord(topic, int(partitions[index]), int(offsets[index]))
        letters[index] = dead_letter(job, values.iat[index], rejection, source).to_json()
    return letters


class _ParseCounters:
    """The parsing counters of a function, in its metric group's sub-group ``jupiter``; the
    refusals also by reason, labelled ``reason`` (``jupiter_reason_records_rejected``)."""

    def __init__(self, function_context: FunctionContext) -> None:
        group = function_context.get_metric_group().add_group("jupiter")
        self._records = group.counter("records_in")
        self._accepted = group.counter("records_accepted")
        self._rejected = group.counter("records_rejected")
        self._reasons = {
            r.value: group.add_group("reason", r.value).counter("records_rejected")
            for r in RejectReason
        }

    def count(self, batch: ParsedBatch) -> None:
        refused = len(batch.rejections)
        self._records.inc(len(batch.valid))
        self._accepted.inc(len(batch.valid) - refused)
        self._rejected.inc(refused)
        for rejection in batch.rejections.values():
            self._reasons[rejection.reason.value].inc()


class ParseSessions(ScalarFunction):  # type: ignore[misc]
    """``(value, partition, offset)`` -> :data:`PARSED_ROW`: the message's fields and a NULL
    dead letter, or NULL fields and the dead letter."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def open(self, function_context: FunctionContext) -> None:
        configure_worker_logging(self._settings)
        self._counters = _ParseCounters(function_context)

    def eval(self, values: pd.Series, partitions: pd.Series, offsets: pd.Series) -> pd.DataFrame:
        batch = parse_batch(values.tolist())
        self._counters.count(batch)
        part, off = partitions.to_numpy(), offsets.to_numpy()
        columns = message_columns(batch, part, off, only_valid=False)
        frame = pd.DataFrame(
            {
                **{
                    name: column.to_pandas() if isinstance(column, pa.Array) else column
                    for name, column in columns.items()
                },
                "dead_letter": _dead_letters(
                    self._settings.job, self._settings.kafka_topic, values, part, off, batch
                ),
            }
        )
        return frame


class _Writing(ScalarFunction):  # type: ignore[misc]
    """A function that writes into ``table``: one writer per function instance, opened with
    the task by ``open_writer`` (the table exists: the driver created it before submitting the
    job)."""

    def __init__(
        self, settings: Settings, table: TableSpec, open_writer: OpenWriter = open_clickhouse_writer
    ) -> None:
        self._settings = settings
        self._table = table
        self._open_writer = open_writer

    def open(self, function_context: FunctionContext) -> None:
        configure_worker_logging(self._settings)
        self._writer = self._open_writer(self._settings, self._table)
        group = function_context.get_metric_group().add_group("jupiter")
        self._rows_written = group.counter("rows_written")
        self._batches_written = group.counter("batches_written")
        self._insert_retries = group.counter("insert_retries")
        self._rows_already_landed = group.counter("rows_already_landed")
        self._latency = LatencyHistogram(group, self._table.name)
        self._event_time = event_time_column(self._table)

    def _write(self, batch: pa.Table) -> None:
        """Write ``batch`` and count what happened (retries of a failed write too)."""
        try:
            result = self._writer.write(batch)
        except ClickHouseWriteError as exc:
            self._insert_retries.inc(exc.attempts - 1)
            raise
        self._insert_retries.inc(result.retries)
        self._latency.observe_column(batch, self._event_time)
        self._rows_already_landed.inc(result.skipped)
        if result.written:
            self._rows_written.inc(result.written)
            self._batches_written.inc()

    def close(self) -> None:
        writer = getattr(self, "_writer", None)
        if writer is not None:
            writer.close()

    def is_deterministic(self) -> bool:
        return False


class LandRows(_Writing):
    """The insert columns of ``table``, in order -> 1 per row (the batch is inserted). The SQL
    that calls it names the arguments after the insert columns, so order is by construction
    (see :meth:`~jupiter_common.flink.pipeline.Pipeline.land`)."""

    def eval(self, *columns: pd.Series) -> pd.Series:
        names = self._table.insert_columns
        self._write(arrow_batch(self._table, dict(zip(names, columns, strict=True))))
        return pd.Series(np.ones(len(columns[0]), dtype=np.int32))


class ParseAndLand(_Writing):
    """``(value, partition, offset)`` -> the record's dead letter, or NULL; the rows that
    ``rows_of`` makes of the valid messages are inserted into ``table``."""

    def __init__(
        self,
        settings: Settings,
        table: TableSpec,
        rows_of: RowsOf,
        open_writer: OpenWriter = open_clickhouse_writer,
    ) -> None:
        super().__init__(settings, table, open_writer)
        self._rows_of = rows_of

    def open(self, function_context: FunctionContext) -> None:
        super().open(function_context)
        self._counters = _ParseCounters(function_context)

    def eval(self, values: pd.Series, partitions: pd.Series, offsets: pd.Series) -> pd.Series:
        batch = parse_batch(values.tolist())
        self._counters.count(batch)
        part, off = partitions.to_numpy(), offsets.to_numpy()
        messages = message_columns(batch, part, off, only_valid=True)
        self._write(arrow_batch(self._table, self._rows_of(messages)))
        settings = self._settings
        letters = _dead_letters(settings.job, settings.kafka_topic, values, part, off, batch)
        return pd.Series(letters, dtype=object)


def parse_sessions(settings: Settings) -> ScalarUdf:
    return udf(
        ParseSessions(settings),
        result_type=PARSED_ROW,
        func_type="pandas",
    )


def land_rows(settings: Settings, table: TableSpec) -> ScalarUdf:
    return udf(LandRows(settings, table), result_type=DataTypes.INT(), func_type="pandas")


def parse_and_land(settings: Settings, table: TableSpec, rows_of: RowsOf) -> ScalarUdf:
    return udf(
        ParseAndLand(settings, table, rows_of),
        result_type=DataTypes.STRING(),
        func_type="pandas",
    )
