"""Session-wide real services: one Apache Kafka broker (KRaft) started from the project's own
script on free local ports, stopped at the end. Set JUPITER_TEST_KAFKA=host:port to use a
broker that is already running instead."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest
from support import free_port, unique

from jupiter_local import broker as kafka


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    existing = os.environ.get("JUPITER_TEST_KAFKA")
    if existing:
        yield existing
        return
    data_dir = tmp_path_factory.mktemp("kafka")
    handle = kafka.start_broker(data_dir, port=free_port(), controller_port=free_port())
    try:
        yield str(handle.bootstrap)
    finally:
        kafka.stop_broker(data_dir)


@pytest.fixture
def new_topic(kafka_bootstrap: str) -> Callable[..., str]:
    """Create a uniquely named topic; returns its name."""

    def create(prefix: str = "sessions", partitions: int = 2) -> str:
        name = unique(prefix)
        kafka.create_topics(kafka_bootstrap, {name: partitions})
        return str(name)

    return create
