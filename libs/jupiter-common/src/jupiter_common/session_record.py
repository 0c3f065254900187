"""The compact form of a valid message that the stateful jobs key by session and keep.

Stateful jobs move every valid message through a keyed shuffle; a named tuple of plain values
pickles small and fast, where the pydantic model would not.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from jupiter_common.dead_letter import SourceRecord
from jupiter_common.schema import SessionMessage


class SessionRecord(NamedTuple):
    session_id: str
    vehicle_id: str
    order_id: str
    status: str
    timestamp_ms: int
    start_lat: float
    start_lon: float
    end_lat: float
    end_lon: float
    current_lat: float | None
    current_lon: float | None
    partition: int
    offset: int


def session_records(message: SessionMessage, source: SourceRecord) -> Iterator[SessionRecord]:
    """A :data:`~jupiter_common.flink.router.RowMapper`: every valid message, as one record."""
    yield SessionRecord(
        str(message.session_id),
        str(message.vehicle_id),
        str(message.order_id),
        message.status,
        message.timestamp_ms,
        message.start_lat,
        message.start_lon,
        message.end_lat,
        message.end_lon,
        message.current_lat,
        message.current_lon,
        source.partition,
        source.offset,
    )
