"""Rows written as tuples in a table's insert-column order, for tests that spell rows out."""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

from jupiter_common.landed import Row
from jupiter_common.tables import TableSpec
from jupiter_common.writer import ClickHouseWriter, WriteResult, arrow_batch


def batch_of(table: TableSpec, rows: Sequence[Row]) -> pa.Table:
    """``rows`` (tuples in ``table.insert_columns`` order) as the writer's Arrow batch."""
    names = table.insert_columns
    columns: list[Sequence[object]] = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    return arrow_batch(table, dict(zip(names, columns, strict=True)))


def write_rows(writer: ClickHouseWriter, rows: Sequence[Row]) -> WriteResult:
    return writer.write(batch_of(writer.table, rows))
