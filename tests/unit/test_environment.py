"""What the driver does to its own environment before PyFlink starts the JVM: no secret is left
in it, and the JVM gets Jupiter's log configuration (tests/chaos/test_no_secrets.py runs jobs)."""

from __future__ import annotations

import re

import pytest

from jupiter_common.flink.environment import (
    BEAM_ENVIRONMENT_LOGGER,
    LOCAL_JVM_ARGS,
    LOCAL_LOG4J,
    SILENCE_ENVIRONMENT_DUMP,
    prepare_process_environment,
)
from jupiter_local import cluster

SECRET = "pa55-W0rd-never-shown"


def log4j_properties(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line and line[0] != "#")
    return {key.strip(): value.strip() for key, value in pairs}


def test_secrets_leave_the_environment_and_the_log_configuration_is_jupiters() -> None:
    environ = {
        "CLICKHOUSE_PASSWORD": SECRET,
        "KAFKA_SASL_PASSWORD": SECRET,
        "KAFKA_SASL_PASSWORD_FILE": "/run/secrets/kafka",
        "KAFKA_BOOTSTRAP": "kafka:9092",
    }
    assert prepare_process_environment(environ) == ["CLICKHOUSE_PASSWORD", "KAFKA_SASL_PASSWORD"]
    assert environ == {
        "KAFKA_SASL_PASSWORD_FILE": "/run/secrets/kafka",
        "KAFKA_BOOTSTRAP": "kafka:9092",
        "LOG4J_PROPERTIES": str(LOCAL_LOG4J),
        "JVM_ARGS": LOCAL_JVM_ARGS,
    }


@pytest.mark.parametrize("variable", ["LOG4J_PROPERTIES", "FLINK_CONF_DIR"])
def test_your_own_log_configuration_wins(variable: str) -> None:
    environ = {variable: "/etc/mine", "CLICKHOUSE_PASSWORD": SECRET, "JVM_ARGS": "-Xmx2g"}
    assert prepare_process_environment(environ) == ["CLICKHOUSE_PASSWORD"]
    assert environ == {variable: "/etc/mine", "JVM_ARGS": "-Xmx2g"}


def test_the_local_log_configuration_silences_the_environment_dump_only() -> None:
    assert LOCAL_LOG4J.is_file()
    properties = log4j_properties(LOCAL_LOG4J.read_text())
    loggers = {
        properties[key]: properties[key.removesuffix(".name") + ".level"]
        for key in properties
        if re.fullmatch(r"logger\.[A-Za-z0-9_]+\.name", key)
    }
    assert loggers[BEAM_ENVIRONMENT_LOGGER] == "ERROR"
    assert SILENCE_ENVIRONMENT_DUMP in LOCAL_LOG4J.read_text()
    # Everything else as PyFlink's CLI configuration: INFO to the file PyFlink names.
    assert properties["rootLogger.level"] == "${env:ROOT_LOG_LEVEL:-INFO}"
    assert properties["appender.file.fileName"] == "${sys:log.file}"
    assert {level for name, level in loggers.items() if name != BEAM_ENVIRONMENT_LOGGER} == {"OFF"}


def test_the_local_cluster_silences_the_dump_and_starts_without_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("log4j.properties", "log4j-cli.properties", "log4j-console.properties"):
        text = cluster.log4j_properties(name)
        assert text.startswith((cluster.PYFLINK_HOME / "conf" / name).read_text().rstrip())
        assert text.endswith(SILENCE_ENVIRONMENT_DUMP)
        assert log4j_properties(text)["logger.beam_environment.level"] == "ERROR"
    monkeypatch.setenv("CLICKHOUSE_PASSWORD", SECRET)
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", SECRET)
    where = cluster.Cluster()
    # The daemons (whose Python workers' environment Beam logs) get no secret; a deployed job's
    # driver does, and reads it into its settings.
    assert SECRET not in where.daemon_env().values()
    assert where.script_env()["CLICKHOUSE_PASSWORD"] == SECRET
    assert cluster.job_environment(where, 1)["CLICKHOUSE_PASSWORD"] == SECRET
