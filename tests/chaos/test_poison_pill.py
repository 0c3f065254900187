"""Poison pills: single records built to break a job, in the middle of a stream of valid ones.

A record whose ``timestamp`` is a 1 MB string used to make a 1.35 MB dead letter, which the
dead-letter ``KafkaSink`` could not send (``RecordTooLargeException``): the job restarted
forever, committed nothing, and a bounded run exited 1. Here, against the real broker, real
PyFlink and the real ClickHouse engine:

- a bounded movements-job run over valid records with poison pills in the middle exits 0,
  lands exactly the expected rows, and turns every pill into one dead letter with its reason,
  within the dead-letter size bound;
- a streaming events-job run catches up over pills produced before and while it runs, with no
  task failure and no restart (Flink's own restart count, from its REST API, is 0), and stops
  with a savepoint on SIGTERM;
- a dead-letter topic whose ``max.message.bytes`` is too small stops a job at start-up, with a
  message naming ``DEAD_LETTER_TOPIC``, instead of crash-looping on the first large refusal.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic
from oracle import EVENTS_SQL, MOVEMENTS_SQL, expected_events, expected_movements
from support import (
    SEED,
    Produced,
    StreamingJob,
    consume_all,
    job_environment,
    produce,
    query,
    run_job,
    unique,
    wait_until,
)

from jupiter_common.dead_letter import MAX_DEAD_LETTER_BYTES, MAX_PAYLOAD_BYTES, DeadLetter
from jupiter_common.parsing import Rejection, parse_session
from jupiter_local.chaos_profile import report, rows_figures
from jupiter_local.synthetic import GeneratorConfig, generate

pytestmark = pytest.mark.chaos

# The local broker's defaults: a record batch up to message.max.bytes = 1,048,588 bytes.
PRODUCER_MAX_BYTES = 1_048_576


def poison_pills(tag: int) -> list[tuple[str, str | None, bytes]]:
    """(reason, field, value) of each pill; ``tag`` makes the values of two sets differ."""
    rng = random.Random(tag)
    nested = 450_000
    return [
        # The one from the issue: the message used to repeat the whole value.
        (
            "bad_timestamp",
            "timestamp",
            json.dumps({**SEED, "timestamp": "x" * 1_000_000, "tag": tag}).encode(),
        ),
        # About 0.9 MB of valid JSON, mostly an unknown field of control characters (six bytes
        # each as \u0001, and six again in a dead letter's JSON); a required field is missing.
        (
            "missing_field",
            "vehicle_id",
            json.dumps(
                {k: v for k, v in SEED.items() if k != "vehicle_id"}
                | {"blob": "\x01" * 150_000, "tag": tag}
            ).encode(),
        ),
        ("not_utf8", None, b"\xff" + rng.randbytes(900_000)),
        ("not_json", None, ("[" * nested + "]" * nested).encode()),
        # A status of characters that JSON escapes (12 bytes of JSON for 4 characters).
        (
            "bad_status",
            "status",
            json.dumps({**SEED, "status": '"\\\n\u2028' * 70_000, "tag": tag}).encode(),
        ),
    ]


def big_valid_message(tag: int) -> bytes:
    """About 0.9 MB and valid: unknown fields are ignored whatever their size. It lands."""
    body: dict[str, Any] = {
        **SEED,
        "session_id": f"99999999-0000-4000-8000-{tag:012d}",
        "blob": "\x01" * 150_000,
    }
    return json.dumps(body).encode()


def produce_large(bootstrap: str, topic: str, values: list[bytes]) -> list[Produced]:
    """Produce records of up to about 1 MB, one request each, in order."""
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "message.max.bytes": PRODUCER_MAX_BYTES,
        }
    )
    out: list[Produced] = []
    delivered: list[Any] = []
    for value in values:
        producer.produce(topic, value=value, on_delivery=lambda e, m: delivered.append((e, m)))
        assert producer.flush(30) == 0
        ((error, msg),) = delivered
        delivered.clear()
        assert error is None, error
        out.append(Produced(None, value, msg.partition(), msg.offset()))
    return out


def valid_stream(seed: int, sessions: int) -> list[tuple[bytes | None, bytes]]:
    config = GeneratorConfig(
        sessions=sessions, pings_per_session=20, seed=seed, duplicate_ratio=0.02,
        reorder_ratio=0.02, malformed_count=3,
    )  # fmt: skip
    return [(r.key, r.value) for r in generate(config).records]


def produce_with_pills(bootstrap: str, topic: str, seed: int, sessions: int) -> list[Produced]:
    """Valid records, then the poison pills and a big valid message, then valid records."""
    records = valid_stream(seed, sessions)
    half = len(records) // 2
    produced = produce(bootstrap, topic, records[:half])
    pills = [raw for _, _, raw in poison_pills(seed)] + [big_valid_message(seed)]
    produced += produce_large(bootstrap, topic, pills)
    produced += produce(bootstrap, topic, records[half:])
    return produced


def assert_dead_letters(
    bootstrap: str, topics: tuple[str, str], job: str, produced: list[Produced], seeds: list[int]
) -> None:
    """One dead letter per refused record, exactly; each pill's with its reason and field,
    its original size, its first MAX_PAYLOAD_BYTES bytes, and within the size bound."""
    topic, dead_letter_topic = topics
    records = consume_all(bootstrap, dead_letter_topic)
    assert all(len(r.value) <= MAX_DEAD_LETTER_BYTES for r in records)
    letters = {
        (d.partition, d.offset): d for d in map(DeadLetter.from_json, (r.value for r in records))
    }
    assert len(letters) == len(records), "a dead letter written twice"
    refused = {
        (r.partition, r.offset): r
        for r in produced
        if isinstance(parse_session(r.value), Rejection)
    }
    assert set(letters) == set(refused)
    assert {(d.job, d.topic) for d in letters.values()} == {(job, topic)}
    by_value = {r.value: r for r in produced}
    for seed in seeds:
        for reason, field, raw in poison_pills(seed):
            source = by_value[raw]
            letter = letters[(source.partition, source.offset)]
            assert (letter.reason, letter.field) == (reason, field)
            assert letter.payload_size == len(raw) and letter.payload_truncated
            assert letter.payload == raw[:MAX_PAYLOAD_BYTES]
            assert letter.payload_text is None


def test_a_bounded_run_lands_every_valid_row_past_poison_pills(
    kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = new_topic("sessions", partitions=2)
    dead_letter_topic = new_topic("dead-letter", partitions=1)
    produced = produce_with_pills(kafka_bootstrap, topic, seed=1, sessions=80)
    store = tmp_path / "store"
    env = job_environment(
        kafka_bootstrap,
        topic,
        store,
        tmp_path / "checkpoints",
        DEAD_LETTER_TOPIC=dead_letter_topic,
        KAFKA_CONSUMER_GROUP=unique("movements"),
        SINK_BATCH_SIZE="500",
    )

    run_job("jupiter_movements", env)  # asserts exit 0

    expected, landed = expected_movements(produced), query(store, MOVEMENTS_SQL)
    report("poison", "movements", case="bounded", pills=len(poison_pills(1)), exit_code=0,
           **rows_figures(expected, landed))  # fmt: skip
    assert any(row[0].startswith("99999999-") for row in expected)  # the big valid message
    assert landed == expected
    assert_dead_letters(
        kafka_bootstrap, (topic, dead_letter_topic), "movements", produced, seeds=[1]
    )


def rest_url(flink_log: Path) -> str:
    """The REST endpoint of the job's Flink mini-cluster, from Flink's own log."""
    found: list[str] = []

    def listening() -> bool:
        logs = "".join(p.read_text(errors="replace") for p in flink_log.glob("*.log"))
        found[:] = re.findall(r"Rest endpoint listening at ([\w.-]+:\d+)", logs)
        return bool(found)

    wait_until(listening, 60, "the Flink REST endpoint")
    return f"http://{found[-1]}"


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:  # a local endpoint
        return json.load(response)


def restarts(rest: str) -> tuple[int, list[Any]]:
    """(restart count, exception history) of the only job of the mini-cluster."""
    (job,) = get_json(f"{rest}/jobs/overview")["jobs"]
    assert job["state"] == "RUNNING", job
    values: list[dict[str, str]] = []

    def reported() -> bool:  # the metric store fills asynchronously on the first request
        values[:] = get_json(f"{rest}/jobs/{job['jid']}/metrics?get=numRestarts")
        return bool(values)

    wait_until(reported, 30, "Flink's numRestarts metric")
    exceptions = get_json(f"{rest}/jobs/{job['jid']}/exceptions")["exceptionHistory"]["entries"]
    return int(values[0]["value"]), exceptions


def test_a_streaming_stateful_job_catches_up_past_poison_pills_without_a_restart(
    kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = new_topic("sessions", partitions=2)
    dead_letter_topic = new_topic("dead-letter", partitions=1)
    group = unique("events")
    store = tmp_path / "store"
    flink_log = tmp_path / "flink-log"
    env = job_environment(
        kafka_bootstrap,
        topic,
        store,
        tmp_path / "checkpoints",
        DEAD_LETTER_TOPIC=dead_letter_topic,
        KAFKA_CONSUMER_GROUP=group,
        FLINK_CHECKPOINT_INTERVAL_MS="500",
        FLINK_LOG_DIR=str(flink_log),  # Flink's own log, for its REST address and restarts
    )
    produced = produce_with_pills(kafka_bootstrap, topic, seed=2, sessions=40)
    job = StreamingJob("jupiter_events", env, tmp_path / "events.log")
    job.wait_caught_up(kafka_bootstrap, topic, group)
    produced += produce_with_pills(kafka_bootstrap, topic, seed=3, sessions=40)  # while it runs
    job.wait_caught_up(kafka_bootstrap, topic, group)

    count, exceptions = restarts(rest_url(flink_log))
    flink = "".join(p.read_text(errors="replace") for p in flink_log.glob("*.log"))
    report("poison", "events", case="streaming", pills=2 * len(poison_pills(2)), restarts=count,
           task_failures=flink.count("switched from RUNNING to FAILED"))  # fmt: skip
    assert count == 0 and not exceptions, exceptions
    assert "switched from RUNNING to FAILED" not in flink
    assert "will be restarted" not in flink

    job.stop_with_savepoint()  # SIGTERM: exit 0 with a savepoint
    assert query(store, EVENTS_SQL) == expected_events(produced)
    assert_dead_letters(
        kafka_bootstrap, (topic, dead_letter_topic), "events", produced, seeds=[2, 3]
    )


def test_a_dead_letter_topic_too_small_for_a_dead_letter_stops_the_start(
    kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    """Checked by the driver before it submits the job: a clear error, exit 1, not a job that
    fails on the first large refusal and restarts forever."""
    topic = new_topic("sessions", partitions=1)
    small = unique("dead-letter-small")
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    created = admin.create_topics([NewTopic(small, 1, 1, config={"max.message.bytes": "100000"})])
    created[small].result(30)
    env = job_environment(
        kafka_bootstrap,
        topic,
        tmp_path / "store",
        tmp_path / "checkpoints",
        DEAD_LETTER_TOPIC=small,
        KAFKA_CONSUMER_GROUP=unique("movements"),
    )
    result = subprocess.run(
        [sys.executable, "-m", "jupiter_movements", "--bounded"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        start_new_session=True,
    )
    assert result.returncode == 1, result.stderr[-3000:]
    assert f"DEAD_LETTER_TOPIC='{small}' accepts records of at most 100,000 bytes" in result.stderr
    assert "max.message.bytes=" in result.stderr
