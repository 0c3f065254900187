"""The generator's vocabulary: the message fields and statuses, the kinds of malformed records,
the configuration, a record, and the counts a stream is expected to produce; plus the shared
pieces of encoding (uuid4 from a seeded random stream, timestamps in the generator's format)."""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Final, Literal

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


def _uuid4(rng: random.Random) -> str:
    """Same string as ``str(uuid.UUID(int=rng.getrandbits(128), version=4))``, ~10x faster."""
    n = rng.getrandbits(128)
    n = (n & _UUID_KEEP) | _UUID_SET  # RFC 4122 variant bits and version 4
    h = f"{n:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _start_ms(config: GeneratorConfig) -> int:
    return (config.start_time - _EPOCH) // _MS


class _SecondPrefixes(dict[int, str]):
    """Cache ``epoch second -> 'YYYY-MM-DDTHH:MM:SS'``; missing keys are filled on lookup."""

    def __missing__(self, sec: int) -> str:
        prefix = self[sec] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
        return prefix

    def format(self, ms: int) -> str:
        """Format ``ms`` since the epoch as ISO-8601 UTC with milliseconds and ``Z``."""
        return f"{self[ms // 1000]}.{ms % 1000:03d}Z"
