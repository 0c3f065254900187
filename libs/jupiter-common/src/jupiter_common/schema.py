"""The session message as vehicles send it: one JSON object per Kafka record.

This is the contract at Jupiter's input edge. Validation is strict where a wrong value would
land wrong data (ids, coordinates, timestamps) and lenient where it costs nothing (unknown extra
fields are ignored, so producers can add fields without breaking the jobs).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Final
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

STATUS_PATTERN: Final = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
"""A status is a token: a letter, then letters, digits, `_`, `.` or `-`; at most 64 characters."""

Latitude = Annotated[float, Field(ge=-90.0, le=90.0, allow_inf_nan=False, strict=True)]
Longitude = Annotated[float, Field(ge=-180.0, le=180.0, allow_inf_nan=False, strict=True)]

EARLIEST: Final = datetime(2000, 1, 1, tzinfo=UTC)
LATEST: Final = datetime(2100, 1, 1, tzinfo=UTC)
"""Timestamps outside [EARLIEST, LATEST) are refused: a clock reset or a corrupt value would
otherwise scatter one batch over many monthly partitions (ClickHouse refuses the insert) or
outrank real data in ``sessions_base``'s earliest-wins rule."""

ECHO_CHARS: Final = 64
"""A rejection message quotes a refused value only up to this many characters: enough to
recognise it, and a 1 MB value does not make a 1 MB message (see ``dead_letter``)."""

UUID_FIELDS: Final = ("session_id", "vehicle_id", "order_id")
INCOMPLETE_POSITION_ERROR: Final = "incomplete_position"
"""The error type of a message with only one of ``current_lat``/``current_lon``."""

COORDINATE_FIELDS: Final = (
    "start_lat",
    "start_lon",
    "end_lat",
    "end_lon",
    "current_lat",
    "current_lon",
)


class SessionMessage(BaseModel):
    """One session message, validated and normalised.

    - ids are UUIDs (any RFC 4122 spelling; kept as :class:`uuid.UUID`);
    - ``timestamp`` is an ISO-8601 string with ``Z`` or an explicit offset, normalised to UTC
      and truncated to millisecond precision (ClickHouse stores ``DateTime64(3, 'UTC')``), in
      [2000-01-01, 2100-01-01);
    - coordinates are JSON numbers in range (lat in [-90, 90], lon in [-180, 180]);
    - ``current_lat``/``current_lon`` come together or not at all: a message with both is a
      GPS ping, a message with neither is a status message.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    session_id: UUID
    vehicle_id: UUID
    order_id: UUID
    status: str
    timestamp: datetime
    start_lat: Latitude
    start_lon: Longitude
    end_lat: Latitude
    end_lon: Longitude
    current_lat: Latitude | None = None
    current_lon: Longitude | None = None

    @field_validator("status", mode="before")
    @classmethod
    def _status_is_token(cls, value: Any) -> str:
        if not isinstance(value, str) or not STATUS_PATTERN.fullmatch(value):
            raise ValueError(
                "status must be a non-empty token: a letter, then letters, digits, '_', '.' or '-'"
                " (at most 64 characters)"
            )
        return value

    @field_validator("timestamp", mode="before")
    @classmethod
    def _timestamp_is_iso_with_zone(cls, value: Any) -> datetime:
        if not isinstance(value, str):
            raise ValueError("timestamp must be an ISO-8601 string")
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"timestamp {shown(value)} is not ISO-8601") from None
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            raise ValueError(f"timestamp {shown(value)} has no time zone; use 'Z' or an offset")
        try:
            utc = parsed.astimezone(UTC)
        except OverflowError:
            raise ValueError(f"timestamp {shown(value)} is out of range in UTC") from None
        if not EARLIEST <= utc < LATEST:
            raise ValueError(
                f"timestamp {shown(value)} is outside"
                f" {EARLIEST.year}-01-01 .. {LATEST.year}-01-01 UTC"
            )
        return utc.replace(microsecond=utc.microsecond // 1000 * 1000)

    @model_validator(mode="after")
    def _position_is_complete(self) -> SessionMessage:
        if (self.current_lat is None) != (self.current_lon is None):
            raise PydanticCustomError(
                INCOMPLETE_POSITION_ERROR, "current_lat and current_lon must be given together"
            )
        return self

    @property
    def is_ping(self) -> bool:
        """True when the message carries a GPS position."""
        return self.current_lat is not None

    @property
    def timestamp_ms(self) -> int:
        """Milliseconds since the Unix epoch, UTC."""
        return _epoch_ms(self.timestamp)


def shown(value: str) -> str:
    """``value`` quoted for a message (``repr``) in at most :data:`ECHO_CHARS` characters plus
    quotes; a longer value is cut (an escaped character such as ``\\x01`` counts as its four)
    and followed by its length."""
    prefix = value[:ECHO_CHARS]
    while len(repr(prefix)) > ECHO_CHARS + 2:
        prefix = prefix[: len(prefix) // 2]
    if len(prefix) == len(value):
        return repr(value)
    return f"{prefix!r}... ({len(value):,} characters)"


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def _epoch_ms(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000
