"""Deterministic synthetic vehicle-session telemetry.

This module is pure: it builds Kafka-ready ``(key, value)`` byte records but never talks to
Kafka (see :mod:`jupiter_local.producer` for that).

Contract
--------
* ``generate(config)`` / ``iter_records(config)`` are pure functions of ``config``: the same
  config always yields byte-identical records in the same order; a different ``seed`` yields
  different output.
* Every *valid* record value is a compact (no whitespace) UTF-8 JSON object with keys in the
  order ``session_id, vehicle_id, order_id, status, timestamp, start_lat, start_lon, end_lat,
  end_lon[, current_lat, current_lon]``. Ids are lowercase uuid4 strings, ``timestamp`` is
  ISO-8601 UTC with millisecond precision and a ``Z`` suffix (``2025-07-19T12:34:56.789Z``).
  Coordinates are written with exactly 6 decimals (``40.752700``), so the parsed float equals
  ``round(x, 6)``; values stay inside the city box lat 40.70..40.80, lon -74.02..-73.93 (plus
  at most ~0.0001 degree of GPS noise).
* ``current_lat``/``current_lon`` are present exactly on the GPS-carrying statuses
  ``started`` (= start point), ``en_route`` (straight path start -> end plus small noise)
  and ``arrived`` (= end point); ``completed`` and ``cancelled`` never carry them.
* Session lifecycle (by timestamp): ``started, en_route*, arrived, completed`` or, for
  cancelled sessions, ``started, en_route* (fewer), cancelled``. Timestamps within a session
  are strictly increasing by ``ping_interval_ms``; ``(session_id, timestamp)`` is unique
  across all valid records.
* The record key is the session id as ASCII bytes, so one session stays in one partition.
* Faults: ``duplicate`` records are byte-identical copies (same key and value) of an earlier
  valid record, emitted 0..8 valid records after it; reordering swaps a valid record with the
  next record of the same session in emission order (so timestamps go backwards within the
  partition); ``malformed`` records cycle through :class:`MalformedKind` and never share a
  session id with a valid record (key ``None`` for ``NOT_JSON``/``NON_UTF8``, otherwise the
  fabricated session id).
* Live streams: :func:`stamp_when_pulled` rewrites the ``timestamp`` of each record to the
  wall-clock time at which it is taken from the iterator (a producer takes a record just
  before it sends it), keeping timestamps strictly increasing within a session; everything
  else in the record stays as generated. :func:`generate` and :func:`iter_records` never
  depend on the clock.
* Each fault uses its own seeded random stream, so the *set* of valid messages depends only
  on the non-fault knobs (``sessions``, ``pings_per_session``, ``cancel_ratio``, ``seed``,
  ``start_time``, ``ping_interval_ms``, ``interleave``).

Modules: :mod:`.model` (fields, kinds, configuration, records, expectations), :mod:`.stream`
(planning and emission), :mod:`.malformed`, :mod:`.stamps` (live timestamps).
"""

from jupiter_local.synthetic.model import (
    GPS_STATUSES,
    REQUIRED_FIELDS,
    STATUSES,
    Expectations,
    GeneratedStream,
    GeneratorConfig,
    MalformedKind,
    RecordKind,
    SyntheticRecord,
)
from jupiter_local.synthetic.stamps import restamp, stamp_when_pulled
from jupiter_local.synthetic.stream import generate, iter_records

__all__ = [
    "GPS_STATUSES",
    "REQUIRED_FIELDS",
    "STATUSES",
    "Expectations",
    "GeneratedStream",
    "GeneratorConfig",
    "MalformedKind",
    "RecordKind",
    "SyntheticRecord",
    "generate",
    "iter_records",
    "restamp",
    "stamp_when_pulled",
]
