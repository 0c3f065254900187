"""Schema evolution: what an existing table needs to match its definition in :mod:`tables`.

A job's table is checked at every start (and by ``hatch run migrate``) against its
:class:`~jupiter_common.tables.TableSpec`, column by column:

- a column of the definition that the table lacks is added (``ADD COLUMN IF NOT EXISTS``) when
  ClickHouse has a value for the rows already there: it is ``Nullable`` or has a ``DEFAULT`` or
  ``MATERIALIZED`` expression. Any other missing column stops the start: adding it would give
  the existing rows a made-up ``0`` or ``''``;
- a column whose type differs stops the start (:class:`ColumnTypeChangedError`, naming the
  column and both types): converting stored data is a decision for a person, not for a job;
- a column of the table that the definition no longer has is left alone, with a warning: rows
  written from now on get its default, and dropping data is never automatic.

Only names, types and defaults from the definition reach the statements; what the table holds
is compared, never spliced into SQL. Engine, sorting key, partitioning, indexes, projections and
settings of an existing table are not compared or changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from jupiter_common.errors import ColumnTypeChangedError, TableSchemaError
from jupiter_common.tables import Column, TableSpec


@dataclass(frozen=True, slots=True)
class Evolution:
    """What a table needs, found by :func:`plan`."""

    add: tuple[Column, ...]
    """Columns of the definition to add, in the definition's order."""
    unknown: tuple[str, ...]
    """Columns of the table that the definition does not have (left alone)."""


def plan(table: TableSpec, qualified: str, found: Mapping[str, str]) -> Evolution:
    """Compare the columns ``found`` in the table ``qualified`` (name -> ClickHouse type) with
    ``table``. Raises :class:`ColumnTypeChangedError` for a changed type and
    :class:`TableSchemaError` for a missing column that cannot be added safely."""
    changed = tuple(
        (column.name, found[column.name], column.type)
        for column in table.columns
        if column.name in found and not same_type(found[column.name], column.type)
    )
    if changed:
        raise ColumnTypeChangedError(qualified, changed)
    missing = tuple(column for column in table.columns if column.name not in found)
    required = [column for column in missing if not column.addable]
    if required:
        described = ", ".join(f"{c.name} {c.type}" for c in required)
        raise TableSchemaError(
            f"{qualified} lacks column(s) {described}, which have neither a DEFAULT nor a"
            " Nullable type, so the rows already there would get a made-up value: add them by"
            " hand (docs/changing-a-table.md) or give them a DEFAULT in Jupiter's definition;"
            " the job does not start"
        )
    names = {column.name for column in table.columns}
    unknown = tuple(name for name in found if name not in names)
    return Evolution(add=missing, unknown=unknown)


def same_type(found: str, expected: str) -> bool:
    """The same ClickHouse type, whatever the spacing and quoting ``system.columns`` uses."""
    return _normalise(found) == _normalise(expected)


def _normalise(kind: str) -> str:
    return kind.replace(" ", "").replace('"', "'")
