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
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any, Final, TypeGuard

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from jupiter_common.parsing import Rejection, parse_session
from jupiter_common.schema import COORDINATE_FIELDS, EARLIEST, LATEST, SessionMessage

__all__ = [
    "MAX_BRACKETS",
    "MAX_DIGITS",
    "MAX_FAILED_READS",
    "MIN_READ_RECORDS",
    "ParsedBatch",
    "parse_batch",
]

log = logging.getLogger(__name__)

Bools = npt.NDArray[np.bool_]
Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
Bytes = npt.NDArray[np.uint8]


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


MAX_BRACKETS: Final = 128
"""A value with more ``{`` and ``[`` bytes than this takes the slow path. Nesting is no deeper
than that count, and pydantic's JSON parser refuses nesting deeper than about 200 levels, which
Arrow's reader accepts."""

MAX_DIGITS: Final = 1000
"""A value with a run of more digits than this takes the slow path. Pydantic's JSON parser
refuses a number with more than 4,300 digits before its decimal point ("number out of range",
whatever ``sys.set_int_max_str_digits`` says); Arrow's reader takes it in a field it ignores."""

MIN_READ_RECORDS: Final = 24
"""A part of a batch with fewer readable values than this goes through ``parse_session`` without
Arrow: a reader call costs about 200 µs whatever its size, what ``parse_session`` spends on some
20 records."""

MAX_FAILED_READS: Final = 16
"""Reader calls refused per batch before all that is still unread goes the slow way. Splitting
around bad records pays while they are few; when most of a batch is bad (a producer sending the
wrong type everywhere), each of them needs ``parse_session`` for its rejection anyway."""

MAX_READ_BYTES: Final = 1 << 30
"""A larger part is halved before it is read (Arrow's block size is a 32-bit integer)."""

_STRING_FIELDS: Final = ("session_id", "vehicle_id", "order_id", "status", "timestamp")
_UUID_FIELDS: Final = ("session_id", "vehicle_id", "order_id")
_SCHEMA: Final = pa.schema(
    [(name, pa.string()) for name in _STRING_FIELDS]
    + [(name, pa.float64()) for name in COORDINATE_FIELDS]
)
_PARSE_OPTIONS: Final = pj.ParseOptions(explicit_schema=_SCHEMA, unexpected_field_behavior="ignore")
_ERROR_ROW: Final = re.compile(r" in row (\d+)")

_STATUS_RE: Final = r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$"
""":data:`~jupiter_common.schema.STATUS_PATTERN` as a full match in RE2 (Arrow's regex engine:
ASCII classes, ``$`` only at the very end of the text)."""

_UNIX_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MS: Final = timedelta(milliseconds=1)
_EARLIEST_MS: Final = (EARLIEST - _UNIX_EPOCH) // _MS
_LATEST_MS: Final = (LATEST - _UNIX_EPOCH) // _MS
_LIMITS: Final = {name: 90.0 if name.endswith("_lat") else 180.0 for name in COORDINATE_FIELDS}
_DAYS_IN_MONTH: Final = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], np.int64)

_SEPARATOR: Final = b"\n"
_REFUSED_BYTES: Final = (b"\r", b"NaN", b"Inf")


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


# -- 1. what the reader may see ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Joined:
    """The values joined by newlines, as Arrow's reader takes them, and where each one is
    (anything that is not ``bytes``, such as a tombstone, counts as empty)."""

    values: list[bytes]
    blob: bytes
    data: Bytes
    """The blob as a NumPy view."""
    starts: Ints
    lengths: Ints
    inner_newlines: Ints
    """Indices of the values that contain a newline."""

    @classmethod
    def of(cls, records: list[bytes | None]) -> _Joined:
        values = records if _all_bytes(records) else [_bytes_or_empty(r) for r in records]
        blob = _SEPARATOR.join(values)
        data = np.frombuffer(blob, np.uint8)
        newlines = np.flatnonzero(data == _SEPARATOR[0])
        if len(newlines) == max(len(values) - 1, 0):  # only the separators: they say it all
            starts = np.concatenate(([0], newlines + 1))[: len(values)].astype(np.int64)
            lengths = np.diff(np.append(starts, len(blob) + 1)) - 1
            return cls(values, blob, data, starts, lengths, np.zeros(0, np.int64))
        lengths = np.fromiter(map(len, values), np.int64, len(values))
        starts = np.zeros(len(values), np.int64)
        np.cumsum(lengths[:-1] + 1, out=starts[1:])
        owners = np.searchsorted(starts, newlines, side="right") - 1
        inner = owners[newlines != starts[owners] + lengths[owners]]
        return cls(values, blob, data, starts, lengths, inner)

    def owners(self, positions: Ints) -> Ints:
        """The index of the value each blob position is in."""
        owners: Ints = np.searchsorted(self.starts, positions, side="right") - 1
        return owners

    def holding(self, needle: bytes) -> Ints:
        """Indices of the values that contain ``needle`` (a needle without a newline cannot
        straddle two values)."""
        if len(needle) == 1:
            if self.blob.find(needle) < 0:  # memchr: much faster than a NumPy pass
                return np.zeros(0, np.int64)
            return np.unique(self.owners(np.flatnonzero(self.data == needle[0])))
        tail = len(needle) - 1
        positions = np.flatnonzero(self.data[: max(len(self.data) - tail, 0)] == needle[0])
        for offset in range(1, len(needle)):
            positions = positions[self.data[positions + offset] == needle[offset]]
        return np.unique(self.owners(positions))


