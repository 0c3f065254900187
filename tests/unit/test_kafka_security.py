"""Kafka TLS/SASL client properties for the source and the dead-letter sink."""

from __future__ import annotations

import zipfile

from support import CONNECTOR_JARS

from jupiter_common.flink.dead_letter_sink import dead_letter_table_ddl
from jupiter_common.flink.kafka_security import kafka_client_properties
from jupiter_common.flink.source import source_ddl, source_options
from jupiter_common.settings import load_settings


def test_plaintext_sets_nothing() -> None:
    assert kafka_client_properties(load_settings("movements", {})) == {}


def test_sasl_ssl_with_scram_and_a_pem_ca() -> None:
    settings = load_settings(
        "movements",
        {
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "KAFKA_SASL_USERNAME": "jupiter",
            "KAFKA_SASL_PASSWORD": 'p"a;ss',
            "KAFKA_SSL_CA_LOCATION": "/etc/kafka/ca.pem",
        },
    )
    properties = kafka_client_properties(settings)
    assert properties["security.protocol"] == "SASL_SSL"
    assert properties["sasl.mechanism"] == "SCRAM-SHA-512"
    assert properties["ssl.truststore.type"] == "PEM"
    assert properties["ssl.truststore.location"] == "/etc/kafka/ca.pem"
    jaas = properties["sasl.jaas.config"]
    module, _, rest = jaas.partition(" required ")
    assert module.endswith(".scram.ScramLoginModule")
    assert rest == 'username="jupiter" password="p\\"a;ss";'
    options = source_options(settings)
    assert options["properties.security.protocol"] == "SASL_SSL"
    # The DDL quotes every option as a SQL literal, quotes doubled.
    assert "'properties.sasl.jaas.config'" in source_ddl(settings, "sessions")
    assert "'properties.sasl.jaas.config'" in dead_letter_table_ddl(settings, "dead_letters")


def test_login_modules_exist_in_the_shaded_connector_jar() -> None:
    """The module class names must be the connector's relocated ones, or logins fail at run time."""
    jar = next(CONNECTOR_JARS.glob("flink-sql-connector-kafka-*.jar"))
    names = set(zipfile.ZipFile(jar).namelist())
    for mechanism in ("PLAIN", "SCRAM-SHA-256"):
        settings = load_settings(
            "base",
            {
                "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                "KAFKA_SASL_MECHANISM": mechanism,
                "KAFKA_SASL_USERNAME": "u",
                "KAFKA_SASL_PASSWORD": "p",
            },
        )
        module = kafka_client_properties(settings)["sasl.jaas.config"].split(" ")[0]
        assert module.replace(".", "/") + ".class" in names


def test_jaas_values_escape_quotes_and_backslashes_and_keep_non_ascii() -> None:
    settings = load_settings(
        "events",
        {
            "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "KAFKA_SASL_USERNAME": "jürgen",
            "KAFKA_SASL_PASSWORD": 'a\\b"c',
        },
    )
    jaas = kafka_client_properties(settings)["sasl.jaas.config"]
    assert jaas.endswith(' required username="jürgen" password="a\\\\b\\"c";')
