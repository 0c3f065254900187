"""The three ClickHouse tables: columns, engine, keys, and the DDL that creates them.

Design, for the queries users run (one session over time; one vehicle over a day):

- the event tables (``session_events``, ``session_movements``) are ordered by ``vehicle_id``
  first (vehicle/day scans read one contiguous range) with a bloom-filter index on
  ``session_id`` for single-session look-ups, and partitioned by month, which keeps the part
  count low for a high-rate stream; their business key contains the timestamp, so two copies
  of a row always share a partition and merge;
- ``sessions_base`` (one row per session) is ordered by ``session_id`` with a bloom-filter
  index on ``vehicle_id``, and not partitioned: two headers of one session (possible only after
  its state expired) must be able to merge whatever their months;
- every table is a ``ReplacingMergeTree`` whose sorting key is the row's business key, so the
  same message delivered twice, or replayed after a restart, collapses to one row. Queries that
  must not see a not-yet-merged duplicate read with ``FINAL`` (see docs/delivery.md);
- ``non_replicated_deduplication_window`` lets ClickHouse drop a retried insert whose batch was
  already written (the writer sends an ``insert_deduplication_token`` per batch).

Each row carries the Kafka partition and offset it came from, for reconciliation and so that a
restarted job can tell the rows it already inserted (:mod:`jupiter_common.landed`): a projection
keeps the highest offset per partition readable from a few rows per part, and a ``minmax``
index on the offset narrows the look-up of an offset range to the parts that hold it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

import pyarrow as pa

from jupiter_common.errors import RowColumnsError

_IDENTIFIER: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

ARROW_TYPES: Final[dict[str, pa.DataType]] = {
    "UUID": pa.string(),
    "DateTime64(3, 'UTC')": pa.timestamp("ms", tz="UTC"),
    "LowCardinality(String)": pa.string(),
    "Float64": pa.float64(),
    "Nullable(Float64)": pa.float64(),
    "Int32": pa.int32(),
    "Int64": pa.int64(),
}
"""How each ClickHouse column type Jupiter writes travels in an Arrow insert."""


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str
    default: str | None = None
    """An expression ClickHouse fills the column with; the writer never sends such a column."""
    materialized: bool = False
    """``MATERIALIZED`` (computed, hidden from ``SELECT *``) rather than ``DEFAULT``."""

    @property
    def addable(self) -> bool:
        """ClickHouse has a value for this column in rows written before it existed (its
        ``DEFAULT``/``MATERIALIZED`` expression, or ``NULL``), so a start may add it to an
        existing table; any other new column needs a manual migration."""
        return self.default is not None or "Nullable(" in self.type

    def definition(self) -> str:
        """The column as in ``CREATE TABLE`` and ``ADD COLUMN``: name, type, default."""
        text = f"{quote_identifier(self.name)} {self.type}"
        if self.default is not None:
            text += f" {'MATERIALIZED' if self.materialized else 'DEFAULT'} {self.default}"
        return text


@dataclass(frozen=True, slots=True)
class TableSpec:
    """One table's definition. ``insert_columns`` are the columns a job's rows must have, by
    name (and in this order where they are handed over by position)."""

    name: str
    columns: tuple[Column, ...]
    engine: str
    order_by: tuple[str, ...]
    partition_by: str | None
    indexes: tuple[str, ...] = ()
    projections: tuple[str, ...] = ()
    settings: tuple[tuple[str, int | str], ...] = (("non_replicated_deduplication_window", 1000),)
    comment: str = ""

    def __post_init__(self) -> None:
        for column in self.columns:
            if not _IDENTIFIER.fullmatch(column.name):
                raise ValueError(f"bad column name {column.name!r} in {self.name}")

    @property
    def insert_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.default is None)

    @property
    def arrow_schema(self) -> pa.Schema:
        """The insert columns as an Arrow schema: what the writer sends."""
        types = {c.name: c.type for c in self.columns}
        return pa.schema(
            [
                pa.field(
                    name, ARROW_TYPES[types[name]], nullable=types[name].startswith("Nullable")
                )
                for name in self.insert_columns
            ]
        )

    def check_columns(self, names: Iterable[str], *, what: str, ordered: bool = True) -> None:
        """Raise :class:`RowColumnsError`, naming the missing, extra and misordered columns,
        unless ``names`` are exactly the insert columns: in their order when ``ordered``
        (columns handed over by position), in any order otherwise (columns taken by name).
        ``what`` says whose columns they are, for the message."""
        got = tuple(names)
        expected = self.insert_columns
        if got == expected:
            return
        if not ordered and len(got) == len(expected) and set(got) == set(expected):
            return
        raise _columns_error(self, got, what, ordered)

    def qualified(self, database: str) -> str:
        return f"{quote_identifier(database)}.{quote_identifier(self.name)}"

    def ddl(self, database: str) -> str:
        """``CREATE TABLE IF NOT EXISTS`` for this table in ``database``: idempotent."""
        lines = [f"    {c.definition()}" for c in self.columns]
        lines += [f"    {index}" for index in self.indexes]
        lines += [f"    {projection}" for projection in self.projections]
        parts = [
            f"CREATE TABLE IF NOT EXISTS {self.qualified(database)}\n(\n"
            + ",\n".join(lines)
            + "\n)",
            f"ENGINE = {self.engine}",
        ]
        if self.partition_by:
            parts.append(f"PARTITION BY {self.partition_by}")
        parts.append(f"ORDER BY ({', '.join(quote_identifier(c) for c in self.order_by)})")
        if self.settings:
            parts.append("SETTINGS " + ", ".join(f"{k} = {_setting(v)}" for k, v in self.settings))
        if self.comment:
            parts.append("COMMENT '" + self.comment.replace("'", "''") + "'")
        return "\n".join(parts)

    def add_column_ddl(self, database: str, name: str) -> str:
        """``ALTER TABLE ... ADD COLUMN IF NOT EXISTS`` for the column ``name`` of this table,
        placed after the column before it here: idempotent. Every identifier, type and default
        comes from this definition, never from the table found or from messages."""
        index = [c.name for c in self.columns].index(name)
        place = f"AFTER {quote_identifier(self.columns[index - 1].name)}" if index else "FIRST"
        return (
            f"ALTER TABLE {self.qualified(database)}"
            f" ADD COLUMN IF NOT EXISTS {self.columns[index].definition()} {place}"
        )


def _columns_error(
    table: TableSpec, got: tuple[str, ...], what: str, ordered: bool
) -> RowColumnsError:
    expected = table.insert_columns
    kept: list[str] = []
    extra: list[str] = []
    for name in got:
        (kept if name in expected and name not in kept else extra).append(name)
    missing = tuple(name for name in expected if name not in kept)
    in_order = [name for name in expected if name in kept]
    misordered = (
        tuple(name for name, want in zip(kept, in_order, strict=True) if name != want)
        if ordered
        else ()
    )
    problems = [
        f"{label} {', '.join(names)}"
        for label, names in (
            ("missing", missing),
            ("not insert columns (or repeated)", extra),
            ("out of order", misordered),
        )
        if names
    ]
    return RowColumnsError(
        f"{what} are not the insert columns of {table.name}: {'; '.join(problems)}"
        f" (expected {', '.join(expected)}; got {', '.join(got) or 'none'})",
        table=table.name,
        missing=missing,
        extra=tuple(extra),
        misordered=misordered,
    )


def _setting(value: int | str) -> str:
    return str(value) if isinstance(value, int) else "'" + value.replace("'", "''") + "'"


def quote_identifier(name: str) -> str:
    """Back-quote an identifier. Only names from code and validated settings get here."""
    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"not a plain identifier: {name!r}")
    return f"`{name}`"


_SOURCE: Final = (
    Column("source_partition", "Int32"),
    Column("source_offset", "Int64"),
    Column("ingested_at", "DateTime64(3, 'UTC')", default="now64(3)"),
)
_IDS: Final = (
    Column("session_id", "UUID"),
    Column("vehicle_id", "UUID"),
    Column("order_id", "UUID"),
)
_SESSION_INDEX: Final = "INDEX session_idx session_id TYPE bloom_filter GRANULARITY 4"
_OFFSET_INDEX: Final = "INDEX source_offset_idx source_offset TYPE minmax GRANULARITY 1"
_SOURCE_PROJECTIONS: Final = (
    "PROJECTION source_horizon"
    " (SELECT source_partition, max(source_offset) GROUP BY source_partition)",
)
_SETTINGS: Final = (
    ("non_replicated_deduplication_window", 1000),
    # Merges that replace rows recompute the projection (ClickHouse refuses projections on a
    # ReplacingMergeTree otherwise).
    ("deduplicate_merge_projection_mode", "rebuild"),
)

SESSION_MOVEMENTS: Final = TableSpec(
    name="session_movements",
    columns=(
        *_IDS,
        Column("timestamp", "DateTime64(3, 'UTC')"),
        Column("status", "LowCardinality(String)"),
        Column("lat", "Float64"),
        Column("lon", "Float64"),
        *_SOURCE,
    ),
    # One ping per (session, timestamp); of two copies the one read last from Kafka wins.
    engine="ReplacingMergeTree(source_offset)",
    order_by=("vehicle_id", "session_id", "timestamp"),
    partition_by="toYYYYMM(timestamp)",
    indexes=(_SESSION_INDEX, _OFFSET_INDEX),
    projections=_SOURCE_PROJECTIONS,
    settings=_SETTINGS,
    comment="One row per GPS ping (messages with current_lat/current_lon)",
)

SESSION_EVENTS: Final = TableSpec(
    name="session_events",
    columns=(
        *_IDS,
        Column("timestamp", "DateTime64(3, 'UTC')"),
        Column("status", "LowCardinality(String)"),
        Column("previous_status", "LowCardinality(String)"),
        Column("lat", "Nullable(Float64)"),
        Column("lon", "Nullable(Float64)"),
        *_SOURCE,
    ),
    engine="ReplacingMergeTree(source_offset)",
    order_by=("vehicle_id", "session_id", "timestamp", "status"),
    partition_by="toYYYYMM(timestamp)",
    indexes=(_SESSION_INDEX, _OFFSET_INDEX),
    projections=_SOURCE_PROJECTIONS,
    settings=_SETTINGS,
    comment="One row per status change of a session",
)

SESSIONS_BASE: Final = TableSpec(
    name="sessions_base",
    columns=(
        *_IDS,
        Column("started_at", "DateTime64(3, 'UTC')"),
        Column("start_lat", "Float64"),
        Column("start_lon", "Float64"),
        Column("end_lat", "Float64"),
        Column("end_lon", "Float64"),
        *_SOURCE,
        # The earliest started_at has the highest version, so it is the header that survives.
        Column(
            "header_version",
            "UInt64",
            default="9999999999999 - toUInt64(toUnixTimestamp64Milli(started_at))",
            materialized=True,
        ),
    ),
    engine="ReplacingMergeTree(header_version)",
    order_by=("session_id",),
    partition_by=None,
    indexes=("INDEX vehicle_idx vehicle_id TYPE bloom_filter GRANULARITY 4", _OFFSET_INDEX),
    projections=_SOURCE_PROJECTIONS,
    settings=_SETTINGS,
    comment="One immutable header per session, from its first started message",
)

ALL_TABLES: Final = (SESSIONS_BASE, SESSION_EVENTS, SESSION_MOVEMENTS)
