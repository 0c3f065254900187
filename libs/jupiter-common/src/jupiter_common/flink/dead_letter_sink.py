"""The dead-letter destination: a Kafka topic, written at least once.

Flink's ``KafkaSink`` with ``AT_LEAST_ONCE`` flushes its pending records before each checkpoint
completes, so a refused record is in the dead-letter topic before the source offset that
produced it is committed: a crash can duplicate a dead letter, never lose one.
"""

from __future__ import annotations

from pyflink.common.serialization import SimpleStringSchema
from pyflink.datastream import DataStream
from pyflink.datastream.connectors.base import DeliveryGuarantee
from pyflink.datastream.connectors.kafka import KafkaRecordSerializationSchema, KafkaSink

from jupiter_common.flink.kafka_security import kafka_client_properties
from jupiter_common.settings import Settings


def dead_letter_sink(settings: Settings) -> KafkaSink:
    serializer = (
        KafkaRecordSerializationSchema.builder()
        .set_topic(settings.dead_letter_topic)
        .set_value_serialization_schema(SimpleStringSchema())
        .build()
    )
    builder = (
        KafkaSink.builder()
        .set_bootstrap_servers(settings.kafka_bootstrap)
        .set_record_serializer(serializer)
        .set_delivery_guarantee(DeliveryGuarantee.AT_LEAST_ONCE)
        .set_property("client.id", f"{settings.job_name}-dead-letter")
    )
    for key, value in kafka_client_properties(settings).items():
        builder = builder.set_property(key, value)
    return builder.build()


def write_dead_letters(dead_letters: DataStream, settings: Settings) -> None:
    dead_letters.sink_to(dead_letter_sink(settings)).name("dead-letter").uid("dead-letter-sink")
