"""Which rows of a batch are already in the table: what a restarted job must not insert again.

A job that restarts from a checkpoint reads again the Kafka records after that checkpoint, and
restores rows its sink had buffered at that checkpoint. Some of those rows were inserted before
the crash. Inserting them again would leave duplicates that a plain query (without ``FINAL``)
sees until ClickHouse merges them, so the writer skips them, exactly:

- every row names the Kafka record it came from (``source_partition``, ``source_offset``), and
  one record makes at most one row of a table;
- when the writer starts, it reads the highest offset per partition already in the table (its
  *horizon*; a projection makes this a read of a few rows per part). A row above the horizon
  cannot be in the table: no row of its partition with a higher offset existed when the writer
  started, and only this writer writes the rows of its sessions;
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
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Final

from clickhouse_connect.driver.client import Client

from jupiter_common.tables import TableSpec, quote_identifier

log = logging.getLogger(__name__)

Row = tuple[object, ...]
Normaliser = Callable[[object], object]

PARTITION_COLUMN: Final = "source_partition"
OFFSET_COLUMN: Final = "source_offset"


def _as_text(value: object) -> object:
    return None if value is None else str(value).lower()


def _as_int(value: object) -> object:
    return None if value is None else int(value)  # type: ignore[call-overload]


def _as_float(value: object) -> object:
    return None if value is None else float(value)  # type: ignore[arg-type]


def _as_is(value: object) -> object:
    return value


def _comparable(column: str, kind: str) -> tuple[str, Normaliser]:
    """A SELECT expression for ``column`` and a function giving a row value the same form."""
    base = (
        kind.removeprefix("Nullable(").removesuffix(")") if kind.startswith("Nullable(") else kind
    )
    name = quote_identifier(column)
    if base == "UUID":
        return f"toString({name})", _as_text
    if base.startswith("DateTime64(3"):
        return f"toUnixTimestamp64Milli({name})", _as_int
    if base.startswith(("Int", "UInt")):
        return name, _as_int
    if base.startswith("Float"):
        return name, _as_float
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
        columns = table.insert_columns
        comparable = [_comparable(name, types[name]) for name in columns]
        self._select = ", ".join(expression for expression, _ in comparable)
        self._normalisers = tuple(normalise for _, normalise in comparable)
        self._partition_at = columns.index(PARTITION_COLUMN)
        self._offset_at = columns.index(OFFSET_COLUMN)
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
            log.info(
                "%s holds rows up to offsets %s; replays below are checked", self._table, horizon
            )
        return horizon

    def not_landed(self, rows: Sequence[Row]) -> list[Row]:
        """``rows`` without those already in the table, in their order."""
        suspects: dict[int, list[int]] = defaultdict(list)
        p, o = self._partition_at, self._offset_at
        horizon = self.horizon
        for index, row in enumerate(rows):
            partition, offset = int(row[p]), int(row[o])  # type: ignore[call-overload]
            if offset <= horizon.get(partition, -1):
                suspects[partition].append(index)
        if not suspects:
            return list(rows)
        skip: set[int] = set()
        for partition, indexes in suspects.items():
            offsets = [int(rows[i][o]) for i in indexes]  # type: ignore[call-overload]
            landed = self._rows_between(partition, min(offsets), max(offsets))
            skip.update(i for i in indexes if self._normalised(rows[i]) in landed)
        keep = [row for index, row in enumerate(rows) if index not in skip]
        if len(keep) < len(rows):
            log.info(
                "%s: %d of %d rows already landed, skipped",
                self._table,
                len(rows) - len(keep),
                len(rows),
            )
        return keep

    def _rows_between(self, partition: int, low: int, high: int) -> set[Row]:
        result = self._client.query(
            f"SELECT {self._select} FROM {self._table}"  # noqa: S608
            f" WHERE {PARTITION_COLUMN} = {{partition:Int32}}"
            f" AND {OFFSET_COLUMN} BETWEEN {{low:Int64}} AND {{high:Int64}}",
            parameters={"partition": partition, "low": low, "high": high},
        )
        return {self._normalised(tuple(row)) for row in result.result_rows}

    def _normalised(self, row: Row) -> Row:
        return tuple(
            normalise(value) for normalise, value in zip(self._normalisers, row, strict=True)
        )