def _all_bytes(records: list[bytes | None]) -> TypeGuard[list[bytes]]:
    return all(type(record) is bytes for record in records)


def _bytes_or_empty(record: object) -> bytes:
    return record if type(record) is bytes else b""


def _screen(joined: _Joined) -> Bools:
    """Which values Arrow's reader may see: those it cannot read otherwise than pydantic does
    (the module docstring lists the gates). A few NumPy passes over the blob."""
    readable = _framed(joined)
    readable[joined.inner_newlines] = False
    for needle in _REFUSED_BYTES:
        readable[joined.holding(needle)] = False
    readable &= _bracket_counts(joined, readable) <= MAX_BRACKETS
    readable[_long_digit_runs(joined)] = False
    readable[_not_utf8(joined, readable)] = False
    return readable


def _framed(joined: _Joined) -> Bools:
    """Values of at least two bytes that start with ``{`` and end with ``}``."""
    framed = joined.lengths >= 2
    at = np.flatnonzero(framed)
    starts = joined.starts[at]
    ends = starts + joined.lengths[at] - 1
    framed[at] = (joined.data[starts] == ord("{")) & (joined.data[ends] == ord("}"))
    return framed


def _bracket_counts(joined: _Joined, readable: Bools) -> Ints:
    """The number of ``{`` and ``[`` bytes in each value. In the common batch each readable
    value has exactly one, its first byte, and one count over the blob proves it."""
    marks = (joined.data == ord("{")) | (joined.data == ord("["))
    if np.count_nonzero(marks) == np.count_nonzero(readable):
        return readable.astype(np.int64)
    counts: Ints = np.bincount(joined.owners(np.flatnonzero(marks)), minlength=len(readable))
    return counts


def _long_digit_runs(joined: _Joined) -> Ints:
    """Values with a run of more than :data:`MAX_DIGITS` digits; only a long value can have
    one, so the common batch costs one comparison."""
    if not len(joined.lengths) or joined.lengths.max() <= MAX_DIGITS:
        return np.zeros(0, np.int64)
    edges = np.diff(_is_digit(joined.data).view(np.int8), prepend=0, append=0)
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return np.unique(joined.owners(starts[ends - starts > MAX_DIGITS]))


def _not_utf8(joined: _Joined, readable: Bools) -> list[int]:
    """Readable values that Python's strict UTF-8 decoder refuses, as ``parse_session`` does."""
    if joined.blob.isascii():
        return []
    owners = np.unique(joined.owners(np.flatnonzero(joined.data >= 0x80)))
    refused = []
    for owner in owners[readable[owners]].tolist():
        try:
            joined.values[owner].decode("utf-8")
        except UnicodeDecodeError:
            refused.append(owner)
    return refused


# -- 2. how it reads ----------------------------------------------------------------------------


Columns = dict[str, pa.Array]


