"""Kafka client properties for TLS and SASL, shared by the source and the dead-letter sink.

The Flink SQL Kafka connector shades the Kafka client, so JAAS login modules are named by their
relocated class names. The driver's own checks at start-up use librdkafka (confluent-kafka),
which takes the same settings under its own property names (:func:`librdkafka_properties`).
"""

from __future__ import annotations

from typing import Final

from jupiter_common.settings import Settings

_SHADED: Final = "org.apache.flink.kafka.shaded.org.apache.kafka.common.security"
_LOGIN_MODULES: Final = {
    "PLAIN": f"{_SHADED}.plain.PlainLoginModule",
    "SCRAM-SHA-256": f"{_SHADED}.scram.ScramLoginModule",
    "SCRAM-SHA-512": f"{_SHADED}.scram.ScramLoginModule",
}


def kafka_client_properties(settings: Settings) -> dict[str, str]:
    """Kafka client properties for the configured security protocol (none for PLAINTEXT)."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return {}
    properties: dict[str, str] = {"security.protocol": protocol}
    if settings.kafka_ssl_ca_location:
        properties["ssl.truststore.type"] = "PEM"
        properties["ssl.truststore.location"] = settings.kafka_ssl_ca_location
    if protocol.startswith("SASL"):
        mechanism = settings.kafka_sasl_mechanism
        username = _jaas_quoted(settings.kafka_sasl_username)
        password = _jaas_quoted(settings.kafka_sasl_password.get_secret_value())
        properties["sasl.mechanism"] = mechanism
        properties["sasl.jaas.config"] = (
            f"{_LOGIN_MODULES[mechanism]} required username={username} password={password};"
        )
    return properties


def librdkafka_properties(settings: Settings) -> dict[str, str]:
    """The same connection settings for a librdkafka client (confluent-kafka)."""
    properties = {
        "bootstrap.servers": settings.kafka_bootstrap,
        "security.protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_ssl_ca_location:
        properties["ssl.ca.location"] = settings.kafka_ssl_ca_location
    if settings.kafka_security_protocol.startswith("SASL"):
        properties["sasl.mechanism"] = settings.kafka_sasl_mechanism
        properties["sasl.username"] = settings.kafka_sasl_username
        properties["sasl.password"] = settings.kafka_sasl_password.get_secret_value()
    return properties


def _jaas_quoted(text: str) -> str:
    """A JAAS string literal: double quotes, with backslash and double quote escaped."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
