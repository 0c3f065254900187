"""The Kafka source: raw record values with their partition and offset.

The Table API Kafka connector exposes ``partition`` and ``offset`` as metadata columns, so every
row Jupiter writes can name the Kafka record it came from. The ``raw`` format keeps the value as
bytes: decoding is parsing's job, so that undecodable records reach the dead-letter topic
instead of failing the source.

Offsets are committed to the consumer group when a checkpoint completes (for monitoring and for
a fresh start); a restart from a checkpoint or savepoint resumes from the offsets in its state.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from jupiter_common.flink.kafka_security import kafka_client_properties
from jupiter_common.settings import Settings

_STARTUP_MODES: Final = {
    "group-offsets": "group-offsets",
    "earliest": "earliest-offset",
    "latest": "latest-offset",
}


def source_options(settings: Settings) -> dict[str, str]:
    """Options of the Kafka table connector for ``settings``."""
    options = {
        "connector": "kafka",
        "topic": settings.kafka_topic,
        "properties.bootstrap.servers": settings.kafka_bootstrap,
        "properties.group.id": settings.consumer_group,
        "properties.auto.offset.reset": "earliest",
        "properties.client.id.prefix": settings.job_name,
        "scan.startup.mode": _STARTUP_MODES[settings.kafka_starting_offsets],
        "scan.topic-partition-discovery.interval": "1 min",
        "format": "raw",
    }
    if settings.bounded:
        options["scan.bounded.mode"] = "latest-offset"
        # A bounded run never resumes from its checkpoints, so committing offsets at a checkpoint
        # would move the group past rows still buffered in the sink: a failed run would lose
        # them. Bounded runs leave the group where it was; re-running one is idempotent.
        options["properties.commit.offsets.on.checkpoint"] = "false"
    for key, value in kafka_client_properties(settings).items():
        options[f"properties.{key}"] = value
    return options


def source_ddl(settings: Settings, name: str) -> str:
    """``CREATE TEMPORARY TABLE name (value BYTES, partition INT, offset BIGINT)`` reading
    ``KAFKA_TOPIC``."""
    return (
        f"CREATE TEMPORARY TABLE {name} (\n"
        "  `value` BYTES,\n"
        "  `partition` INT METADATA VIRTUAL,\n"
        "  `offset` BIGINT METADATA VIRTUAL\n"
        f") WITH (\n{with_clause(source_options(settings))}\n)"
    )


def with_clause(options: Mapping[str, str]) -> str:
    """The body of a ``WITH (...)`` clause. Keys and values come from code and validated
    settings, and are quoted as SQL string literals."""
    return ",\n".join(f"  {_literal(key)} = {_literal(value)}" for key, value in options.items())


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
