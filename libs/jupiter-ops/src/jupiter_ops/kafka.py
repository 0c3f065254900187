"""Kafka reads for the operator commands: a consumer group's lag, and the records of a topic
from a point in time up to its end (what ``status`` and ``dead-letters`` read).

Nothing here joins a consumer group or commits an offset: the tools assign partitions and read,
so running them never moves a job's position (Flink commits the jobs' offsets to their groups
when a checkpoint completes).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

from confluent_kafka import (
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from jupiter_common.errors import JupiterError
from jupiter_common.flink.kafka_security import librdkafka_properties
from jupiter_common.settings import Settings

TIMEOUT_S: Final = 10.0
"""How long one Kafka request may take before the command says Kafka does not answer."""


_QUIET: Final = logging.getLogger("jupiter_ops.librdkafka")
"""librdkafka's own log lines (connection refused, retries ...) go here, not to stderr: a command
says in its output what failed, once."""
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False


UNREACHABLE: Final = "Kafka does not answer"


class KafkaReadError(JupiterError):
    """Kafka did not answer, or refused a request (no such topic, not authorized ...)."""


@dataclass(frozen=True, slots=True)
class PartitionLag:
    """One partition of a job's topic: the group's committed offset (None: never committed),
    the partition's end offset (high watermark), and the records between them."""

    partition: int
    committed: int | None
    end: int
    start: int

    @property
    def lag(self) -> int:
        """Records the group has not committed yet. A group that never committed on this
        partition lags by every record still in it (from the partition's start)."""
        done = self.start if self.committed is None else self.committed
        return max(0, self.end - done)


def client_config(settings: Settings) -> dict[str, Any]:
    """librdkafka settings for the configured cluster (TLS and SASL as the jobs use them)."""
    return {**librdkafka_properties(settings), "logger": _QUIET}


def why(exc: KafkaException) -> str:
    """The reason of a Kafka client error, without the ``KafkaError{code=...}`` wrapping."""
    error = exc.args[0] if exc.args else None
    return str(error.str()) if isinstance(error, KafkaError) else str(exc)


def reader(settings: Settings) -> Consumer:
    """A consumer that only reads assigned partitions: never subscribes, never commits."""
    return Consumer(
        {
            **client_config(settings),
            "group.id": f"jupiter-ops-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "enable.partition.eof": False,
            "auto.offset.reset": "earliest",
        }
    )


def partitions(consumer: Consumer, topic: str) -> list[int]:
    """The partitions of ``topic``; raises :class:`KafkaReadError` if it does not exist."""
    try:
        metadata = consumer.list_topics(topic, timeout=TIMEOUT_S)
    except KafkaException as exc:
        raise KafkaReadError(f"{UNREACHABLE}: {why(exc)}") from None
    found = metadata.topics.get(topic)
    if found is None or found.error is not None or not found.partitions:
        reason = found.error.str() if found is not None and found.error is not None else "missing"
        raise KafkaReadError(f"topic {topic}: {reason}")
    return sorted(found.partitions)


def group_lag(settings: Settings, topic: str, group: str) -> list[PartitionLag]:
    """Lag of consumer group ``group`` on every partition of ``topic``."""
    consumer = reader(settings)
    try:
        numbers = partitions(consumer, topic)
        admin = AdminClient(client_config(settings))
        request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in numbers])
        try:
            answer = admin.list_consumer_group_offsets([request], request_timeout=TIMEOUT_S)
            listed = answer[group].result(timeout=TIMEOUT_S)
        except KafkaException as exc:
            raise KafkaReadError(f"offsets of group {group}: {why(exc)}") from None
        committed = {
            tp.partition: tp.offset if tp.offset >= 0 else None
            for tp in listed.topic_partitions
            if tp.topic == topic
        }
        rows = []
        for number in numbers:
            start, end = watermarks(consumer, topic, number)
            rows.append(PartitionLag(number, committed.get(number), end, start))
        return rows
    finally:
        consumer.close()


def watermarks(consumer: Consumer, topic: str, partition: int) -> tuple[int, int]:
    """(first offset still in the partition, end offset)."""
    try:
        low, high = consumer.get_watermark_offsets(
            TopicPartition(topic, partition), timeout=TIMEOUT_S
        )
    except KafkaException as exc:
        raise KafkaReadError(f"end offsets of {topic}: {why(exc)}") from None
    return int(low), int(high)


def read_topic(
    settings: Settings,
    topic: str,
    since_ms: int | None = None,
    only: dict[int, int] | None = None,
    timeout_s: float = 60.0,
) -> Iterator[Message]:
    """The records of ``topic`` from ``since_ms`` (a Unix time in milliseconds; None: from the
    start) up to the end offsets found when reading starts, partition after partition in
    offset order. ``only`` (partition -> offset) reads just those records instead. Raises
    :class:`KafkaReadError` when Kafka stops answering for ``timeout_s``."""
    consumer = reader(settings)
    try:
        numbers = partitions(consumer, topic)
        ends = {p: watermarks(consumer, topic, p)[1] for p in numbers}
        starts = _starts(consumer, topic, numbers, since_ms)
        if only is not None:
            starts = {p: o for p, o in only.items() if p in ends}
            ends = {p: min(ends[p], o + 1) for p, o in starts.items()}
        for partition, start in sorted(starts.items()):
            if start >= ends[partition]:
                continue
            consumer.assign([TopicPartition(topic, partition, start)])
            for message in _until(consumer, ends[partition], timeout_s):
                # An offset no longer in the topic makes the consumer start further on.
                if only is None or message.offset() == start:
                    yield message
    finally:
        consumer.close()


def _starts(
    consumer: Consumer, topic: str, numbers: list[int], since_ms: int | None
) -> dict[int, int]:
    if since_ms is None:
        return {p: watermarks(consumer, topic, p)[0] for p in numbers}
    wanted = [TopicPartition(topic, p, since_ms) for p in numbers]
    try:
        found = consumer.offsets_for_times(wanted, timeout=TIMEOUT_S)
    except KafkaException as exc:
        raise KafkaReadError(f"offsets by time of {topic}: {why(exc)}") from None
    # -1: no record at or after that time; start at the end (nothing to read).
    return {
        tp.partition: tp.offset if tp.offset >= 0 else watermarks(consumer, topic, tp.partition)[1]
        for tp in found
    }


def _until(consumer: Consumer, end: int, timeout_s: float) -> Iterator[Message]:
    deadline = time.monotonic() + timeout_s
    while True:
        message = consumer.poll(0.5)
        if message is None:
            if time.monotonic() > deadline:
                raise KafkaReadError(f"Kafka stopped answering for {timeout_s:.0f} s")
            continue
        error = message.error()
        if error is not None:
            if error.retriable():
                continue
            raise KafkaReadError(f"reading: {error.str()}")
        deadline = time.monotonic() + timeout_s
        yield message
        offset = message.offset()
        if offset is not None and offset + 1 >= end:
            return
