"""Expected table contents, computed straight from the produced records by the semantics the
README states. Deliberately simple and independent of the jobs' code."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from support import Produced

from jupiter_common.parsing import parse_session
from jupiter_common.schema import SessionMessage


def valid_messages(produced: list[Produced]) -> list[tuple[dict[str, Any], Produced]]:
    """Records that are valid messages, with their Kafka coordinates, in production order.
    Validity itself is the parser's contract (tested on its own); the semantics here are not."""
    out = []
    for record in produced:
        if isinstance(parse_session(record.value), SessionMessage):
            out.append((json.loads(record.value), record))
    return out


def epoch_ms(body: dict[str, Any]) -> int:
    moment = datetime.fromisoformat(body["timestamp"]).astimezone(UTC)
    return int(moment.timestamp() * 1000)


def expected_headers(produced: list[Produced]) -> list[tuple[Any, ...]]:
    """sessions_base: the first started of each session."""
    headers: dict[str, tuple[Any, ...]] = {}
    for body, record in valid_messages(produced):
        if body["status"] == "started" and body["session_id"] not in headers:
            headers[body["session_id"]] = (
                body["session_id"],
                body["vehicle_id"],
                body["order_id"],
                epoch_ms(body),
                body["start_lat"],
                body["start_lon"],
                body["end_lat"],
                body["end_lon"],
                record.partition,
                record.offset,
            )
    return sorted(headers.values())


def expected_events(produced: list[Produced]) -> list[tuple[Any, ...]]:
    """session_events: per session, in arrival order, each status differing from the last
    non-duplicate message's; a duplicate is a repeat of (timestamp, status)."""
    last: dict[str, str] = {}
    seen: set[tuple[str, int, str]] = set()
    rows = []
    for body, record in valid_messages(produced):
        session, status, ts = body["session_id"], body["status"], epoch_ms(body)
        if (session, ts, status) in seen:
            continue
        seen.add((session, ts, status))
        if last.get(session) == status:
            continue
        rows.append(
            (
                session,
                body["vehicle_id"],
                body["order_id"],
                ts,
                status,
                last.get(session, ""),
                body.get("current_lat"),
                body.get("current_lon"),
                record.partition,
                record.offset,
            )
        )
        last[session] = status
    return sorted(rows)


HEADER_SQL = (
    "SELECT toString(session_id), toString(vehicle_id), toString(order_id),"
    " toUnixTimestamp64Milli(started_at), start_lat, start_lon, end_lat, end_lon,"
    " source_partition, source_offset FROM sessions_base FINAL ORDER BY 1"
)
EVENTS_SQL = (
    "SELECT toString(session_id), toString(vehicle_id), toString(order_id),"
    " toUnixTimestamp64Milli(timestamp), status, previous_status, lat, lon,"
    " source_partition, source_offset FROM session_events FINAL"
    " ORDER BY 1, 2, 3, 4, 5, 6, 9, 10"
)


def expected_movements(produced: list[Produced]) -> list[tuple[Any, ...]]:
    """session_movements: one row per (session, timestamp) ping; of copies, the last offset."""
    latest: dict[tuple[str, int], tuple[Any, ...]] = {}
    for body, record in valid_messages(produced):
        if body.get("current_lat") is None:
            continue
        key = (body["session_id"], epoch_ms(body))
        row = (
            body["session_id"], body["vehicle_id"], body["order_id"], key[1], body["status"],
            body["current_lat"], body["current_lon"], record.partition, record.offset,
        )  # fmt: skip
        if key not in latest or latest[key][-1] < record.offset:
            latest[key] = row
    return sorted(latest.values())


MOVEMENTS_SQL = (
    "SELECT toString(session_id), toString(vehicle_id), toString(order_id),"
    " toUnixTimestamp64Milli(timestamp), status, lat, lon, source_partition, source_offset"
    " FROM session_movements FINAL ORDER BY 1, 4, 2, 3, 5, 6, 7, 8, 9"
)


def plain(sql: str) -> str:
    """``sql`` without ``FINAL``: what a plain query sees before ClickHouse merges."""
    assert " FINAL" in sql
    return sql.replace(" FINAL", "")
