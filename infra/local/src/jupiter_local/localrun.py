"""What the demo and the benchmark share: the local broker, topics, bounded and streaming job
runs, the rows a stream must land, consumer-group progress, checkpoints, reading the embedded
store and the dead-letter topic. Local tooling only; the jobs never import it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import clickhouse_connect
from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from jupiter_common.registry import get_job
from jupiter_local.broker import choose_broker, create_topics
from jupiter_local.paths import REPO
from jupiter_local.synthetic import SyntheticRecord

CONNECTOR_JARS = REPO / ".cache" / "jars" / "flink"


def ensure_broker(bootstrap: str | None) -> str:
    """The broker at ``bootstrap`` (``KAFKA_BOOTSTRAP``) if Kafka answers there, else the local
    one, started if needed (see ``broker.choose_broker``); prints one line saying which."""
    choice = choose_broker(bootstrap)
    print(choice.line, flush=True)
    return choice.bootstrap


def delete_topics(bootstrap: str, topics: Iterable[str]) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 4})
    for future in admin.delete_topics(list(topics), operation_timeout=30).values():
        try:
            future.result(timeout=30)
        except Exception as exc:  # cleanup only; the figures are already out
            print(f"note: could not delete a benchmark topic: {exc}")


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
            [sys.executable, "-m", get_job(job).module, "--bounded"],
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


class StreamingRun:
    """``job`` running streaming, as ``hatch run jobs/<job>`` runs it, its output in ``log``."""

    def __init__(self, job: str, env: Mapping[str, str], log: Path) -> None:
        self.job = job
        self.log = log
        self._out = log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", get_job(job).module],
            env=dict(env),
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )

    def check(self) -> None:
        """Raise ``RuntimeError`` with the job's output if it has ended."""
        if self.process.poll() is not None:
            self._out.close()
            raise RuntimeError(
                f"{self.job}-job exited {self.process.returncode}:\n"
                f"{self.log.read_text(errors='replace')[-5000:]}"
            )

    def stop(self, timeout: float = 300) -> str | None:
        """SIGTERM: the job drains, takes a savepoint and exits 0. Returns the savepoint's path
        (``None`` if it stopped without one); raises ``RuntimeError`` if it fails."""
        if self.process.poll() is not None:
            self.check()
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            code = None
        self._out.close()
        output = self.log.read_text(errors="replace")
        if code != 0:
            raise RuntimeError(f"{self.job}-job did not stop cleanly ({code}):\n{output[-5000:]}")
        paths = [
            line.split(":", 1)[1].strip()
            for line in output.splitlines()
            if line.startswith("savepoint:")
        ]
        return paths[-1] if paths else None


def committed_offsets(bootstrap: str, topic: str, group: str) -> tuple[int, int]:
    """(committed, end) offsets of ``group`` on ``topic``, summed over partitions. A streaming
    job commits its offsets when a checkpoint completes."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        partitions = list(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
        tps = [TopicPartition(topic, p) for p in partitions]
        done = sum(max(tp.offset, 0) for tp in consumer.committed(tps, timeout=10))
        end = sum(consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in tps)
        return done, end
    finally:
        consumer.close()


def wait_checkpointed(
    run: StreamingRun, bootstrap: str, topic: str, group: str, timeout: float
) -> float:
    """Wait until a completed checkpoint of ``run`` covers every record now in ``topic`` (its
    group's committed offsets reach the end); returns the seconds waited. Prints progress every
    30 s; raises ``RuntimeError`` on a timeout or if the job ends."""
    started = time.monotonic()
    shown = started
    while True:
        run.check()
        try:
            done, end = committed_offsets(bootstrap, topic, group)
        except KafkaException:  # e.g. the group coordinator is still loading
            done, end = -1, 0
        waited = time.monotonic() - started
        if done == end:
            return waited
        if waited > timeout:
            raise RuntimeError(f"{run.job}-job: {done:,} of {end:,} offsets after {timeout:.0f} s")
        if time.monotonic() - shown >= 30:
            shown = time.monotonic()
            print(f"  {run.job}-job: {max(done, 0):,} of {end:,} records checkpointed", flush=True)
        time.sleep(1.0)


def expected_rows(records: Iterable[SyntheticRecord]) -> dict[str, int]:
    """Rows each table must hold once ``records`` are processed, by the semantics in the
    README (an independent oracle): a header per session with a ``started`` message, a row per
    status change of a session, a row per message with a position. Duplicates and malformed
    records count for nothing."""
    last: dict[str, str] = {}
    started: set[str] = set()
    changes = pings = 0
    for record in records:
        if record.kind != "valid":
            continue
        message = json.loads(record.value)
        session, status = message["session_id"], message["status"]
        if status == "started":
            started.add(session)
        if message.get("current_lat") is not None and message.get("current_lon") is not None:
            pings += 1
        if last.get(session) != status:
            changes += 1
            last[session] = status
    return {"base": len(started), "events": changes, "movements": pings}


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


def newest_checkpoint(checkpoints: Path) -> Path | None:
    """The folder (``chk-N``) of the newest completed checkpoint under ``checkpoints``."""
    done = [m.parent for m in checkpoints.rglob("chk-*/_metadata")]
    return max(done, key=lambda p: int(p.name.removeprefix("chk-")), default=None)


def latest_checkpoint(checkpoints: Path) -> int:
    """The number of the newest completed checkpoint under ``checkpoints`` (0 if none)."""
    newest = newest_checkpoint(checkpoints)
    return int(newest.name.removeprefix("chk-")) if newest else 0


def disk_usage(path: Path) -> int:
    """Bytes in the files under ``path`` (0 if it does not exist)."""
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


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
