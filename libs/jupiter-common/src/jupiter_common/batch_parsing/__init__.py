"""Parse a batch of raw Kafka record values at once, with exactly the verdicts of
:func:`~jupiter_common.parsing.parse_session`.

Why
---
``parse_session`` validates one record at a time through pydantic, about 10 to 16 µs a record:
at a high rate that is most of a job's CPU. :func:`parse_batch` reads the JSON of a whole batch
with one call to Arrow's C++ reader (``pyarrow.json``) and checks every field with vectorized
Arrow and NumPy operations, a few µs a record. It imports nothing from Flink: it takes plain
bytes and can be used and tested anywhere.

Contract
--------
One verdict per input record, in input order, and each is exactly what ``parse_session`` gives
that record:

- a valid record has the same values: the ids as canonical lowercase UUID text
  (``str(uuid)``), the status, the UTC epoch milliseconds, and every coordinate bit for bit;
- a refused record has the same :class:`~jupiter_common.parsing.Rejection` (reason, field and
  message), so a dead letter does not depend on the path its record took.

A bad record never changes another record's verdict, and nothing raises on bad input.

How it stays exact
------------------
The fast path is *sound, not complete*: it accepts a record only when it can prove that
``parse_session`` accepts it with the same values. Every record it cannot prove valid goes
through ``parse_session`` itself, which gives the verdict, the values or the rejection; that is
every refused record, and the valid records spelled unusually (uppercase, braced or unhyphenated
UUIDs, time zone offsets, microseconds, ``-0``, ...). The fast path is therefore only as right
as its gates, each of which ``tests/unit/test_batch_parsing.py`` covers:

1. What the reader may see (:func:`_screen`). Arrow's reader (RapidJSON) is more lenient than
   pydantic's (jiter) in ways that would make it accept what ``parse_session`` refuses, so a
   value reaches it only if it is bytes that start with ``{`` and end with ``}`` (no BOM, no
   whitespace around: with the row count below, this keeps one value from being read as two
   rows or two values as one), hold no ``\\n`` or ``\\r`` (the reader's row delimiters), no
   ``NaN`` or ``Inf`` (RapidJSON also takes ``Inf``, ``-Inf`` and ``-NaN``, jiter does not), at
   most :data:`MAX_BRACKETS` ``{`` and ``[`` (jiter refuses nesting deeper than about 200,
   RapidJSON has no limit), no run of more than :data:`MAX_DIGITS` digits (jiter refuses a
   number with more than 4,300 digits before its point, Arrow reads it), and are UTF-8 by
   Python's strict decoder (Arrow does not check the UTF-8 of the fields it ignores).
2. How it reads (:func:`_read`). The schema is explicit and typed, and Arrow refuses a part on a
   type mismatch (a string or boolean where a number belongs, a number where a string belongs),
   a duplicate schema key, a syntax error, or a number beyond a double; a part is used only if
   its read succeeds with exactly one row per value. A refused part is split around the row
   Arrow names (or in halves) and the rest is read again, so one bad record does not send its
   batch to the slow path; the record Arrow names takes the slow path.
3. What it accepts (:func:`_check`). UUIDs only in canonical lowercase form; the status token;
   timestamps only as ``YYYY-MM-DDTHH:MM:SS.mmmZ`` with a real calendar date (no Feb 30, no
   hour 24, no second 60) in [2000, 2100); coordinates finite and in range, never a negative
   zero (jiter reads ``-0`` as the integer 0, Arrow as ``-0.0``), ``current_lat`` and
   ``current_lon`` both present or both absent.

Cost
----
What takes the slow path costs what ``parse_session`` costs. Besides the records above, that is
a batch (or a part of one) with fewer than :data:`MIN_READ_RECORDS` readable values, and what
is still unread after :data:`MAX_FAILED_READS` refused reads. Neither changes a verdict.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from jupiter_common.batch_parsing.checks import _UUID_FIELDS, _check, _Checked
from jupiter_common.batch_parsing.reading import (
    _SCHEMA,
    MAX_BRACKETS,
    MAX_DIGITS,
    MAX_FAILED_READS,
    MIN_READ_RECORDS,
    Bools,
    Columns,
    Floats,
    Ints,
    _Joined,
    _read,
    _screen,
)
from jupiter_common.parsing import Rejection, parse_session
from jupiter_common.schema import COORDINATE_FIELDS, SessionMessage

__all__ = [
    "MAX_BRACKETS",
    "MAX_DIGITS",
    "MAX_FAILED_READS",
    "MIN_READ_RECORDS",
    "ParsedBatch",
    "parse_batch",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ParsedBatch:
    """A batch of raw record values, parsed: one verdict per input record, in input order.

    Every array has one entry per input record; the NumPy arrays are read-only.
    """

    valid: Bools
    """``parse_session`` accepts the record."""
    session_id: pa.StringArray
    """Canonical lowercase UUID text, null where not valid; so are ``vehicle_id``, ``order_id``."""
    vehicle_id: pa.StringArray
    order_id: pa.StringArray
    status: pa.StringArray
    """Null where not valid."""
    timestamp_ms: Ints
    """UTC epoch milliseconds; 0 where not valid."""
    start_lat: Floats
    """NaN where not valid; so are ``start_lon``, ``end_lat``, ``end_lon``."""
    start_lon: Floats
    end_lat: Floats
    end_lon: Floats
    current_lat: Floats
    """NaN where the message has no position or is not valid; so is ``current_lon``."""
    current_lon: Floats
    rejections: Mapping[int, Rejection]
    """Input index to the :class:`Rejection` ``parse_session`` gives the record, for every
    not-valid record and only those."""

    @property
    def has_position(self) -> Bools:
        """The record is valid and carries a GPS position (a ping)."""
        position: Bools = self.valid & ~np.isnan(self.current_lat)
        return position


def parse_batch(values: Sequence[bytes | None]) -> ParsedBatch:
    """Parse raw Kafka record values (``None`` for a tombstone): one verdict per value, in
    order, each exactly what :func:`~jupiter_common.parsing.parse_session` gives that value.

    Never raises on bad input. Should the fast path itself fail (a bug: it is logged as an
    error), the batch is parsed one record at a time instead of failing the job on every
    replay of the same records.
    """
    records = list(values)
    try:
        joined = _Joined.of(records)
        columns, rows = _read(joined, _screen(joined))
        fast = _check(columns)
    except Exception:
        log.exception(
            "fast path failed on a batch of %d records; parsing them one by one", len(records)
        )
        columns, fast = _nothing_read()
        return _assemble(records, columns, np.zeros(0, np.int64), fast)
    return _assemble(records, columns, rows[fast.ok], fast)


def _nothing_read() -> tuple[Columns, _Checked]:
    """The columns and checks of a batch of which nothing was read."""
    columns = {name: pa.array([], _SCHEMA.field(name).type) for name in _SCHEMA.names}
    nothing = np.zeros(0, np.float64)
    checked = _Checked(
        np.zeros(0, np.bool_), np.zeros(0, np.int64), dict.fromkeys(COORDINATE_FIELDS, nothing)
    )
    return columns, checked


def _assemble(
    records: list[bytes | None], columns: Columns, fast_rows: Ints, fast: _Checked
) -> ParsedBatch:
    """One verdict per record: the fast path's where it proved the record valid, else
    ``parse_session``'s (its values patched in, or its rejection recorded)."""
    count = len(records)
    valid = np.zeros(count, np.bool_)
    valid[fast_rows] = True
    row_of = np.full(count, -1, np.int64)
    row_of[fast_rows] = np.flatnonzero(fast.ok)
    take = pa.array(row_of, mask=row_of < 0)  # a null index takes a null
    strings = {name: columns[name].take(take) for name in (*_UUID_FIELDS, "status")}
    timestamp_ms = np.zeros(count, np.int64)
    timestamp_ms[fast_rows] = fast.timestamp_ms[fast.ok]
    coordinates = {name: np.full(count, np.nan) for name in COORDINATE_FIELDS}
    for name, column in coordinates.items():
        column[fast_rows] = fast.coordinates[name][fast.ok]

    accepted, rejections = _parse_one_by_one(records, np.flatnonzero(~valid))
    if accepted:
        at = np.array([index for index, _ in accepted], np.int64)
        valid[at] = True
        for name in strings:
            strings[name] = _patched(strings[name], at, [_text(m, name) for _, m in accepted])
        timestamp_ms[at] = [message.timestamp_ms for _, message in accepted]
        for name, column in coordinates.items():
            column[at] = [_coordinate(message, name) for _, message in accepted]

    for array in (valid, timestamp_ms, *coordinates.values()):
        array.flags.writeable = False
    return ParsedBatch(
        valid=valid,
        session_id=strings["session_id"],
        vehicle_id=strings["vehicle_id"],
        order_id=strings["order_id"],
        status=strings["status"],
        timestamp_ms=timestamp_ms,
        start_lat=coordinates["start_lat"],
        start_lon=coordinates["start_lon"],
        end_lat=coordinates["end_lat"],
        end_lon=coordinates["end_lon"],
        current_lat=coordinates["current_lat"],
        current_lon=coordinates["current_lon"],
        rejections=MappingProxyType(rejections),
    )


def _parse_one_by_one(
    records: list[bytes | None], indices: Ints
) -> tuple[list[tuple[int, SessionMessage]], dict[int, Rejection]]:
    """``parse_session`` on each of ``indices``: the messages it accepts, the rejections."""
    accepted: list[tuple[int, SessionMessage]] = []
    rejections: dict[int, Rejection] = {}
    for index in indices.tolist():
        result = parse_session(records[index])
        if isinstance(result, Rejection):
            rejections[index] = result
        else:
            accepted.append((index, result))
    return accepted, rejections


def _text(message: SessionMessage, name: str) -> str:
    return message.status if name == "status" else str(getattr(message, name))


def _coordinate(message: SessionMessage, name: str) -> float:
    value: float | None = getattr(message, name)
    return np.nan if value is None else value


def _patched(strings: pa.StringArray, at: Ints, texts: list[str]) -> pa.StringArray:
    """``strings`` with ``texts`` at the (ascending) indices ``at``."""
    mask = np.zeros(len(strings), np.bool_)
    mask[at] = True
    return pc.replace_with_mask(strings, pa.array(mask), pa.array(texts, pa.string()))
