"""Stateful jobs stopped after part of the stream and started again from there.

Once with stop-with-savepoint (SIGTERM: drain, savepoint, exit) and once by killing the whole
process tree and resuming from the retained checkpoint. In the kill case the first run has a
huge batch and a long flush interval, so its rows reach ClickHouse only when a checkpoint
makes the Python functions hand over what they hold: nothing may be lost, nothing duplicated.

Also: what happens when a session reappears after its per-session state expired.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from oracle import (
    EVENTS_SQL,
    HEADER_SQL,
    MOVEMENTS_SQL,
    expected_events,
    expected_headers,
    expected_movements,
)
from support import (
    StreamingJob,
    committed_offsets,
    job_environment,
    produce,
    query,
    run_job,
    unique,
    wait_until,
)

from jupiter_local.synthetic import GeneratorConfig, generate

pytestmark = pytest.mark.e2e


def restart_env(
    bootstrap: str,
    new_topic: Callable[..., str],
    topic: str,
    group: str,
    tmp_path: Path,
    **extra: str,
) -> dict[str, str]:
    """The settings these tests run a job with: its own group, store (``tmp_path/store``),
    checkpoints (``tmp_path/checkpoints``), dead-letter topic, and a checkpoint every 0.5 s."""
    return job_environment(
        bootstrap,
        topic,
        tmp_path / "store",
        tmp_path / "checkpoints",
        KAFKA_CONSUMER_GROUP=group,
        DEAD_LETTER_TOPIC=new_topic("dead-letter", partitions=1),
        FLINK_CHECKPOINT_INTERVAL_MS="500",
        **extra,
    )


EXPECTED = {"base": (HEADER_SQL, expected_headers), "events": (EVENTS_SQL, expected_events)}


def stream() -> list[tuple[bytes | None, bytes]]:
    config = GeneratorConfig(
        sessions=40, pings_per_session=8, seed=11, duplicate_ratio=0.05, reorder_ratio=0.05,
        malformed_count=4,
    )  # fmt: skip
    return [(r.key, r.value) for r in generate(config).records]


@pytest.mark.parametrize("how", ["savepoint", "kill"])
@pytest.mark.parametrize("job", ["base", "events"])
def test_stop_and_resume_loses_and_duplicates_nothing(
    job: str, how: str, kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = new_topic("sessions", partitions=2)
    group = unique(job)
    records = stream()
    split = len(records) * 3 // 5
    store = tmp_path / "store"
    env = restart_env(kafka_bootstrap, new_topic, topic, group, tmp_path)
    first_env = dict(env)
    if how == "kill":
        first_env.update(SINK_BATCH_SIZE="1000000", SINK_FLUSH_INTERVAL_MS="3600000")

    produced = produce(kafka_bootstrap, topic, records[:split])
    first = StreamingJob(f"jupiter_{job}", first_env, tmp_path / "first.log")
    first.wait_caught_up(kafka_bootstrap, topic, group)
    resume_env = dict(env)
    if how == "savepoint":
        resume_env["FLINK_RESTORE_PATH"] = first.stop_with_savepoint()
        sql, expect = EXPECTED[job]
        assert query(store, sql) == expect(produced), "a drained stop lands everything read"
    else:
        first.kill()  # resumes from the newest retained checkpoint (FLINK_RESUME=latest)

    produced += produce(kafka_bootstrap, topic, records[split:])
    second = StreamingJob(f"jupiter_{job}", resume_env, tmp_path / "second.log")
    second.wait_caught_up(kafka_bootstrap, topic, group)
    second.stop_with_savepoint()
    assert "resuming from" in second.output()

    sql, expect = EXPECTED[job]
    assert query(store, sql) == expect(produced)


@pytest.mark.parametrize("job", ["base", "events"])
def test_session_reappearing_after_state_expiry(
    job: str, kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    """With SESSION_STATE_TTL_MS=2000: a session silent for longer than that is new again.

    base: a later ``started`` writes a second header; the table keeps the earliest.
    events: the session's next message is a change from nothing (previous_status '').
    """
    ttl_ms = 2000
    topic = new_topic("sessions", partitions=1)
    group = unique(job)
    session = "22222222-0000-4000-8000-000000000001"

    def message(status: str, second: int) -> tuple[bytes, bytes]:
        body = {
            "session_id": session, "vehicle_id": "33333333-0000-4000-8000-000000000001",
            "order_id": "44444444-0000-4000-8000-000000000001", "status": status,
            "timestamp": f"2025-07-19T10:00:{second:02d}.000Z", "start_lat": 40.7,
            "start_lon": -73.9, "end_lat": 40.8, "end_lon": -73.95, "current_lat": 40.71,
            "current_lon": -73.91,
        }  # fmt: skip
        return session.encode(), json.dumps(body).encode()

    store = tmp_path / "store"
    env = restart_env(
        kafka_bootstrap, new_topic, topic, group, tmp_path, SESSION_STATE_TTL_MS=str(ttl_ms)
    )
    produce(kafka_bootstrap, topic, [message("started", 0), message("en_route", 1)])
    first = StreamingJob(f"jupiter_{job}", env, tmp_path / "first.log")
    first.wait_caught_up(kafka_bootstrap, topic, group)
    stopped = time.monotonic()
    first.stop_with_savepoint()
    # The state's last access was before the stop; let the TTL run out (a clock condition).
    wait_until(lambda: time.monotonic() - stopped > 2 * ttl_ms / 1000, 30, "the state TTL")

    produce(kafka_bootstrap, topic, [message("started", 30), message("en_route", 31)])
    second = StreamingJob(f"jupiter_{job}", env, tmp_path / "second.log")
    second.wait_caught_up(kafka_bootstrap, topic, group)
    second.stop_with_savepoint()

    if job == "base":
        raw = query(
            store, "SELECT toUnixTimestamp64Milli(started_at) FROM sessions_base ORDER BY 1"
        )
        final = query(store, "SELECT toUnixTimestamp64Milli(started_at) FROM sessions_base FINAL")
        t0 = 1752919200000  # 2025-07-19T10:00:00Z
        assert raw == [(t0,), (t0 + 30_000,)]  # the expired session got a second header ...
        assert final == [(t0,)]  # ... and queries see the earliest one
    else:
        rows = query(
            store,
            "SELECT toSecond(timestamp), previous_status, status FROM session_events FINAL"
            " ORDER BY timestamp",
        )
        assert rows == [
            (0, "", "started"),
            (1, "started", "en_route"),
            (30, "", "started"),  # state expired: a change from nothing again
            (31, "started", "en_route"),
        ]


def test_an_interrupted_bounded_run_loses_nothing(
    kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    """A bounded run killed after a completed checkpoint, part-way through: it committed no
    offsets, so the next bounded run reads the same records again and lands every row once."""
    topic = new_topic("sessions", partitions=2)
    group = unique("movements")
    config = GeneratorConfig(sessions=2500, pings_per_session=30, seed=5)
    produced = produce(kafka_bootstrap, topic, [(r.key, r.value) for r in generate(config).records])
    store = tmp_path / "store"
    checkpoints = tmp_path / "checkpoints"
    env = restart_env(kafka_bootstrap, new_topic, topic, group, tmp_path, JUPITER_BOUNDED="true")
    first = StreamingJob(
        "jupiter_movements",
        {**env, "SINK_BATCH_SIZE": "1000000", "SINK_FLUSH_INTERVAL_MS": "3600000"},
        tmp_path / "first.log",
    )
    bounded_root = checkpoints / "movements" / "jupiter-movements" / "bounded"

    def checkpointed() -> bool:
        assert first.process.poll() is None, f"the run ended too early:\n{first.output()[-3000:]}"
        return any(bounded_root.glob("*/chk-*/_metadata"))

    wait_until(checkpointed, 180, "a completed checkpoint")
    first.kill()
    assert committed_offsets(kafka_bootstrap, topic, group)[0] == 0

    run_job("jupiter_movements", env)
    assert query(store, MOVEMENTS_SQL) == expected_movements(produced)
