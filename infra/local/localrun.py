"""What the demo and the benchmark share: the local broker, topics, bounded job runs, reading
the embedded store and the dead-letter topic. Local tooling only; the jobs never import it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import clickhouse_connect
from broker import choose_broker, create_topics
from confluent_kafka import Consumer, TopicPartition

REPO = Path(__file__).resolve().parents[2]
CONNECTOR_JARS = REPO / ".cache" / "jars" / "flink"
JOB_MODULES = {
    "base": "jupiter_base",
    "events": "jupiter_events",
    "movements": "jupiter_movements",
}


def ensure_broker(bootstrap: str | None) -> str:
    """The broker at ``bootstrap`` (``KAFKA_BOOTSTRAP``) if Kafka answers there, else the local
    one, started if needed (see ``broker.choose_broker``); prints one line saying which."""
    choice = choose_broker(bootstrap)
    print(choice.line, flush=True)
    return choice.bootstrap


def ensure_topics(bootstrap: str, topics: Mapping[str, int]) -> None:
    create_topics(bootstrap, topics)


@dataclass(frozen=True)
class JobRun:
    job: str
    seconds: float
    output: str


def run_bounded(
    job: str,
    env: Mapping[str, str],
    log: Path,
    progress: Callable[[float], None] | None = None,
    timeout: float = 1800,
) -> JobRun:
    """Run ``job`` with ``--bounded`` to completion, its output in ``log``; ``progress`` is
    called about once a second with the elapsed time. Raises ``RuntimeError`` with the job's
    output on failure."""
    started = time.monotonic()
    with log.open("w") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", JOB_MODULES[job], "--bounded"],
            env=dict(env),
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        while True:
            try:
                proc.wait(timeout=1.0)
                break
            except subprocess.TimeoutExpired:
                elapsed = time.monotonic() - started
                if elapsed > timeout:
                    proc.kill()
                    raise RuntimeError(f"{job}-job did not finish in {timeout:.0f} s") from None
                if progress is not None:
                    progress(elapsed)
    seconds = time.monotonic() - started
    output = log.read_text(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"{job}-job failed (exit {proc.returncode}):\n{output[-5000:]}")
    return JobRun(job, seconds, output)


def job_env(bootstrap: str, topic: str, store: Path, work: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "KAFKA_BOOTSTRAP": bootstrap,
            "KAFKA_TOPIC": topic,
            "CLICKHOUSE_EMBEDDED_PATH": str(store),
            "FLINK_CONNECTOR_JARS": str(CONNECTOR_JARS),
            "FLINK_CHECKPOINT_DIR": (work / "checkpoints").as_uri(),
        }
    )
    env.update(extra)
    return env


def latest_checkpoint(checkpoints: Path) -> int:
    """The number of the newest completed checkpoint under ``checkpoints`` (0 if none)."""
    numbers = [
        int(m.parent.name.removeprefix("chk-")) for m in checkpoints.rglob("chk-*/_metadata")
    ]
    return max(numbers, default=0)


def count_records(bootstrap: str, topic: str) -> int:
    """How many records ``topic`` holds (end minus start offsets)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "jupiter-count"})
    try:
        partitions = consumer.list_topics(topic, timeout=5).topics[topic].partitions
        total = 0
        for p in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=5)
            total += high - low
        return total
    finally:
        consumer.close()


def query(store: Path, sql: str, **parameters: Any) -> list[tuple[Any, ...]]:
    client = clickhouse_connect.get_client(dsn=f"chdb://{store}")
    try:
        return [tuple(r) for r in client.query(sql, parameters=parameters).result_rows]
    finally:
        client.close()
