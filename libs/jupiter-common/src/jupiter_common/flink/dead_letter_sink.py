"""The dead-letter destination: a Kafka topic, written at least once.

The dead letters leave through the Kafka table connector (a JVM sink), with delivery guarantee
``at-least-once``: it flushes its pending records before each checkpoint completes, so a refused
record is in the dead-letter topic before the source offset that produced it is committed: a
crash can duplicate a dead letter, never lose one.

The flip side: a dead letter Kafka refuses fails the job, and it fails again on every replay of
the same record, forever. So a dead letter is never larger than
:data:`~jupiter_common.dead_letter.MAX_DEAD_LETTER_BYTES` (see :mod:`jupiter_common.dead_letter`),
the producer's ``max.request.size`` is :data:`~jupiter_common.dead_letter.DEAD_LETTER_RECORD_LIMIT`,
and before the job is submitted the driver checks that the topic accepts records of that size
(:func:`check_dead_letter_topic`). A topic configured smaller stops the start with a message
that says what to change: the limit is a deployment error to fix once, not a reason to shrink
what a dead letter keeps per deployment or to drop dead letters at run time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Final

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # exported, not in __all__
    AdminClient,
    ConfigResource,
    ResourceType,
)

from jupiter_common.dead_letter import DEAD_LETTER_RECORD_LIMIT
from jupiter_common.errors import DeadLetterTopicError
from jupiter_common.flink.kafka_security import kafka_client_properties, librdkafka_properties
from jupiter_common.flink.source import with_clause
from jupiter_common.settings import Settings

log = logging.getLogger("jupiter")

TOPIC_LIMIT_CONFIG: Final = "max.message.bytes"
CHECK_TIMEOUT_S: Final = 10.0


def dead_letter_table_ddl(settings: Settings, name: str) -> str:
    """``CREATE TEMPORARY TABLE name (value STRING)`` writing each row, a dead letter's JSON,
    as one record of ``DEAD_LETTER_TOPIC``."""
    options = {
        "connector": "kafka",
        "topic": settings.dead_letter_topic,
        "properties.bootstrap.servers": settings.kafka_bootstrap,
        "properties.client.id": f"{settings.job_name}-dead-letter",
        # Every dead letter fits; the topic is checked for the same size at start-up.
        "properties.max.request.size": str(DEAD_LETTER_RECORD_LIMIT),
        "sink.delivery-guarantee": "at-least-once",
        "format": "raw",
    }
    for key, value in kafka_client_properties(settings).items():
        options[f"properties.{key}"] = value
    return f"CREATE TEMPORARY TABLE {name} (`value` STRING) WITH (\n{with_clause(options)}\n)"


def check_dead_letter_topic(
    settings: Settings,
    topic_limit: Callable[[Settings], int | None] | None = None,
) -> None:
    """Raise :class:`DeadLetterTopicError` when ``DEAD_LETTER_TOPIC`` exists and its
    ``max.message.bytes`` is below :data:`DEAD_LETTER_RECORD_LIMIT`.

    When the limit cannot be read (the topic does not exist yet, Kafka is unreachable, the
    client may not describe topic configs) the job starts anyway, with a warning: an unreachable
    Kafka heals, and a topic created later by the broker gets the broker's default limit
    (1 MiB unless changed), which is large enough.
    """
    limit = (topic_limit or topic_max_message_bytes)(settings)
    if limit is None:
        return
    if limit < DEAD_LETTER_RECORD_LIMIT:
        raise DeadLetterTopicError(
            f"DEAD_LETTER_TOPIC={settings.dead_letter_topic!r} accepts records of at most"
            f" {limit:,} bytes ({TOPIC_LIMIT_CONFIG}), but a dead letter can take up to"
            f" {DEAD_LETTER_RECORD_LIMIT:,} bytes; raise the topic's limit, e.g. `kafka-configs.sh"
            f" --bootstrap-server ... --alter --entity-type topics --entity-name"
            f" {settings.dead_letter_topic} --add-config"
            f" {TOPIC_LIMIT_CONFIG}={DEAD_LETTER_RECORD_LIMIT}`, or name another topic"
        )
    log.info(
        "dead-letter topic %s accepts records up to %d bytes (dead letters need %d)",
        settings.dead_letter_topic,
        limit,
        DEAD_LETTER_RECORD_LIMIT,
    )


def topic_max_message_bytes(settings: Settings, timeout: float = CHECK_TIMEOUT_S) -> int | None:
    """The effective ``max.message.bytes`` of ``DEAD_LETTER_TOPIC`` (its own, or the broker's
    default), or ``None`` when it cannot be read; the reason is logged."""
    topic = settings.dead_letter_topic
    admin = AdminClient(
        {**librdkafka_properties(settings), "client.id": f"{settings.job_name}-startup-check"}
    )
    resource = ConfigResource(ResourceType.TOPIC, topic)
    try:
        future = admin.describe_configs([resource], request_timeout=timeout)[resource]
        entries = future.result(timeout=timeout + 5)
        return int(entries[TOPIC_LIMIT_CONFIG].value)
    except KafkaException as exc:
        error = exc.args[0] if exc.args else None
        if isinstance(error, KafkaError) and error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
            log.warning(
                "dead-letter topic %s does not exist yet: create it (or let the brokers create"
                " it) with %s >= %d",
                topic,
                TOPIC_LIMIT_CONFIG,
                DEAD_LETTER_RECORD_LIMIT,
            )
        else:
            log.warning(
                "cannot read %s of dead-letter topic %s: %s", TOPIC_LIMIT_CONFIG, topic, exc
            )
    except (TimeoutError, KeyError, ValueError) as exc:
        log.warning("cannot read %s of dead-letter topic %s: %r", TOPIC_LIMIT_CONFIG, topic, exc)
    return None
