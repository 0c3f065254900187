"""movements-job end to end: the real Kafka broker, real PyFlink, the real ClickHouse engine.

The stream mixes interleaved sessions, an exact duplicate, a ping sent out of timestamp order, a
timestamp with a non-UTC offset, status messages without a position, and one record of each
malformed kind. The test asserts the exact rows of ``session_movements`` and the exact
dead-letter records.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from oracle import MOVEMENTS_SQL, expected_movements
from support import consume_all, job_environment, produce, query, run_job, unique

from jupiter_common.dead_letter import DeadLetter

pytestmark = pytest.mark.e2e

T0 = datetime(2025, 7, 19, 12, 0, tzinfo=UTC)
SESSIONS = {
    "a": ("5f1b1f0e-8f3a-4c1e-9d3a-0b7f6e2d1a01", "a1b2c3d4-e5f6-4a8b-9c0d-1e2f3a4b5c6d"),
    "b": ("5f1b1f0e-8f3a-4c1e-9d3a-0b7f6e2d1a02", "a1b2c3d4-e5f6-4a8b-9c0d-1e2f3a4b5c6e"),
    "c": ("5f1b1f0e-8f3a-4c1e-9d3a-0b7f6e2d1a03", "a1b2c3d4-e5f6-4a8b-9c0d-1e2f3a4b5c6f"),
}
ORDER_ID = "c1d2e3f4-a5b6-4c8d-9e0f-1a2b3c4d5e6f"


def message(
    session: str, status: str, seconds: int, position: tuple[float, float] | None, tz: str = "Z"
) -> dict[str, Any]:
    session_id, vehicle_id = SESSIONS[session]
    moment = T0 + timedelta(seconds=seconds)
    if tz == "Z":
        stamp = moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    else:
        stamp = moment.astimezone(datetime.strptime(tz, "%z").tzinfo).isoformat(
            timespec="milliseconds"
        )
    body: dict[str, Any] = {
        "session_id": session_id,
        "vehicle_id": vehicle_id,
        "order_id": ORDER_ID,
        "status": status,
        "timestamp": stamp,
        "start_lat": 40.75,
        "start_lon": -73.98,
        "end_lat": 40.76,
        "end_lon": -73.99,
        "extra_field": "ignored",
    }
    if position is not None:
        body["current_lat"], body["current_lon"] = position
    return body


def encode(body: dict[str, Any]) -> tuple[bytes, bytes]:
    return str(body["session_id"]).encode(), json.dumps(body).encode()


MALFORMED: list[tuple[str, str | None, bytes]] = [
    ("not_json", None, b"{this is not json"),
    (
        "missing_field",
        "vehicle_id",
        json.dumps(
            {
                k: v
                for k, v in message("a", "en_route", 99, (40.7, -73.9)).items()
                if k != "vehicle_id"
            }
        ).encode(),
    ),
    (
        "bad_uuid",
        "order_id",
        json.dumps(
            {**message("b", "en_route", 99, (40.7, -73.9)), "order_id": "not-a-uuid"}
        ).encode(),
    ),
    (
        "bad_coordinate",
        "current_lat",
        json.dumps({**message("c", "en_route", 99, (40.7, -73.9)), "current_lat": 123.4}).encode(),
    ),
    (
        "bad_timestamp",
        "timestamp",
        json.dumps(
            {**message("a", "en_route", 98, (40.7, -73.9)), "timestamp": "2025-07-19 12:00:00"}
        ).encode(),
    ),
    ("not_utf8", None, b'{"session_id": "\xff\xfe"}'),
]


def the_stream() -> list[tuple[bytes | None, bytes]]:
    a = [message("a", "started", 0, (40.75, -73.98))] + [
        message("a", "en_route", 10 * i, (40.75 + i / 1000, -73.98 - i / 1000)) for i in (1, 2, 3)
    ]
    b = [message("b", "started", 5, (40.70, -73.90))] + [
        message("b", "en_route", 5 + 10 * i, (40.70 + i / 1000, -73.90)) for i in (1, 2, 3)
    ]
    c = [message("c", "started", 7, (40.72, -73.95), tz="+02:00")] + [
        message("c", "en_route", 7 + 10 * i, (40.72, -73.95 + i / 1000), tz="-05:30")
        for i in (1, 2)
    ]
    stream: list[tuple[bytes | None, bytes]] = []
    # Interleave the three sessions message by message.
    for i in range(4):
        for session in (a, b, c):
            if i < len(session):
                stream.append(encode(session[i]))
    stream[5], stream[8] = stream[8], stream[5]  # c sends its 2nd ping before its 1st
    stream.append(encode(a[2]))  # an exact duplicate, later in the stream
    stream.append(encode(message("a", "arrived", 40, (40.76, -73.99))))
    stream.append(encode(message("a", "completed", 41, None)))  # no position: no movement
    stream.append(encode(message("b", "cancelled", 40, None)))
    for i, (_, _, raw) in enumerate(MALFORMED):
        stream.insert(3 + 2 * i, (None, raw))
    return stream


def test_movements_job_lands_exact_rows_and_dead_letters(
    kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = new_topic("sessions", partitions=2)
    dead_letter_topic = new_topic("dead-letter", partitions=1)
    produced = produce(kafka_bootstrap, topic, the_stream())
    store = tmp_path / "store"
    env = job_environment(
        kafka_bootstrap,
        topic,
        store,
        tmp_path / "checkpoints",
        DEAD_LETTER_TOPIC=dead_letter_topic,
        KAFKA_CONSUMER_GROUP=unique("movements"),
        SINK_BATCH_SIZE="4",
    )

    run_job("jupiter_movements", env)

    rows = query(store, MOVEMENTS_SQL)
    expected = expected_movements(produced)
    assert len(expected) == 4 + 4 + 3 + 1  # a: started+3 pings+arrived, b: 4, c: 3, dup collapsed
    assert rows == expected

    dead = [DeadLetter.from_json(r.value) for r in consume_all(kafka_bootstrap, dead_letter_topic)]
    by_payload = {r.value: r for r in produced}
    got = sorted((d.reason, d.field, d.partition, d.offset, d.payload) for d in dead)
    want = sorted(
        (reason, field, by_payload[raw].partition, by_payload[raw].offset, raw)
        for reason, field, raw in MALFORMED
    )
    assert got == want
    assert {(d.job, d.topic) for d in dead} == {("movements", topic)}
    for d in dead:
        assert base64.b64decode(d.payload_base64) == d.payload
        assert d.payload_text == (None if d.reason == "not_utf8" else d.payload.decode())
