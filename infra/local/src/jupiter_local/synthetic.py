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
"""

from __future__ import annotations

import gc
import json
import math
import random
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Final, Literal

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

RecordKind = Literal["valid", "duplicate", "malformed"]

#: Every field that a valid message always carries (``current_*`` are optional).
REQUIRED_FIELDS: Final[tuple[str, ...]] = (
    "session_id",
    "vehicle_id",
    "order_id",
    "status",
    "timestamp",
    "start_lat",
    "start_lon",
    "end_lat",
    "end_lon",
)
#: All statuses the generator emits.
STATUSES: Final[tuple[str, ...]] = ("started", "en_route", "arrived", "completed", "cancelled")
#: Statuses whose messages carry ``current_lat``/``current_lon``.
GPS_STATUSES: Final[frozenset[str]] = frozenset({"started", "en_route", "arrived"})

# City box (Manhattan-ish) for start/end points.
_LAT_MIN: Final = 40.70
_LAT_MAX: Final = 40.80
_LON_MIN: Final = -74.02
_LON_MAX: Final = -73.93
# Peak-to-peak GPS noise in degrees (~20 m).
_NOISE: Final = 0.0002
# Upper bound on how many interleaved sessions are active at once (roughly).
_MAX_CONCURRENT: Final = 1000
# Duplicates are re-emitted after 0.._DUP_MAX_DELAY further valid records.
_DUP_MAX_DELAY: Final = 8
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
# Bit masks applied by uuid.UUID(..., version=4): clear variant/version, set 0b10 / 0b0100.
_UUID_KEEP: Final = ~((0xC000 << 48) | (0xF000 << 64)) & ((1 << 128) - 1)
_UUID_SET: Final = (0x8000 << 48) | (4 << 76)
_MS: Final = timedelta(milliseconds=1)


class MalformedKind(StrEnum):
    """The kinds of malformed records, emitted in this (cyclic) order."""

    NOT_JSON = "not_json"
    """Value does not parse as JSON (truncated object, ``key=value`` text, Python repr)."""
    MISSING_FIELD = "missing_field"
    """Valid JSON object lacking one of :data:`REQUIRED_FIELDS`."""
    BAD_UUID = "bad_uuid"
    """One of ``session_id``/``vehicle_id``/``order_id`` is not a parseable UUID."""
    OUT_OF_RANGE_COORDINATE = "out_of_range_coordinate"
    """A latitude beyond +-90 or a longitude beyond +-180."""
    BAD_TIMESTAMP = "bad_timestamp"
    """``timestamp`` is unparseable as ISO-8601 or lacks a timezone."""
    NON_UTF8 = "non_utf8"
    """Value bytes are not valid UTF-8."""


_MALFORMED_CYCLE: Final[tuple[MalformedKind, ...]] = tuple(MalformedKind)


@dataclass(frozen=True)
class GeneratorConfig:
    """Knobs for :func:`generate`; the whole output is a pure function of this value.

    Attributes:
        sessions: Number of sessions (>= 0).
        pings_per_session: Mean number of ``en_route`` pings per session (>= 0); the actual
            count is ``max(1, round(gauss(mean, mean / 4)))`` (0 if the mean is 0). Cancelled
            sessions emit fewer: ``randint(0, (n - 1) // 2)``.
        cancel_ratio: Probability in [0, 1] that a session ends ``cancelled``.
        seed: Seed for all random streams.
        start_time: Timezone-aware time of the earliest message.
        ping_interval_ms: Gap between consecutive messages of one session (>= 1).
        interleave: If true, session start times are spread at random so sessions overlap
            and emission is globally ordered by timestamp; otherwise sessions run back to back.
        duplicate_ratio: Probability in [0, 1] that a valid record is re-emitted byte-for-byte.
        reorder_ratio: Probability in [0, 1] that a valid record is swapped with the next
            record of its session.
        malformed_count: Number of malformed records mixed in at random positions (>= 0).
    """

    sessions: int = 100
    pings_per_session: int = 20
    cancel_ratio: float = 0.1
    seed: int = 0
    start_time: datetime = datetime(2025, 7, 19, 12, 0, tzinfo=UTC)
    ping_interval_ms: int = 1000
    interleave: bool = True
    duplicate_ratio: float = 0.0
    reorder_ratio: float = 0.0
    malformed_count: int = 0

    def __post_init__(self) -> None:
        """Validate the knobs; raises ``ValueError`` on nonsense."""
        if self.sessions < 0:
            raise ValueError("sessions must be >= 0")
        if self.pings_per_session < 0:
            raise ValueError("pings_per_session must be >= 0")
        if self.ping_interval_ms < 1:
            raise ValueError("ping_interval_ms must be >= 1")
        if self.malformed_count < 0:
            raise ValueError("malformed_count must be >= 0")
        for name in ("cancel_ratio", "duplicate_ratio", "reorder_ratio"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {value!r}")
        if self.start_time.tzinfo is None or self.start_time.utcoffset() is None:
            raise ValueError("start_time must be timezone-aware")


@dataclass(frozen=True, slots=True)
class SyntheticRecord:
    """One Kafka record, in emission order.

    Attributes:
        key: Session id as ASCII bytes (``None`` for some malformed records).
        value: Message payload bytes.
        kind: ``"valid"`` (first emission of a valid message), ``"duplicate"`` (byte-identical
            re-emission of an earlier valid record) or ``"malformed"``.
        malformed_kind: Set iff ``kind == "malformed"``.
        session_id: Session id for valid/duplicate records, ``None`` for malformed ones.
    """

    key: bytes | None
    value: bytes
    kind: RecordKind
    malformed_kind: MalformedKind | None
    session_id: str | None


@dataclass(frozen=True)
class Expectations:
    """What a correct pipeline must land, computed from the distinct valid messages.

    Attributes:
        messages: Distinct valid messages (unique ``(session_id, timestamp)``).
        gps_pings: Distinct valid messages carrying ``current_lat``/``current_lon``.
        sessions: Distinct session ids among valid messages.
        sessions_started: Sessions with a ``started`` message.
        malformed: Malformed records emitted.
        duplicates: Duplicate records emitted (not counted in ``messages``).
        sessions_completed: Sessions with a ``completed`` message.
        sessions_cancelled: Sessions with a ``cancelled`` message.
    """

    messages: int
    gps_pings: int
    sessions: int
    sessions_started: int
    malformed: int
    duplicates: int
    sessions_completed: int = 0
    sessions_cancelled: int = 0

    def as_dict(self) -> dict[str, int]:
        """Return the counts as a plain JSON-serialisable dict."""
        return asdict(self)


@dataclass(frozen=True)
class GeneratedStream:
    """A fully materialised synthetic stream.

    Attributes:
        records: All records in emission order.
        expected: Counts derived from the valid records.
    """

    records: tuple[SyntheticRecord, ...]
    expected: Expectations

    def valid_messages(self) -> list[dict[str, object]]:
        """Return the distinct valid messages, decoded, in emission order."""
        return [json.loads(r.value) for r in self.records if r.kind == "valid"]


@dataclass(frozen=True, slots=True)
class _Session:
    """Everything drawn for one session, plus precomputed message fragments."""

    index: int
    session_id: str
    key: bytes
    start_ms: int
    planned_pings: int
    en_route: int
    cancelled: bool
    n_messages: int
    prefix: str  # '{"session_id":"..","vehicle_id":"..","order_id":"..","status":"'
    tail: str  # ',"start_lat":..,"start_lon":..,"end_lat":..,"end_lon":..'
    started_tail: str  # tail + current = start + "}"
    arrived_tail: str  # tail + current = end + "}"
    bare_tail: str  # tail + "}"
    lat0: float  # start_lat - _NOISE / 2 (noise is added as random() * _NOISE)
    lon0: float
    step_lat: float  # (end - start) / (planned_pings + 1)
    step_lon: float


def _uuid4(rng: random.Random) -> str:
    """Same string as ``str(uuid.UUID(int=rng.getrandbits(128), version=4))``, ~10x faster."""
    n = rng.getrandbits(128)
    n = (n & _UUID_KEEP) | _UUID_SET  # RFC 4122 variant bits and version 4
    h = f"{n:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _start_ms(config: GeneratorConfig) -> int:
    return (config.start_time - _EPOCH) // _MS


def _plan(config: GeneratorConfig) -> list[_Session]:
    """Draw every per-session decision (ids, route, sizes, start time) up front."""
    rng = random.Random(f"{config.seed}:plan")
    interval = config.ping_interval_ms
    mean = config.pings_per_session
    base_ms = _start_ms(config)
    span_ms = max(1, (mean + 3) * interval * math.ceil(max(1, config.sessions) / _MAX_CONCURRENT))
    seen: set[str] = set()
    cursor = base_ms
    sessions: list[_Session] = []
    for index in range(config.sessions):
        session_id = _uuid4(rng)
        while session_id in seen:  # astronomically unlikely, but keep ids distinct
            session_id = _uuid4(rng)
        seen.add(session_id)
        vehicle_id = _uuid4(rng)
        order_id = _uuid4(rng)
        slat = round(rng.uniform(_LAT_MIN, _LAT_MAX), 6)
        slon = round(rng.uniform(_LON_MIN, _LON_MAX), 6)
        elat = round(rng.uniform(_LAT_MIN, _LAT_MAX), 6)
        elon = round(rng.uniform(_LON_MIN, _LON_MAX), 6)
        planned = max(1, round(rng.gauss(mean, mean / 4))) if mean > 0 else 0
        cancelled = rng.random() < config.cancel_ratio
        en_route = rng.randint(0, max(0, (planned - 1) // 2)) if cancelled else planned
        offset = rng.randrange(span_ms)
        start = base_ms + offset if config.interleave else cursor
        tail = (
            f',"start_lat":{slat:.6f},"start_lon":{slon:.6f}'
            f',"end_lat":{elat:.6f},"end_lon":{elon:.6f}'
        )
        session = _Session(
            index=index,
            session_id=session_id,
            key=session_id.encode("ascii"),
            start_ms=start,
            planned_pings=planned,
            en_route=en_route,
            cancelled=cancelled,
            n_messages=en_route + (2 if cancelled else 3),
            prefix=(
                f'{{"session_id":"{session_id}","vehicle_id":"{vehicle_id}",'
                f'"order_id":"{order_id}","status":"'
            ),
            tail=tail,
            started_tail=f'{tail},"current_lat":{slat:.6f},"current_lon":{slon:.6f}}}',
            arrived_tail=f'{tail},"current_lat":{elat:.6f},"current_lon":{elon:.6f}}}',
            bare_tail=tail + "}",
            lat0=slat - _NOISE / 2,
            lon0=slon - _NOISE / 2,
            step_lat=(elat - slat) / (planned + 1),
            step_lon=(elon - slon) / (planned + 1),
        )
        cursor = start + session.n_messages * interval
        sessions.append(session)
    return sessions


class _SecondPrefixes(dict[int, str]):
    """Cache ``epoch second -> 'YYYY-MM-DDTHH:MM:SS'``; missing keys are filled on lookup."""

    def __missing__(self, sec: int) -> str:
        prefix = self[sec] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
        return prefix

    def format(self, ms: int) -> str:
        """Format ``ms`` since the epoch as ISO-8601 UTC with milliseconds and ``Z``."""
        return f"{self[ms // 1000]}.{ms % 1000:03d}Z"


def _malformed(
    kind: MalformedKind,
    rng: random.Random,
    config: GeneratorConfig,
    taken: set[str],
    secs: _SecondPrefixes,
) -> SyntheticRecord:
    """Build one malformed record of ``kind`` around a fabricated (unused) session id."""
    session_id = _uuid4(rng)
    while session_id in taken:
        session_id = _uuid4(rng)
    status = rng.choice(("started", "en_route", "arrived"))
    ts_ms = _start_ms(config) + rng.randrange(max(1, config.pings_per_session + 3)) * (
        config.ping_interval_ms
    )
    template: dict[str, object] = {
        "session_id": session_id,
        "vehicle_id": _uuid4(rng),
        "order_id": _uuid4(rng),
        "status": status,
        "timestamp": secs.format(ts_ms),
        "start_lat": round(rng.uniform(_LAT_MIN, _LAT_MAX), 6),
        "start_lon": round(rng.uniform(_LON_MIN, _LON_MAX), 6),
        "end_lat": round(rng.uniform(_LAT_MIN, _LAT_MAX), 6),
        "end_lon": round(rng.uniform(_LON_MIN, _LON_MAX), 6),
        "current_lat": round(rng.uniform(_LAT_MIN, _LAT_MAX), 6),
        "current_lon": round(rng.uniform(_LON_MIN, _LON_MAX), 6),
    }
    key: bytes | None = session_id.encode("ascii")

    def dump() -> bytes:
        return json.dumps(template, separators=(",", ":")).encode("utf-8")

    if kind is MalformedKind.NOT_JSON:
        key = None
        variant = rng.randrange(3)
        if variant == 0:  # truncated object: any strict prefix of an object is invalid JSON
            full = dump()
            value = full[: rng.randrange(1, len(full) // 2)]
        elif variant == 1:
            value = f"session_id={session_id};status={status};ts={template['timestamp']}".encode()
        else:
            value = repr(template).encode("utf-8")  # single-quoted Python dict
    elif kind is MalformedKind.MISSING_FIELD:
        del template[rng.choice(REQUIRED_FIELDS)]
        value = dump()
    elif kind is MalformedKind.BAD_UUID:
        field = rng.choice(("session_id", "vehicle_id", "order_id"))
        good = str(template[field])
        template[field] = rng.choice(
            ("not-a-uuid", good[:-4], good[:-1] + "g", good.replace("-", "_"), "")
        )
        value = dump()
    elif kind is MalformedKind.OUT_OF_RANGE_COORDINATE:
        field = rng.choice(
            ("start_lat", "start_lon", "end_lat", "end_lon", "current_lat", "current_lon")
        )
        limit = 90.0 if field.endswith("_lat") else 180.0
        sign = rng.choice((1.0, -1.0))
        template[field] = round(sign * (limit + rng.uniform(0.5, limit)), 6)
        value = dump()
    elif kind is MalformedKind.BAD_TIMESTAMP:
        good = str(template["timestamp"])
        template["timestamp"] = rng.choice(
            (
                good[:-1],  # naive: no timezone
                "2025-02-30T12:00:00.000Z",
                "2025-07-19T25:61:00.000Z",
                "not-a-timestamp",
                "19/07/2025 12:34:56",
            )
        )
        value = dump()
    else:  # NON_UTF8: latin-1 / stray 0xFF bytes inside the status string
        key = None
        raw = dump()
        needle = f'"status":"{status}'.encode("ascii")
        value = raw.replace(needle, needle + rng.choice((b"\xff", b"\xe9", b"\xc3\x28")), 1)
    return SyntheticRecord(key, value, "malformed", kind, None)


def _session_values(
    s: _Session, interval: int, noise: Callable[[], float], secs: _SecondPrefixes
) -> list[bytes]:
    """Encode every message of session ``s`` in lifecycle order (index = message index)."""
    t0 = s.start_ms
    prefix = s.prefix
    fmt = secs.format
    values = [f'{prefix}started","timestamp":"{fmt(t0)}"{s.started_tail}'.encode()]
    head = f'{prefix}en_route","timestamp":"'
    tail = f'Z"{s.tail},"current_lat":'
    lat0, lon0, step_lat, step_lon = s.lat0, s.lon0, s.step_lat, s.step_lon
    n = s.en_route
    values += [
        f"{head}{secs[t // 1000]}.{t % 1000:03d}{tail}"
        f'{lat0 + step_lat * j + noise() * _NOISE:.6f},"current_lon":'
        f"{lon0 + step_lon * j + noise() * _NOISE:.6f}}}".encode()
        for j, t in zip(
            range(1, n + 1), range(t0 + interval, t0 + (n + 1) * interval, interval), strict=True
        )
    ]
    t = t0 + (n + 1) * interval
    if s.cancelled:
        values.append(f'{prefix}cancelled","timestamp":"{fmt(t)}"{s.bare_tail}'.encode())
    else:
        values.append(f'{prefix}arrived","timestamp":"{fmt(t)}"{s.arrived_tail}'.encode())
        t += interval
        values.append(f'{prefix}completed","timestamp":"{fmt(t)}"{s.bare_tail}'.encode())
    return values


def _exhausted() -> bytes:
    raise AssertionError("session is not active")  # pragma: no cover - internal invariant


def iter_records(config: GeneratorConfig) -> Iterator[SyntheticRecord]:
    """Stream the records of ``config`` in emission order (same as ``generate().records``).

    Valid messages are emitted ordered by ``(timestamp, session)`` (before faults). Memory is
    proportional to the sessions active at a time, not to the total message count.
    """
    sessions = _plan(config)
    n_sessions = len(sessions)
    interval = config.ping_interval_ms
    secs = _SecondPrefixes()
    noise = random.Random(f"{config.seed}:noise").random
    reorder_rng = random.Random(f"{config.seed}:reorder")
    dup_rng = random.Random(f"{config.seed}:duplicate")
    mal_rng = random.Random(f"{config.seed}:malformed")
    reorder_ratio = config.reorder_ratio
    dup_ratio = config.duplicate_ratio
    record_cls = SyntheticRecord

    total_valid = sum(s.n_messages for s in sessions)
    mal_positions = sorted(
        mal_rng.randrange(total_valid + 1) for _ in range(config.malformed_count)
    )
    taken = {s.session_id for s in sessions} if mal_positions else set()
    mal_i = 0
    next_mal = mal_positions[0] if mal_positions else -1  # -1: never equals `generated`
    generated = 0

    held: dict[int, SyntheticRecord] = {}  # session index -> record waiting for its successor
    pending: dict[int, list[SyntheticRecord]] = {}  # emitted-count -> duplicates due then
    emitted = 0
    faults = bool(reorder_ratio or dup_ratio)

    # Events are produced window by window: every session whose start falls before the end
    # of the window is "activated" (all its values encoded at once), the window's events are
    # keyed as (timestamp - base) * n_sessions + session_index and sorted, then emitted.
    by_start = sorted(sessions, key=lambda s: (s.start_ms, s.index))
    base = by_start[0].start_ms if by_start else 0  # keys are relative: smaller ints sort faster
    last_ts = [s.start_ms - base + (s.n_messages - 1) * interval for s in sessions]
    keys_b = [s.key for s in sessions]
    ids = [s.session_id for s in sessions]
    # While a session is active: returns its next encoded value (values are consumed in order).
    next_of: list[Callable[[], bytes]] = [_exhausted] * n_sessions
    window = interval * 64
    stride = interval * n_sessions
    ptr = 0
    active: list[_Session] = []
    w0 = by_start[0].start_ms if by_start else 0
    while ptr < n_sessions or active:
        if not active:
            w0 = max(w0, by_start[ptr].start_ms)  # skip idle gaps
        w1 = w0 + window
        while ptr < n_sessions and by_start[ptr].start_ms < w1:
            s = by_start[ptr]
            if len(secs) > 65536:
                secs.clear()
            next_of[s.index] = iter(_session_values(s, interval, noise, secs)).__next__
            active.append(s)
            ptr += 1
        keys: list[int] = []
        still_active: list[_Session] = []
        finished: list[int] = []
        for s in active:
            start = s.start_ms
            j_lo = max(0, -((start - w0) // interval))
            j_hi = min(s.n_messages, -((start - w1) // interval))
            if j_lo < j_hi:
                first = (start - base + j_lo * interval) * n_sessions + s.index
                keys.extend(range(first, first + (j_hi - j_lo) * stride, stride))
            if j_hi < s.n_messages:
                still_active.append(s)
            else:
                finished.append(s.index)
        keys.sort()

        for key in keys:
            index = key % n_sessions
            while generated == next_mal:
                yield _malformed(
                    _MALFORMED_CYCLE[mal_i % len(_MALFORMED_CYCLE)], mal_rng, config, taken, secs
                )
                mal_i += 1
                next_mal = mal_positions[mal_i] if mal_i < len(mal_positions) else -1
            generated += 1
            record = record_cls(keys_b[index], next_of[index](), "valid", None, ids[index])
            if not faults:
                yield record
                continue

            out: tuple[SyntheticRecord, ...] = (record,)
            if reorder_ratio:
                # Reorder fault: hold a record back until the next record of the same
                # session, then emit that successor first.
                before = held.pop(index, None) if held else None
                if before is not None:
                    out = (record, before)
                elif key // n_sessions < last_ts[index] and reorder_rng.random() < reorder_ratio:
                    held[index] = record
                    continue
            for r in out:
                yield r
                if dup_ratio:
                    emitted += 1
                    if dup_rng.random() < dup_ratio:
                        due = emitted + dup_rng.randint(0, _DUP_MAX_DELAY)
                        dup = record_cls(r.key, r.value, "duplicate", None, r.session_id)
                        pending.setdefault(due, []).append(dup)
                    if pending:
                        due_now = pending.pop(emitted, None)
                        if due_now:
                            yield from due_now

        for index in finished:
            next_of[index] = _exhausted  # release the encoded values of completed sessions
        active = still_active
        w0 = w1

    while mal_i < len(mal_positions):
        yield _malformed(
            _MALFORMED_CYCLE[mal_i % len(_MALFORMED_CYCLE)], mal_rng, config, taken, secs
        )
        mal_i += 1
    for due in sorted(pending):
        yield from pending[due]


def generate(config: GeneratorConfig) -> GeneratedStream:
    """Materialise ``iter_records(config)`` and compute its :class:`Expectations`."""
    # The records hold no reference cycles; pausing the cyclic GC while allocating millions of
    # small objects avoids repeated full-heap scans (roughly 20-30% of the run time).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        records = tuple(iter_records(config))
    finally:
        if gc_was_enabled:
            gc.enable()
    messages = gps = started = completed = cancelled = malformed = duplicates = 0
    session_ids: set[str | None] = set()
    for r in records:
        kind = r.kind
        if kind == "valid":
            messages += 1
            session_ids.add(r.session_id)
            value = r.value
            if b'"current_lat"' in value:
                gps += 1
                if b'"status":"started"' in value:
                    started += 1
            elif b'"status":"completed"' in value:
                completed += 1
            elif b'"status":"cancelled"' in value:
                cancelled += 1
        elif kind == "duplicate":
            duplicates += 1
        else:
            malformed += 1
    expected = Expectations(
        messages=messages,
        gps_pings=gps,
        sessions=len(session_ids),
        sessions_started=started,
        malformed=malformed,
        duplicates=duplicates,
        sessions_completed=completed,
        sessions_cancelled=cancelled,
    )
    return GeneratedStream(records=records, expected=expected)


_TIMESTAMP_FIELD: Final = b'"timestamp":"'
_TIMESTAMP_LEN: Final = len("2025-07-19T12:34:56.789Z")
_LIVE_SECONDS: Final = _SecondPrefixes()


def restamp(record: SyntheticRecord, epoch_ms: int) -> SyntheticRecord:
    """``record`` with its ``timestamp`` set to ``epoch_ms`` (milliseconds since the epoch, UTC),
    in the generator's format; the rest of the value is unchanged. A record without a timestamp
    in that format (most malformed ones) is returned as it is."""
    value = record.value
    start = value.find(_TIMESTAMP_FIELD) + len(_TIMESTAMP_FIELD)
    end = start + _TIMESTAMP_LEN
    if start < len(_TIMESTAMP_FIELD) or value[end - 1 : end + 1] != b'Z"':
        return record
    if len(_LIVE_SECONDS) > 65536:
        _LIVE_SECONDS.clear()
    stamp = _LIVE_SECONDS.format(epoch_ms).encode("ascii")
    return SyntheticRecord(
        record.key,
        value[:start] + stamp + value[end:],
        record.kind,
        record.malformed_kind,
        record.session_id,
    )


def stamp_when_pulled(
    records: Iterable[SyntheticRecord], clock: Callable[[], float] = time.time
) -> Iterator[SyntheticRecord]:
    """``records``, each restamped with ``clock()`` (seconds) when it is pulled from this
    iterator, so that a producer pulling records just before sending them stamps them with the
    produce time. Within a session (a record key) timestamps stay strictly increasing: a record
    that would repeat its session's last millisecond gets the next one."""
    last: dict[bytes | None, int] = {}
    for record in records:
        epoch_ms = int(clock() * 1000)
        if record.key is not None:
            epoch_ms = max(epoch_ms, last.get(record.key, -1) + 1)
            last[record.key] = epoch_ms
        yield restamp(record, epoch_ms)
