"""The dead-letter topic's own size limit is checked before a job starts.

Against a real broker (a topic created too small, a job that refuses to start) in
tests/chaos/test_poison_pill.py.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from confluent_kafka.admin import AdminClient

from jupiter_common.dead_letter import DEAD_LETTER_RECORD_LIMIT
from jupiter_common.errors import DeadLetterTopicError, JupiterError
from jupiter_common.flink.dead_letter_sink import check_dead_letter_topic
from jupiter_common.flink.kafka_security import librdkafka_properties
from jupiter_common.settings import Settings, load_settings

SETTINGS = load_settings("events", {"DEAD_LETTER_TOPIC": "refused-records"})


def limit(value: int | None) -> Callable[[Settings], int | None]:
    def topic_limit(settings: Settings) -> int | None:
        assert settings is SETTINGS
        return value

    return topic_limit


def test_a_topic_below_the_bound_stops_the_start_naming_the_setting() -> None:
    with pytest.raises(DeadLetterTopicError) as info:
        check_dead_letter_topic(SETTINGS, limit(DEAD_LETTER_RECORD_LIMIT - 1))
    message = str(info.value)
    assert "DEAD_LETTER_TOPIC='refused-records'" in message
    assert f"{DEAD_LETTER_RECORD_LIMIT - 1:,} bytes" in message
    assert f"max.message.bytes={DEAD_LETTER_RECORD_LIMIT}" in message
    assert isinstance(info.value, JupiterError)  # the runner reports it and exits 1


@pytest.mark.parametrize("value", [DEAD_LETTER_RECORD_LIMIT, 1_048_588, None])  # 1,048,588: default
def test_a_large_enough_or_unknown_limit_lets_the_job_start(value: int | None) -> None:
    """``None``: no topic yet, Kafka unreachable or no right to describe it; the job starts
    (with a warning), as it would without the check."""
    check_dead_letter_topic(SETTINGS, limit(value))


@pytest.mark.parametrize(
    "env",
    [
        {},
        {
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
            "KAFKA_SASL_USERNAME": "jupiter",
            "KAFKA_SASL_PASSWORD": "secret",
            "KAFKA_SSL_CA_LOCATION": "/etc/kafka/ca.pem",
        },
    ],
)
def test_the_startup_check_connects_as_the_job_does(env: dict[str, str]) -> None:
    settings = load_settings("events", {"KAFKA_BOOTSTRAP": "127.0.0.1:1", **env})
    properties = librdkafka_properties(settings)
    assert properties["bootstrap.servers"] == "127.0.0.1:1"
    assert properties["security.protocol"] == env.get("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT")
    if env:
        assert properties["sasl.mechanism"] == "SCRAM-SHA-256"
        assert (properties["sasl.username"], properties["sasl.password"]) == ("jupiter", "secret")
        assert properties["ssl.ca.location"] == "/etc/kafka/ca.pem"
    else:
        assert not any(key.startswith(("sasl.", "ssl.")) for key in properties)
    if not env:  # librdkafka knows every property name (an unknown one raises here)
        config: dict[str, str | int | float | bool] = {**properties}
        AdminClient(config)
