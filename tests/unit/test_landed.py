"""LandedRows and the writer after a restart, against the real ClickHouse engine (chDB).

A "restart" here is a new writer on the same table: what a Flink task that failed over gets.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from table_rows import write_rows

from jupiter_common.clickhouse import ensure_table
from jupiter_common.landed import LandedRows, Row
from jupiter_common.tables import SESSION_EVENTS, SESSION_MOVEMENTS, SESSIONS_BASE, TableSpec
from jupiter_common.writer import ClickHouseWriter, RetryPolicy, WriteResult, arrow_batch

T0_MS = 1_752_928_496_789
FAST = RetryPolicy(max_retries=0, backoff_ms=1)


def rows_for(table: TableSpec, count: int, *, partition: int = 0, first: int = 0) -> list[Row]:
    """Rows of ``table`` in insert-column order, one per Kafka record ``first..first+count``."""
    out: list[Row] = []
    for i in range(count):
        ids = (str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4()))
        ts, offset = T0_MS + 1000 * i, first + i
        if table is SESSION_MOVEMENTS:
            out.append((*ids, ts, "en_route", 40.0 + i / 1e4, -73.0, partition, offset))
        elif table is SESSION_EVENTS:
            lat = None if i % 2 else 40.5
            out.append((*ids, ts, "arrived", "en_route", lat, lat, partition, offset))
        else:
            out.append((*ids, ts, 40.0, -73.0, 40.1, -73.1, partition, offset))
    return out


@pytest.fixture
def database(chdb_client: Client) -> Iterator[str]:
    name = f"test_{uuid.uuid4().hex}"
    for table in (SESSION_MOVEMENTS, SESSION_EVENTS, SESSIONS_BASE):
        ensure_table(chdb_client, table, name)
    yield name
    chdb_client.command(f"DROP DATABASE IF EXISTS {name}")


class CountingClient:
    """Seam: forwards to the real client and counts ``query`` calls."""

    def __init__(self, real: Client) -> None:
        self.real = real
        self.queries = 0

    def query(self, *args: Any, **kwargs: Any) -> Any:
        self.queries += 1
        return self.real.query(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def plain_count(client: Client, table: TableSpec, database: str) -> int:
    sql = f"SELECT count() FROM {table.qualified(database)}"
    return int(client.query(sql).result_rows[0][0])


@pytest.mark.parametrize("table", [SESSION_MOVEMENTS, SESSION_EVENTS, SESSIONS_BASE])
def test_a_restarted_writer_inserts_only_what_did_not_land(
    chdb_client: Client, database: str, table: TableSpec
) -> None:
    """The first writer landed two batches; the restarted one gets them again (restored buffer
    and replayed records) plus new rows, in other batch boundaries: each row lands once."""
    stream = rows_for(table, 30, partition=0) + rows_for(table, 20, partition=1)
    first = ClickHouseWriter(chdb_client, table, database, FAST)
    write_rows(first, stream[:12])
    write_rows(first, stream[12:35])
    second = ClickHouseWriter(chdb_client, table, database, FAST)
    results = [write_rows(second, stream[5:40]), write_rows(second, stream[40:])]
    assert [r.skipped for r in results] == [30, 0]
    assert sum(r.written for r in results) == len(stream) - 35
    assert plain_count(chdb_client, table, database) == len(stream)


def test_a_partly_landed_batch_is_completed(chdb_client: Client, database: str) -> None:
    """A batch whose insert landed in part (some of its parts committed before a crash)."""
    rows = rows_for(SESSION_MOVEMENTS, 10)
    write_rows(ClickHouseWriter(chdb_client, SESSION_MOVEMENTS, database, FAST), rows[::2])
    restarted = ClickHouseWriter(chdb_client, SESSION_MOVEMENTS, database, FAST)
    assert write_rows(restarted, rows) == WriteResult(written=5, skipped=5)
    assert plain_count(chdb_client, SESSION_MOVEMENTS, database) == 10


def test_rows_above_the_horizon_cost_no_lookup(chdb_client: Client, database: str) -> None:
    write_rows(
        ClickHouseWriter(chdb_client, SESSION_MOVEMENTS, database, FAST),
        rows_for(SESSION_MOVEMENTS, 10),
    )
    proxy = CountingClient(chdb_client)
    landed = LandedRows(proxy, SESSION_MOVEMENTS, database)  # type: ignore[arg-type]
    fresh = rows_for(SESSION_MOVEMENTS, 5, first=10) + rows_for(SESSION_MOVEMENTS, 5, partition=3)
    batch = arrow_batch(
        SESSION_MOVEMENTS,
        dict(zip(SESSION_MOVEMENTS.insert_columns, zip(*fresh, strict=True), strict=True)),
    )
    assert landed.new_rows(batch) == batch
    assert landed.horizon == {0: 9}
    assert proxy.queries == 1  # the horizon, read once


def test_same_coordinates_with_other_content_are_new_rows(
    chdb_client: Client, database: str
) -> None:
    """A topic deleted and created again starts at offset 0: its records are not replays."""
    write_rows(
        ClickHouseWriter(chdb_client, SESSION_EVENTS, database, FAST), rows_for(SESSION_EVENTS, 10)
    )
    recreated = rows_for(SESSION_EVENTS, 10)
    writer = ClickHouseWriter(chdb_client, SESSION_EVENTS, database, FAST)
    assert write_rows(writer, recreated) == WriteResult(written=10, skipped=0)
    assert plain_count(chdb_client, SESSION_EVENTS, database) == 20


def test_the_horizon_is_read_from_the_projection(chdb_client: Client, database: str) -> None:
    """The start-up read touches a few rows per part, not the table."""
    write_rows(
        ClickHouseWriter(chdb_client, SESSION_MOVEMENTS, database, FAST),
        rows_for(SESSION_MOVEMENTS, 100),
    )
    plan = chdb_client.query(
        "EXPLAIN SELECT source_partition, max(source_offset)"
        f" FROM {SESSION_MOVEMENTS.qualified(database)} GROUP BY source_partition"
    )
    assert any("ReadFromMergeTree (source_horizon)" in line for (line,) in plan.result_rows)