def _read(joined: _Joined, readable: Bools) -> tuple[Columns, Ints]:
    """The readable values as typed columns, and the input index of each row.

    A part Arrow refuses is split around the row it blames (or in halves) and the pieces are
    read again; a piece too small to pay for a reader call is left out, and so is everything
    still unread after :data:`MAX_FAILED_READS` refusals. Left out means: the slow path.
    Every part is a slice of one joined blob, so a retry copies nothing.
    """
    candidates = np.flatnonzero(readable)
    if len(candidates) == len(joined.values):
        blob, lengths = joined.blob, joined.lengths  # every value is readable: as joined
    else:
        blob = _SEPARATOR.join([joined.values[i] for i in candidates.tolist()])
        lengths = joined.lengths[candidates]
    ends = np.cumsum(lengths + 1) - 1  # where each candidate ends in the blob
    begins = ends - lengths
    view = memoryview(blob)
    pieces: list[tuple[int, pa.Table]] = []
    pending = [(0, len(candidates))]
    failures = 0
    while pending and failures <= MAX_FAILED_READS:
        lo, hi = pending.pop()
        if hi - lo < MIN_READ_RECORDS:
            continue
        part = view[begins[lo] : ends[hi - 1]]
        if len(part) > MAX_READ_BYTES:
            pending += _halves(lo, hi)
            continue
        table, bad_row = _read_part(part, hi - lo)
        if table is not None:
            pieces.append((lo, table))
            continue
        failures += 1
        pending += _around(lo, hi, bad_row)
    pieces.sort(key=lambda piece: piece[0])
    tables = [table for _, table in pieces]
    read = pa.concat_tables(tables) if tables else _SCHEMA.empty_table()
    rows = [candidates[lo : lo + table.num_rows] for lo, table in pieces]
    columns = {name: read.column(name).combine_chunks() for name in _SCHEMA.names}
    return columns, np.concatenate(rows) if rows else np.zeros(0, np.int64)


def _read_part(part: memoryview, count: int) -> tuple[pa.Table | None, int | None]:
    """``count`` newline-separated values as a table; or ``None`` and the row Arrow blames
    (``None`` when it names none, or when the rows do not match the values one to one)."""
    options = pj.ReadOptions(use_threads=False, block_size=len(part) + 1)
    try:
        table = pj.read_json(
            pa.BufferReader(pa.py_buffer(part)), read_options=options, parse_options=_PARSE_OPTIONS
        )
    except pa.ArrowException as exc:
        match = _ERROR_ROW.search(str(exc))
        return None, int(match.group(1)) if match else None
    if table.num_rows != count:
        return None, None
    return table, None


def _around(lo: int, hi: int, bad_row: int | None) -> list[tuple[int, int]]:
    """The parts to read again after [lo, hi) was refused: all but the blamed row when Arrow
    named one, else the two halves; nothing after a single value (it is the bad one)."""
    if hi - lo <= 1:
        return []
    if bad_row is None or not 0 <= bad_row < hi - lo:
        return _halves(lo, hi)
    return [(lo, lo + bad_row), (lo + bad_row + 1, hi)]


def _halves(lo: int, hi: int) -> list[tuple[int, int]]:
    middle = (lo + hi) // 2
    return [(lo, middle), (middle, hi)]


# -- 3. what it accepts -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Shape:
    """A fixed-width ASCII shape: ``9`` is a digit, ``x`` a lowercase hex digit, anything else
    itself. Checked on a byte matrix column by column, without a regex."""

    width: int
    digits: Ints
    hex_digits: Ints
    literal: Ints
    literal_bytes: Bytes

    @classmethod
    def of(cls, template: str) -> _Shape:
        kinds = np.frombuffer(template.encode("ascii"), np.uint8)
        literal = np.flatnonzero((kinds != ord("9")) & (kinds != ord("x")))
        return cls(
            len(template),
            np.flatnonzero(kinds == ord("9")),
            np.flatnonzero(kinds == ord("x")),
            literal,
            kinds[literal],
        )

    def accepts(self, matrix: Bytes) -> Bools:
        """Which rows of a (rows, width) byte matrix have the shape."""
        ok: Bools = (matrix[:, self.literal] == self.literal_bytes).all(axis=1)
        ok &= _is_digit(matrix[:, self.digits]).all(axis=1)
        hex_digits = matrix[:, self.hex_digits]
        ok &= (_is_digit(hex_digits) | (hex_digits - np.uint8(ord("a")) < 6)).all(axis=1)
        return ok


def _is_digit(matrix: Bytes) -> Bools:
    below_zero_wraps_around: Bools = matrix - np.uint8(ord("0")) < 10
    return below_zero_wraps_around


_UUID_SHAPE: Final = _Shape.of("xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx")
"""Canonical lowercase UUID text: exactly ``str(uuid.UUID(text))``."""
_TIMESTAMP_SHAPE: Final = _Shape.of("9999-99-99T99:99:99.999Z")


@dataclass(frozen=True, slots=True)
class _Checked:
    """The fast path's verdict on each row read, and the values it computed for them."""

    ok: Bools
    timestamp_ms: Ints
    coordinates: dict[str, Floats]


