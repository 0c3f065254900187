"""Helpers the tests share: real Kafka produce/consume, running a job, reading the store."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import clickhouse_connect
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

REPO = Path(__file__).resolve().parents[1]
CONNECTOR_JARS = REPO / ".cache" / "jars" / "flink"


def load_broker_tool() -> ModuleType:
    """``infra/local/broker.py`` as a module (it is a script, not a package)."""
    spec = importlib.util.spec_from_file_location("broker", REPO / "infra/local/broker.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["broker"] = module
    spec.loader.exec_module(module)
    return module


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass(frozen=True)
class Produced:
    key: bytes | None
    value: bytes
    partition: int
    offset: int


def produce(
    bootstrap: str, topic: str, records: Iterable[tuple[bytes | None, bytes]]
) -> list[Produced]:
    """Produce in order and return each record with the partition/offset Kafka gave it."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    delivered: dict[int, Produced] = {}
    errors: list[str] = []

    def on_delivery(index: int, key: bytes | None, value: bytes) -> Any:
        def callback(err: KafkaError | None, msg: Any) -> None:
            if err is not None:
                errors.append(str(err))
            else:
                delivered[index] = Produced(key, value, msg.partition(), msg.offset())

        return callback

    count = 0
    for index, (key, value) in enumerate(records):
        producer.produce(topic, key=key, value=value, on_delivery=on_delivery(index, key, value))
        producer.poll(0)
        count += 1
    remaining = producer.flush(30)
    assert remaining == 0 and not errors, f"produce failed: {errors}, {remaining} undelivered"
    return [delivered[i] for i in range(count)]


def consume_all(bootstrap: str, topic: str, timeout: float = 30.0) -> list[Produced]:
    """Every record of ``topic`` up to its current end offsets."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": unique("test-reader"),
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        partitions = list(metadata.topics[topic].partitions)
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in partitions
        }
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        positions = {p: 0 for p in partitions}
        out: list[Produced] = []
        deadline = time.monotonic() + timeout
        while any(positions[p] < ends[p] for p in partitions):
            assert time.monotonic() < deadline, f"timed out reading {topic}: {positions}/{ends}"
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            partition, offset = msg.partition(), msg.offset()
            assert partition is not None and offset is not None
            positions[partition] = offset + 1
            out.append(Produced(msg.key(), msg.value() or b"", partition, offset))
        return out
    finally:
        consumer.close()


def job_environment(
    bootstrap: str, topic: str, store: Path, checkpoints: Path, **extra: str
) -> dict[str, str]:
    """Environment for a job run in a test: the given broker/topic, an embedded store."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "CLICKHOUSE_"))}
    env.update(
        {
            "KAFKA_BOOTSTRAP": bootstrap,
            "KAFKA_TOPIC": topic,
            "CLICKHOUSE_EMBEDDED_PATH": str(store),
            "FLINK_CONNECTOR_JARS": str(CONNECTOR_JARS),
            "FLINK_CHECKPOINT_DIR": checkpoints.as_uri(),
            "FLINK_CHECKPOINT_INTERVAL_MS": "1000",
            "LOG_LEVEL": "INFO",
        }
    )
    env.update(extra)
    return env


def run_job(
    module: str, env: Mapping[str, str], args: Sequence[str] = ("--bounded",), timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m module`` to completion; fail the test with its output if it fails."""
    result = subprocess.run(
        [sys.executable, "-m", module, *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, (
        f"{module} exited {result.returncode}\n--- stdout\n{result.stdout[-6000:]}"
        f"\n--- stderr\n{result.stderr[-6000:]}"
    )
    return result


def query(store: Path, sql: str) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` against the embedded store (the job must have finished)."""
    client = clickhouse_connect.get_client(dsn=f"chdb://{store}")
    try:
        return [tuple(row) for row in client.query(sql).result_rows]
    finally:
        client.close()
