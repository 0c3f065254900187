"""base-job and events-job end to end: the real Kafka broker, real PyFlink, the real
ClickHouse engine (chDB), on a hand-built stream whose every tricky case is named.

Each test asserts the exact rows of the job's table and the exact dead-letter records.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from oracle import EVENTS_SQL, HEADER_SQL
from support import Produced, consume_all, job_environment, produce, query, run_job, unique

from jupiter_common.dead_letter import DeadLetter

pytestmark = pytest.mark.e2e

T0 = datetime(2025, 7, 19, 8, 0, tzinfo=UTC)
ORDER = "c1d2e3f4-a5b6-4c8d-9e0f-1a2b3c4d5e6f"


def sid(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def vid(n: int) -> str:
    return f"11111111-0000-4000-8000-{n:012d}"


def msg(session: int, status: str, second: int, ping: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "session_id": sid(session),
        "vehicle_id": vid(session),
        "order_id": ORDER,
        "status": status,
        "timestamp": (T0 + timedelta(seconds=second)).isoformat().replace("+00:00", "Z"),
        "start_lat": 40.70 + session / 100,
        "start_lon": -73.90,
        "end_lat": 40.80,
        "end_lon": -73.99 + session / 100,
    }
    if ping:
        body["current_lat"] = 40.70 + second / 10_000
        body["current_lon"] = -73.90 - session / 1000
    return body


# label -> message; the stream below sends them (some twice) in a chosen order.
M: dict[str, dict[str, Any]] = {
    # s1: pings, a late exact duplicate, a second `started` after other statuses.
    "s1.started": msg(1, "started", 0),
    "s1.en1": msg(1, "en_route", 10),
    "s1.en2": msg(1, "en_route", 20),
    "s1.restarted": msg(1, "started", 30),
    "s1.arrived": msg(1, "arrived", 40),
    "s1.completed": msg(1, "completed", 41, ping=False),
    # s2: flip-flop en_route -> arrived -> en_route, an adjacent duplicate of `started`.
    "s2.started": msg(2, "started", 3),
    "s2.en1": msg(2, "en_route", 13),
    "s2.arrived1": msg(2, "arrived", 23),
    "s2.en2": msg(2, "en_route", 33),
    "s2.arrived2": msg(2, "arrived", 43),
    "s2.completed": msg(2, "completed", 44, ping=False),
    # s3: never sends `started`.
    "s3.en1": msg(3, "en_route", 5),
    "s3.en2": msg(3, "en_route", 15),
    "s3.cancelled": msg(3, "cancelled", 25, ping=False),
    # s4: timestamps out of order (arrival order rules).
    "s4.started": msg(4, "started", 10),
    "s4.en_early": msg(4, "en_route", 5),
    "s4.en_late": msg(4, "en_route", 20),
    "s4.arrived": msg(4, "arrived", 15),
}

STREAM = [
    "s1.started", "s2.started", "s2.started", "s3.en1", "s1.en1", "s4.started", "s2.en1",
    "s4.en_early", "s1.en2", "s3.en2", "s1.en1", "s2.arrived1", "s4.en_late", "s1.restarted",
    "s2.en2", "s4.arrived", "s3.cancelled", "s1.arrived", "s2.arrived2", "s1.completed",
    "s2.completed", "s1.started",
]  # fmt: skip

EXPECTED_HEADERS = ["s1.started", "s2.started", "s4.started"]
# (label, previous status) of each expected event row.
EXPECTED_EVENTS = [
    ("s1.started", ""), ("s1.en1", "started"), ("s1.restarted", "en_route"),
    ("s1.arrived", "started"), ("s1.completed", "arrived"),
    ("s2.started", ""), ("s2.en1", "started"), ("s2.arrived1", "en_route"),
    ("s2.en2", "arrived"), ("s2.arrived2", "en_route"), ("s2.completed", "arrived"),
    ("s3.en1", ""), ("s3.cancelled", "en_route"),
    ("s4.started", ""), ("s4.en_early", "started"), ("s4.arrived", "en_route"),
]  # fmt: skip

MALFORMED: list[tuple[str, str | None, bytes]] = [
    ("not_json", None, b"<session>not json</session>"),
    ("missing_field", "status", json.dumps({k: v for k, v in M["s1.en1"].items() if k != "status"}).encode()),
    ("bad_uuid", "session_id", json.dumps({**M["s2.en1"], "session_id": "123"}).encode()),
    ("bad_coordinate", "end_lon", json.dumps({**M["s3.en1"], "end_lon": -181}).encode()),
    ("bad_timestamp", "timestamp", json.dumps({**M["s4.arrived"], "timestamp": "yesterday"}).encode()),
    ("not_utf8", None, b"\xc3\x28 invalid utf-8"),
]  # fmt: skip


def records() -> list[tuple[bytes | None, bytes]]:
    out: list[tuple[bytes | None, bytes]] = [
        (M[label]["session_id"].encode(), json.dumps(M[label]).encode()) for label in STREAM
    ]
    for i, (_, _, raw) in enumerate(MALFORMED):
        out.insert(2 + 3 * i, (None, raw))
    return out


def first_coordinates(produced: list[Produced]) -> dict[bytes, Produced]:
    first: dict[bytes, Produced] = {}
    for record in produced:
        first.setdefault(record.value, record)
    return first


def ms(body: dict[str, Any]) -> int:
    return int(datetime.fromisoformat(body["timestamp"]).timestamp() * 1000)


def header(label: str, at: dict[bytes, Produced]) -> tuple[Any, ...]:
    b = M[label]
    c = at[json.dumps(b).encode()]
    return (b["session_id"], b["vehicle_id"], b["order_id"], ms(b), b["start_lat"],
            b["start_lon"], b["end_lat"], b["end_lon"], c.partition, c.offset)  # fmt: skip


def event(label: str, previous: str, at: dict[bytes, Produced]) -> tuple[Any, ...]:
    b = M[label]
    c = at[json.dumps(b).encode()]
    return (b["session_id"], b["vehicle_id"], b["order_id"], ms(b), b["status"], previous,
            b.get("current_lat"), b.get("current_lon"), c.partition, c.offset)  # fmt: skip


@pytest.mark.parametrize("parallelism", [1, 2])
def test_base_and_events_jobs_land_exact_rows(
    parallelism: int, kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    """At parallelism 1 and 2 (parsing and per-session state at 2; the embedded store's writer
    at 1) both tables hold exactly the expected rows: same contents either way."""
    topic = new_topic("sessions", partitions=3)
    dead_letter_topic = new_topic("dead-letter", partitions=1)
    produced = produce(kafka_bootstrap, topic, records())
    at = first_coordinates(produced)
    store = tmp_path / "store"

    for job in ("base", "events"):
        env = job_environment(
            kafka_bootstrap,
            topic,
            store,
            tmp_path / f"checkpoints-{job}",
            DEAD_LETTER_TOPIC=dead_letter_topic,
            KAFKA_CONSUMER_GROUP=unique(job),
            FLINK_PARALLELISM=str(parallelism),
            SINK_BATCH_SIZE="5",
        )
        run_job(f"jupiter_{job}", env)

    assert query(store, HEADER_SQL) == sorted(header(label, at) for label in EXPECTED_HEADERS)
    assert query(store, EVENTS_SQL) == sorted(
        event(label, previous, at) for label, previous in EXPECTED_EVENTS
    )

    dead = [DeadLetter.from_json(r.value) for r in consume_all(kafka_bootstrap, dead_letter_topic)]
    got = sorted((d.job, d.reason, d.field, d.partition, d.offset, d.payload) for d in dead)
    want = sorted(
        (job, reason, field, at[raw].partition, at[raw].offset, raw)
        for job in ("base", "events")
        for reason, field, raw in MALFORMED
    )
    assert got == want
