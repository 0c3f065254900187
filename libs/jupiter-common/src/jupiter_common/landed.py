"""Which rows of a batch are already in the table: what a restarted job must not insert again.

A job that restarts from a checkpoint reads again the Kafka records after that checkpoint.
Some of their rows were inserted before the crash. Inserting them again would leave duplicates
that a plain query (without ``FINAL``) sees until ClickHouse merges them, so the writer skips
them, exactly:

- every row names the Kafka record it came from (``source_partition``, ``source_offset``), and
  one record makes at most one row of a table;
- when the writer starts, it reads the highest offset per partition already in the table (its
  *horizon*; a projection makes this a read of a few rows per part). A row above the horizon
  cannot be in the table: no row of its partition with a higher offset existed when the writer
  started, and only this writer writes the rows of its records;
- a row at or below the horizon is *suspect*: the writer looks its partition's offset range up
  in the table and skips the rows found there with the same content, column for column.

Comparing content, not only coordinates, makes the skip safe when coordinates are reused (a
topic deleted and created again starts at offset 0): a row is skipped only when an identical
row is already there, which loses nothing. After a restart the suspects are the records between
the restored checkpoint and the crash; once the job has read past its horizon, batches carry no
suspects and cost no query.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from clickhouse_connect.driver.client import Client

from jupiter_common.tables import TableSpec, quote_identifier

log = logging.getLogger(__name__)

Row = tuple[object, ...]
Normaliser = Callable[[object], object]

PARTITION_COLUMN: Final = "source_partition"
OFFSET_COLUMN: Final = "source_offset"


def _as_text(value: object) -> object:
    return None if value is None else str(value).lower()


def _as_is(value: object) -> object:
    return value


def _comparable(column: str, kind: str) -> tuple[str, Normaliser]:
    """A SELECT expression for ``column`` and a function giving an Arrow value the same form
    (timestamps are compared as epoch milliseconds on both sides)."""
    name = quote_identifier(column)
    if kind == "UUID":
        return f"toString({name})", _as_text
    if kind.startswith("DateTime64(3"):
        return f"toUnixTimestamp64Milli({name})", _as_is
    return name, _as_is


class LandedRows:
    """Tells the rows of a batch that are already in ``table`` from those that are not.

    One per writer: it reads the table's horizon before the writer's first insert.
    """

    def __init__(self, client: Client, table: TableSpec, database: str) -> None:
        # Every name in the SQL below comes from the table spec, quoted; values are bound.
        self._client = client
        self._table = table.qualified(database)
        types = {c.name: c.type for c in table.columns}
        comparable = [_comparable(name, types[name]) for name in table.insert_columns]
        self._select = ", ".join(expression for expression, _ in comparable)
        self._normalisers = tuple(normalise for _, normalise in comparable)
        self._horizon: dict[int, int] | None = None

    @property
    def horizon(self) -> dict[int, int]:
        """The highest ``source_offset`` per ``source_partition`` in the table when first asked
        (the writer asks before its first insert)."""
        if self._horizon is None:
            self._horizon = self._read_horizon()
        return self._horizon

    def _read_horizon(self) -> dict[int, int]:
        result = self._client.query(
            f"SELECT {PARTITION_COLUMN}, max({OFFSET_COLUMN}) FROM {self._table}"  # noqa: S608
            f" GROUP BY {PARTITION_COLUMN}"
        )
        horizon = {int(partition): int(offset) for partition, offset in result.result_rows}
        if horizon:
            log.info("%s holds rows up to offsets %s; replays are checked", self._table, horizon)
        return horizon

    def new_rows(self, batch: pa.Table) -> pa.Table:
        """``batch`` (insert columns, the table's Arrow schema) without the rows already in
        the table, in their order."""
        horizon = self.horizon
        if not horizon or batch.num_rows == 0:
            return batch
        partitions = batch.column(PARTITION_COLUMN).to_numpy()
        offsets = batch.column(OFFSET_COLUMN).to_numpy()
        present = np.unique(partitions)
        limits = np.array([horizon.get(int(p), -1) for p in present], dtype=np.int64)
        suspects = np.flatnonzero(offsets <= limits[np.searchsorted(present, partitions)])
        if len(suspects) == 0:
            return batch
        keep = np.ones(batch.num_rows, dtype=bool)
        for partition in np.unique(partitions[suspects]):
            indexes = suspects[partitions[suspects] == partition]
            found = self._rows_between(
                int(partition), int(offsets[indexes].min()), int(offsets[indexes].max())
            )
            for index, row in zip(indexes, self._rows(batch.take(indexes)), strict=True):
                keep[index] = row not in found
        skipped = batch.num_rows - int(keep.sum())
        if skipped:
            log.info("%s: %d of %d rows already landed, skipped", self._table, skipped, len(keep))
        return batch.filter(pa.array(keep))

    def _rows_between(self, partition: int, low: int, high: int) -> set[Row]:
        result = self._client.query(
            f"SELECT {self._select} FROM {self._table}"  # noqa: S608
            f" WHERE {PARTITION_COLUMN} = {{partition:Int32}}"
            f" AND {OFFSET_COLUMN} BETWEEN {{low:Int64}} AND {{high:Int64}}",
            parameters={"partition": partition, "low": low, "high": high},
        )
        return {self._normalised(tuple(row)) for row in result.result_rows}

    def _rows(self, rows: pa.Table) -> list[Row]:
        columns = [
            pc.cast(column, pa.int64()) if pa.types.is_timestamp(column.type) else column
            for column in rows.columns
        ]
        return [
            self._normalised(row)
            for row in zip(*(column.to_pylist() for column in columns), strict=True)
        ]

    def _normalised(self, row: Row) -> Row:
        return tuple(
            normalise(value) for normalise, value in zip(self._normalisers, row, strict=True)
        )
