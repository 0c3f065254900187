"""Gate 3 of :mod:`jupiter_common.batch_parsing`: what the fast path accepts (:func:`check`):
canonical UUIDs, the status token, exact timestamps with a real calendar date, coordinates in
range; everything else takes the slow path."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from jupiter_common.batch_parsing.reading import Bools, Bytes, Columns, Floats, Ints, _is_digit
from jupiter_common.schema import COORDINATE_FIELDS, EARLIEST, LATEST

_UUID_FIELDS: Final = ("session_id", "vehicle_id", "order_id")

_STATUS_RE: Final = r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$"
""":data:`~jupiter_common.schema.STATUS_PATTERN` as a full match in RE2 (Arrow's regex engine:
ASCII classes, ``$`` only at the very end of the text)."""

_UNIX_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MS: Final = timedelta(milliseconds=1)
_EARLIEST_MS: Final = (EARLIEST - _UNIX_EPOCH) // _MS
_LATEST_MS: Final = (LATEST - _UNIX_EPOCH) // _MS
_LIMITS: Final = {name: 90.0 if name.endswith("_lat") else 180.0 for name in COORDINATE_FIELDS}
_DAYS_IN_MONTH: Final = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], np.int64)


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
