"""Gates 1 and 2 of :mod:`jupiter_common.batch_parsing`: what Arrow's JSON reader may see
(:func:`screen`) and how a batch is read (:func:`read`), split around the records it refuses."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, TypeGuard

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.json as pj

from jupiter_common.schema import COORDINATE_FIELDS

Bools = npt.NDArray[np.bool_]
Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
Bytes = npt.NDArray[np.uint8]
Columns = dict[str, pa.Array]

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
_SCHEMA: Final = pa.schema(
    [(name, pa.string()) for name in _STRING_FIELDS]
    + [(name, pa.float64()) for name in COORDINATE_FIELDS]
)
_PARSE_OPTIONS: Final = pj.ParseOptions(explicit_schema=_SCHEMA, unexpected_field_behavior="ignore")
_ERROR_ROW: Final = re.compile(r" in row (\d+)")

_SEPARATOR: Final = b"\n"
_REFUSED_BYTES: Final = (b"\r", b"NaN", b"Inf")


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


def _is_digit(matrix: Bytes) -> Bools:
    below_zero_wraps_around: Bools = matrix - np.uint8(ord("0")) < 10
    return below_zero_wraps_around
