from __future__ import annotations

import pytest
from support import CONNECTOR_JARS


@pytest.fixture(scope="session", autouse=True)
def _connector_jar_present() -> None:
    if not any(CONNECTOR_JARS.glob("*.jar")):
        pytest.exit("Flink Kafka connector jar missing: run `bash infra/local/setup.sh` first", 2)
