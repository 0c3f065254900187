"""The three tables in the real ClickHouse engine (chDB): DDL, schema checks, business keys."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator, Sequence

import pytest
from clickhouse_connect.driver.client import Client

from jupiter_common.clickhouse import ensure_table
from jupiter_common.errors import TableSchemaError
from jupiter_common.tables import (
    ALL_TABLES,
    SESSION_EVENTS,
    SESSION_MOVEMENTS,
    SESSIONS_BASE,
    Column,
    TableSpec,
    quote_identifier,
)

BUSINESS_KEYS: dict[str, tuple[str, ...]] = {
    SESSION_MOVEMENTS.name: ("vehicle_id", "session_id", "timestamp"),
    SESSION_EVENTS.name: ("vehicle_id", "session_id", "timestamp", "status"),
    SESSIONS_BASE.name: ("session_id",),
}
T0_MS = 1_752_928_496_789  # 2025-07-19T12:34:56.789Z
ORDER_ID = "c1d2e3f4-a5b6-7c8d-9e0f-1a2b3c4d5e6f"


@pytest.fixture
def client(chdb_client: Client) -> Client:
    return chdb_client


@pytest.fixture
def database(client: Client) -> Iterator[str]:
    """A fresh, empty database for one test."""
    name = f"test_{uuid.uuid4().hex}"
    client.command(f"CREATE DATABASE {name}")
    yield name
    client.command(f"DROP DATABASE IF EXISTS {name}")


def make_row(
    table: TableSpec,
    *,
    session: str,
    vehicle: str,
    ts_ms: int,
    offset: int,
    status: str = "en_route",
    lat: float = 40.755,
) -> tuple[object, ...]:
    """A row in ``table.insert_columns`` order, in the form the jobs produce."""
    values: dict[str, object] = {
        "session_id": session,
        "vehicle_id": vehicle,
        "order_id": ORDER_ID,
        "timestamp": ts_ms,
        "started_at": ts_ms,
        "status": status,
        "previous_status": "started",
        "lat": lat,
        "lon": -73.98,
        "start_lat": lat,
        "start_lon": -73.9772,
        "end_lat": 40.758,
        "end_lon": -73.9855,
        "source_partition": 0,
        "source_offset": offset,
    }
    return tuple(values[name] for name in table.insert_columns)


def keep_every_copy(client: Client, table: TableSpec, database: str) -> None:
    """Turn off insert deduplication and background merges for this one table, so a repeated
    insert really lands as a second copy and stays one until a query reads with FINAL."""
    qualified = table.qualified(database)
    client.command(
        f"ALTER TABLE {qualified} MODIFY SETTING non_replicated_deduplication_window = 0"
    )
    client.command(f"SYSTEM STOP MERGES {qualified}")


def insert(
    client: Client, table: TableSpec, database: str, rows: Sequence[tuple[object, ...]]
) -> None:
    client.insert(table.name, list(rows), column_names=table.insert_columns, database=database)


def scalar(client: Client, sql: str) -> object:
    return client.query(sql).result_rows[0][0]


def distinct_rows(table: TableSpec) -> list[tuple[object, ...]]:
    """Five rows with five different business keys (five sessions of two vehicles)."""
    vehicles = [str(uuid.uuid4()) for _ in range(2)]
    return [
        make_row(
            table,
            session=str(uuid.uuid4()),
            vehicle=vehicles[i % 2],
            ts_ms=T0_MS + 1000 * i,
            offset=i,
        )
        for i in range(5)
    ]


@pytest.mark.parametrize("table", ALL_TABLES, ids=lambda t: t.name)
def test_ddl_is_idempotent(client: Client, database: str, table: TableSpec) -> None:
    client.command(table.ddl(database))
    client.command(table.ddl(database))
    found = client.query(
        "SELECT name, type FROM system.columns WHERE database = {db:String} AND table = {t:String}"
        " ORDER BY position",
        parameters={"db": database, "t": table.name},
    ).result_rows
    assert [(str(n), str(t)) for n, t in found] == [(c.name, c.type) for c in table.columns]


@pytest.mark.parametrize("table", ALL_TABLES, ids=lambda t: t.name)
def test_ensure_table_twice(client: Client, database: str, table: TableSpec) -> None:
    ensure_table(client, table, database)
    ensure_table(client, table, database)
    engine, sorting_key = client.query(
        "SELECT engine_full, sorting_key FROM system.tables"
        " WHERE database = {db:String} AND name = {t:String}",
        parameters={"db": database, "t": table.name},
    ).result_rows[0]
    assert str(engine).startswith(table.engine)
    assert "non_replicated_deduplication_window = 1000" in str(engine)
    assert str(sorting_key).removeprefix("(").removesuffix(")") == ", ".join(
        BUSINESS_KEYS[table.name]
    )


@pytest.mark.parametrize("table", ALL_TABLES, ids=lambda t: t.name)
def test_sorting_key_is_the_business_key(table: TableSpec) -> None:
    assert table.order_by == BUSINESS_KEYS[table.name]


@pytest.mark.parametrize("table", ALL_TABLES, ids=lambda t: t.name)
def test_repeated_rows_collapse_to_one_per_business_key(
    client: Client, database: str, table: TableSpec
) -> None:
    ensure_table(client, table, database)
    keep_every_copy(client, table, database)
    qualified = table.qualified(database)
    rows = distinct_rows(table)
    insert(client, table, database, rows)
    insert(client, table, database, rows)
    assert scalar(client, f"SELECT count() FROM {qualified}") == 2 * len(rows)

    key = ", ".join(quote_identifier(c) for c in BUSINESS_KEYS[table.name])
    groups = client.query(
        f"SELECT {key}, count() FROM {qualified} FINAL GROUP BY {key}"
    ).result_rows
    assert len(groups) == len(rows)
    assert all(group[-1] == 1 for group in groups)


def test_events_with_different_status_at_one_instant_are_kept(
    client: Client, database: str
) -> None:
    ensure_table(client, SESSION_EVENTS, database)
    keep_every_copy(client, SESSION_EVENTS, database)
    session, vehicle = str(uuid.uuid4()), str(uuid.uuid4())
    rows = [
        make_row(SESSION_EVENTS, session=session, vehicle=vehicle, ts_ms=T0_MS, offset=i, status=s)
        for i, s in enumerate(["arrived", "completed"])
    ]
    insert(client, SESSION_EVENTS, database, rows)
    insert(client, SESSION_EVENTS, database, rows)
    statuses = client.query(
        f"SELECT status FROM {SESSION_EVENTS.qualified(database)} FINAL ORDER BY status"
    ).result_rows
    assert statuses == [("arrived",), ("completed",)]


@pytest.mark.parametrize("table", [SESSION_MOVEMENTS, SESSION_EVENTS], ids=lambda t: t.name)
def test_of_two_copies_the_larger_source_offset_wins(
    client: Client, database: str, table: TableSpec
) -> None:
    ensure_table(client, table, database)
    keep_every_copy(client, table, database)
    session, vehicle = str(uuid.uuid4()), str(uuid.uuid4())
    # The copy with the larger offset is inserted first: insertion order must not decide.
    for offset, lat in ((10, 10.0), (5, 5.0)):
        row = make_row(table, session=session, vehicle=vehicle, ts_ms=T0_MS, offset=offset, lat=lat)
        insert(client, table, database, [row])
    assert scalar(client, f"SELECT count() FROM {table.qualified(database)}") == 2
    kept = client.query(f"SELECT source_offset, lat FROM {table.qualified(database)} FINAL")
    assert kept.result_rows == [(10, 10.0)]


def _with_column_type(table: TableSpec, name: str, kind: str) -> TableSpec:
    columns = tuple(
        dataclasses.replace(c, type=kind) if c.name == name else c for c in table.columns
    )
    return dataclasses.replace(table, columns=columns)


def test_ensure_table_refuses_a_different_column_type(client: Client, database: str) -> None:
    client.command(_with_column_type(SESSION_MOVEMENTS, "lat", "Float32").ddl(database))
    with pytest.raises(TableSchemaError) as info:
        ensure_table(client, SESSION_MOVEMENTS, database)
    message = str(info.value)
    assert SESSION_MOVEMENTS.qualified(database) in message
    assert "column lat is Float32 in ClickHouse but Float64 in Jupiter's definition" in message
    assert "column lon" not in message


def test_ensure_table_refuses_a_missing_column(client: Client, database: str) -> None:
    fewer = dataclasses.replace(
        SESSIONS_BASE, columns=tuple(c for c in SESSIONS_BASE.columns if c.name != "end_lon")
    )
    client.command(fewer.ddl(database))
    with pytest.raises(TableSchemaError, match=r"lacks column\(s\) end_lon Float64"):
        ensure_table(client, SESSIONS_BASE, database)


def test_ensure_table_refuses_a_different_timestamp_zone(client: Client, database: str) -> None:
    client.command(
        _with_column_type(SESSION_EVENTS, "timestamp", "DateTime64(3, 'Europe/Berlin')").ddl(
            database
        )
    )
    with pytest.raises(TableSchemaError, match="timestamp"):
        ensure_table(client, SESSION_EVENTS, database)


@pytest.mark.parametrize(
    "name",
    [
        "a`; DROP TABLE x",
        "a`",
        "`a`",
        "a b",
        "a.b",
        "a-b",
        "1a",
        "",
        "a\n",
        "a;",
        "a'",
        'a"',
        "é",
        "a/*",
    ],
)
def test_quote_identifier_refuses_anything_but_a_plain_name(name: str) -> None:
    with pytest.raises(ValueError, match="not a plain identifier"):
        quote_identifier(name)


@pytest.mark.parametrize("name", ["a", "default", "_x", "Session_2", "A1_b2"])
def test_quote_identifier_backquotes_plain_names(name: str) -> None:
    assert quote_identifier(name) == f"`{name}`"


def test_table_spec_refuses_bad_column_names() -> None:
    with pytest.raises(ValueError, match="bad column name"):
        dataclasses.replace(SESSIONS_BASE, columns=(Column("x`; DROP", "String"),))


def test_ddl_refuses_a_bad_database_name() -> None:
    with pytest.raises(ValueError, match="not a plain identifier"):
        SESSIONS_BASE.ddl("x`; DROP DATABASE default; --")


def test_ensure_table_in_a_new_database_creates_it(client: Client) -> None:
    database = f"analytics_{uuid.uuid4().hex}"
    assert SESSION_MOVEMENTS.ddl(database).startswith(
        f"CREATE TABLE IF NOT EXISTS `{database}`.`session_movements`"
    )
    try:
        ensure_table(client, SESSION_MOVEMENTS, database)
        databases = f"SELECT count() FROM system.databases WHERE name = '{database}'"
        assert scalar(client, databases) == 1
        tables = (
            "SELECT count() FROM system.tables"
            f" WHERE database = '{database}' AND name = 'session_movements'"
        )
        assert scalar(client, tables) == 1
    finally:
        client.command(f"DROP DATABASE IF EXISTS {database}")


@pytest.mark.parametrize("table", ALL_TABLES, ids=lambda t: t.name)
def test_insert_columns_leave_out_defaulted_columns(table: TableSpec) -> None:
    assert "ingested_at" not in table.insert_columns
    assert {"source_partition", "source_offset"} <= set(table.insert_columns)
