"""Run a real single-node Apache Kafka broker (KRaft mode) for local work and tests.

Why this exists: Jupiter's jobs and integration tests must run against a real
Kafka broker (mocks and embedded fakes hide protocol, rebalance and transaction
behaviour), so this package runs the genuine
``kafka.Kafka`` server straight from the jars that ``infra/local/setup.sh``
fetches into ``.cache/jars/kafka``: one JVM acting as both broker and KRaft
controller, bound to 127.0.0.1, with all state under a single data dir.

CLI::

    python -m jupiter_local.broker start [--port 9092] [--controller-port 9093]
                                      [--data-dir .jupiter/kafka] [--partitions 4]
                                      [--timeout 60]
    python -m jupiter_local.broker stop [--data-dir ...] [--timeout 30]
    python -m jupiter_local.broker status [--data-dir ...]      # exit 0 running, 3 not
    python -m jupiter_local.broker create-topics --bootstrap 127.0.0.1:9092 NAME[:PARTITIONS] ...
    python -m jupiter_local.broker reset [--data-dir ...]       # stop + delete data dir

``start`` without ports reuses the running broker whatever its port, else takes 9092/9093, or
free ports when something else holds those, and says where it runs (:func:`choose_broker`, which
the demo and the benchmark use too); with ``--port`` it takes exactly that port or fails.

Importing the package has no side effects; use :func:`start_broker`, :func:`stop_broker`,
:func:`choose_broker` and :func:`create_topics`. Modules: :mod:`.jvm` (the broker's files and
process), :mod:`.lifecycle` (start, reuse, stop, choose; topics), :mod:`.cli`.
"""

from jupiter_local.broker.cli import main
from jupiter_local.broker.jvm import DEFAULT_DATA_DIR, BrokerHandle, KafkaLocalError
from jupiter_local.broker.lifecycle import (
    BrokerChoice,
    broker_status,
    choose_broker,
    create_topics,
    kafka_answers,
    reset_broker,
    start_broker,
    stop_broker,
)

__all__ = [
    "DEFAULT_DATA_DIR",
    "BrokerChoice",
    "BrokerHandle",
    "KafkaLocalError",
    "broker_status",
    "choose_broker",
    "create_topics",
    "kafka_answers",
    "main",
    "reset_broker",
    "start_broker",
    "stop_broker",
]
