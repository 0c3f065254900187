from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import clickhouse_connect
import pytest
from clickhouse_connect.driver.client import Client


@pytest.fixture(scope="module")
def chdb_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    """One embedded ClickHouse store per test module, closed after it: a process can hold one
    chDB directory at a time, and other modules open their own."""
    store: Path = tmp_path_factory.mktemp("chdb") / "store"
    client = clickhouse_connect.get_client(dsn=f"chdb://{store}")
    yield client
    client.close()
