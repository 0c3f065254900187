"""Fixtures for every suite that runs real jobs (e2e, chaos): the connector jar must be there,
and no job process outlives its test. Each such suite's conftest imports them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support import CONNECTOR_JARS, kill_leftover_jobs


@pytest.fixture(scope="session", autouse=True)
def _connector_jar_present() -> None:
    if not any(CONNECTOR_JARS.glob("*.jar")):
        pytest.exit("Flink Kafka connector jar missing: run `bash infra/local/setup.sh` first", 2)


@pytest.fixture(autouse=True)
def _no_job_outlives_its_test() -> Iterator[None]:
    yield
    kill_leftover_jobs()