def _check(columns: Columns) -> _Checked:
    """Which rows ``parse_session`` provably accepts with exactly the values read (the module
    docstring says why each rule is what it is)."""
    ok = np.ones(len(columns["status"]), np.bool_)
    for name in _UUID_FIELDS:
        at, matrix = _fixed_width(columns[name], _UUID_SHAPE.width)
        uuid_ok = np.zeros_like(ok)
        uuid_ok[at] = _UUID_SHAPE.accepts(matrix)
        ok &= uuid_ok
    ok &= _numbers(pc.fill_null(pc.match_substring_regex(columns["status"], _STATUS_RE), False))
    timestamp_ms, timestamp_ok = _timestamps(columns["timestamp"])
    ok &= timestamp_ok
    coordinates: dict[str, Floats] = {}
    present: dict[str, Bools] = {}
    for name in COORDINATE_FIELDS:
        values = coordinates[name] = _numbers(pc.fill_null(columns[name], np.nan))
        present[name] = _numbers(columns[name].is_valid())
        exact = (np.abs(values) <= _LIMITS[name]) & ~((values == 0) & np.signbit(values))
        optional = name.startswith("current_")
        ok &= (exact | ~present[name]) if optional else exact
    ok &= present["current_lat"] == present["current_lon"]
    return _Checked(ok, timestamp_ms, coordinates)


def _numbers(array: pa.Array) -> npt.NDArray[Any]:
    """A null-free Arrow array as NumPy."""
    result: npt.NDArray[Any] = array.to_numpy(zero_copy_only=False)
    return result


def _fixed_width(strings: pa.StringArray, width: int) -> tuple[Ints, Bytes]:
    """The rows whose string is exactly ``width`` bytes, and those strings as a (rows, width)
    byte matrix straight from the Arrow buffers (no Python object per string)."""
    fits = _numbers(pc.fill_null(pc.equal(pc.binary_length(strings), width), False))
    at = np.flatnonzero(fits)
    if not len(at):
        return at, np.zeros((0, width), np.uint8)
    if len(at) < len(strings):
        strings = strings.filter(pa.array(fits))
    _, offsets_buffer, data_buffer = strings.buffers()
    start = int(np.frombuffer(offsets_buffer, np.int32, 1, strings.offset * 4)[0])
    matrix = np.frombuffer(data_buffer, np.uint8, len(at) * width, start)
    return at, matrix.reshape(len(at), width)


def _timestamps(strings: pa.StringArray) -> tuple[Ints, Bools]:
    """Epoch milliseconds of ``YYYY-MM-DDTHH:MM:SS.mmmZ`` timestamps, and which are exactly
    that: the shape, a real date and time (``fromisoformat`` refuses Feb 30, hour 24 and
    second 60, where Arrow's ``strptime`` would roll over), and in [2000, 2100)."""
    epoch_ms = np.zeros(len(strings), np.int64)
    ok = np.zeros(len(strings), np.bool_)
    at, matrix = _fixed_width(strings, _TIMESTAMP_SHAPE.width)
    shaped = _TIMESTAMP_SHAPE.accepts(matrix)
    at, digits = at[shaped], matrix[shaped].astype(np.int64) - ord("0")

    def number(start: int, end: int) -> Ints:
        weights = 10 ** np.arange(end - start - 1, -1, -1, dtype=np.int64)
        result: Ints = digits[:, start:end] @ weights
        return result

    year, month, day = number(0, 4), number(5, 7), number(8, 10)
    hour, minute, second, milli = number(11, 13), number(14, 16), number(17, 19), number(20, 23)
    month_ok = (month >= 1) & (month <= 12)
    month = np.where(month_ok, month, 1)
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    month_days = _DAYS_IN_MONTH[month] + ((month == 2) & leap)
    ms = ((_days_from_civil(year, month, day) * 24 + hour) * 60 + minute) * 60_000
    ms += second * 1000 + milli
    good = month_ok & (day >= 1) & (day <= month_days) & (hour <= 23) & (minute <= 59)
    good &= (second <= 59) & (ms >= _EARLIEST_MS) & (ms < _LATEST_MS)
    ok[at] = good
    epoch_ms[at[good]] = ms[good]
    return epoch_ms, ok


def _days_from_civil(year: Ints, month: Ints, day: Ints) -> Ints:
    """Days since 1970-01-01 of proleptic Gregorian dates (H. Hinnant's algorithm)."""
    year = year - (month <= 2)
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * ((month + 9) % 12) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    days: Ints = era * 146_097 + day_of_era - 719_468
    return days


# -- the verdicts -------------------------------------------------------------------------------


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
