"""Schema evolution in the real ClickHouse engine (chDB): what a job start (``ensure_table``) and
``hatch run migrate`` do to a table that an earlier definition created."""

from __future__ import annotations

import dataclasses
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from jupiter_common import migrate, registry
from jupiter_common.clickhouse import ensure_table
from jupiter_common.errors import ColumnTypeChangedError, TableSchemaError
from jupiter_common.evolution import plan
from jupiter_common.tables import (
    ALL_TABLES,
    SESSION_EVENTS,
    SESSION_MOVEMENTS,
    Column,
    TableSpec,
)

T0_MS = 1_752_928_496_789
TABLES_BY_JOB = {job.name: job.table for job in registry.JOBS}


def with_events_table(table: TableSpec) -> tuple[registry.Job, ...]:
    """The registry with events-job landing ``table``."""
    return tuple(
        dataclasses.replace(job, table=table) if job.name == "events" else job
        for job in registry.JOBS
    )


@pytest.fixture
def database(chdb_client: Client) -> Iterator[str]:
    name = f"evolve_{uuid.uuid4().hex}"
    yield name
    chdb_client.command(f"DROP DATABASE IF EXISTS {name}")


def with_columns(table: TableSpec, *extra: Column) -> TableSpec:
    """``table`` with ``extra`` inserted before its Kafka coordinates (mid-table, so the
    ALTER's placement is tested too)."""
    cut = [c.name for c in table.columns].index("source_partition")
    columns = (*table.columns[:cut], *extra, *table.columns[cut:])
    return dataclasses.replace(table, columns=columns)


def without(table: TableSpec, name: str) -> TableSpec:
    return dataclasses.replace(table, columns=tuple(c for c in table.columns if c.name != name))


def retyped(table: TableSpec, name: str, kind: str) -> TableSpec:
    columns = tuple(
        dataclasses.replace(c, type=kind) if c.name == name else c for c in table.columns
    )
    return dataclasses.replace(table, columns=columns)


def columns_of(client: Client, table: TableSpec, database: str) -> list[tuple[str, str]]:
    rows = client.query(
        "SELECT name, type FROM system.columns WHERE database = {db:String} AND table = {t:String}"
        " ORDER BY position",
        parameters={"db": database, "t": table.name},
    ).result_rows
    return [(str(name), str(kind)) for name, kind in rows]


def insert_one(client: Client, table: TableSpec, database: str, offset: int) -> None:
    values: dict[str, object] = {
        "session_id": str(uuid.uuid4()),
        "vehicle_id": str(uuid.uuid4()),
        "order_id": str(uuid.uuid4()),
        "timestamp": T0_MS,
        "status": "en_route",
        "lat": 40.75,
        "lon": -73.98,
        "source_partition": 0,
        "source_offset": offset,
    }
    names = [name for name in table.insert_columns if name in values]
    client.insert(table.name, [[values[n] for n in names]], column_names=names, database=database)


SPEED = Column("speed_kmh", "Nullable(Float64)")
SOURCE = Column("source", "LowCardinality(String)", default="'gps'")


def test_new_nullable_and_defaulted_columns_are_added_in_place(
    chdb_client: Client, database: str, caplog: pytest.LogCaptureFixture
) -> None:
    ensure_table(chdb_client, SESSION_MOVEMENTS, database)
    insert_one(chdb_client, SESSION_MOVEMENTS, database, offset=1)
    newer = with_columns(SESSION_MOVEMENTS, SPEED, SOURCE)

    with caplog.at_level(logging.INFO, logger="jupiter_common"):
        ready = ensure_table(chdb_client, newer, database)

    assert ready.added == ("speed_kmh", "source")
    assert not ready.created
    assert columns_of(chdb_client, newer, database) == [(c.name, c.type) for c in newer.columns]
    assert f"added column speed_kmh Nullable(Float64) to {ready.table}" in caplog.text
    # The row written before the columns existed has their NULL and DEFAULT.
    old_row = chdb_client.query(
        f"SELECT speed_kmh, source FROM {newer.qualified(database)}"
    ).result_rows
    assert old_row == [(None, "gps")]
    # ... and the writer's next rows carry the new columns.
    insert_one(chdb_client, newer, database, offset=2)
    assert chdb_client.query(f"SELECT count() FROM {newer.qualified(database)}").result_rows == [
        (2,)
    ]


def test_adding_is_idempotent(chdb_client: Client, database: str) -> None:
    ensure_table(chdb_client, SESSION_EVENTS, database)
    newer = with_columns(SESSION_EVENTS, SPEED)
    assert ensure_table(chdb_client, newer, database).added == ("speed_kmh",)
    again = ensure_table(chdb_client, newer, database)
    assert (again.created, again.added, again.unknown) == (False, (), ())
    assert columns_of(chdb_client, newer, database) == [(c.name, c.type) for c in newer.columns]
    # The ALTER itself is idempotent too (IF NOT EXISTS): a second job start racing the first.
    chdb_client.command(newer.add_column_ddl(database, "speed_kmh"))


def test_a_new_materialized_column_is_added(chdb_client: Client, database: str) -> None:
    ensure_table(chdb_client, SESSION_MOVEMENTS, database)
    insert_one(chdb_client, SESSION_MOVEMENTS, database, offset=1)
    day = Column("day", "Date", default="toDate(timestamp)", materialized=True)
    newer = with_columns(SESSION_MOVEMENTS, day)
    assert "day" not in newer.insert_columns
    assert ensure_table(chdb_client, newer, database).added == ("day",)
    found = chdb_client.query(
        "SELECT default_kind FROM system.columns"
        " WHERE database = {db:String} AND table = 'session_movements' AND name = 'day'",
        parameters={"db": database},
    ).result_rows
    assert found == [("MATERIALIZED",)]
    days = chdb_client.query(f"SELECT toString(day) FROM {newer.qualified(database)}")
    assert days.result_rows == [("2025-07-19",)]


def test_a_changed_type_stops_the_start_naming_the_column_and_both_types(
    chdb_client: Client, database: str
) -> None:
    ensure_table(chdb_client, retyped(SESSION_MOVEMENTS, "lat", "Float32"), database)
    # The added column must not be added when the start stops: nothing changes.
    newer = with_columns(SESSION_MOVEMENTS, SPEED)
    with pytest.raises(ColumnTypeChangedError) as info:
        ensure_table(chdb_client, newer, database)
    error = info.value
    assert error.table == SESSION_MOVEMENTS.qualified(database)
    assert error.changes == (("lat", "Float32", "Float64"),)
    message = str(error)
    assert SESSION_MOVEMENTS.qualified(database) in message
    assert "column lat is Float32 in ClickHouse but Float64 in Jupiter's definition" in message
    assert "speed_kmh" not in [name for name, _ in columns_of(chdb_client, newer, database)]


def test_a_new_column_without_default_or_null_needs_a_manual_migration(
    chdb_client: Client, database: str
) -> None:
    ensure_table(chdb_client, SESSION_MOVEMENTS, database)
    newer = with_columns(SESSION_MOVEMENTS, Column("speed_kmh", "Float64"))
    with pytest.raises(TableSchemaError, match=r"lacks column\(s\) speed_kmh Float64") as info:
        ensure_table(chdb_client, newer, database)
    assert not isinstance(info.value, ColumnTypeChangedError)
    assert "speed_kmh" not in [name for name, _ in columns_of(chdb_client, newer, database)]


def test_a_column_the_definition_no_longer_has_is_kept_with_a_warning(
    chdb_client: Client, database: str, caplog: pytest.LogCaptureFixture
) -> None:
    ensure_table(chdb_client, with_columns(SESSION_MOVEMENTS, SPEED), database)
    with caplog.at_level(logging.WARNING, logger="jupiter_common"):
        ready = ensure_table(chdb_client, SESSION_MOVEMENTS, database)
    assert ready.unknown == ("speed_kmh",)
    assert ready.added == ()
    assert ("speed_kmh", "Nullable(Float64)") in columns_of(
        chdb_client, SESSION_MOVEMENTS, database
    )
    assert "column speed_kmh of" in caplog.text and "left alone" in caplog.text
    insert_one(chdb_client, SESSION_MOVEMENTS, database, offset=1)  # the writer still inserts


def test_plan_never_puts_a_found_name_or_type_into_sql() -> None:
    """Names and types read from the table only go into messages: the ALTERs come from the
    definition (a hostile column name in the table is just 'unknown')."""
    found = {c.name: c.type for c in SESSION_MOVEMENTS.columns if c.name != "ingested_at"}
    found["x`; DROP TABLE t; --"] = "String"
    evolution = plan(SESSION_MOVEMENTS, "`db`.`session_movements`", found)
    assert [c.name for c in evolution.add] == ["ingested_at"]
    assert evolution.unknown == ("x`; DROP TABLE t; --",)
    assert SESSION_MOVEMENTS.add_column_ddl("db", "ingested_at") == (
        "ALTER TABLE `db`.`session_movements` ADD COLUMN IF NOT EXISTS"
        " `ingested_at` DateTime64(3, 'UTC') DEFAULT now64(3) AFTER `source_offset`"
    )


@pytest.mark.parametrize("table", ALL_TABLES, ids=lambda t: t.name)
def test_the_tables_as_defined_need_nothing(table: TableSpec) -> None:
    found = {c.name: c.type for c in table.columns}
    evolution = plan(table, table.name, found)
    assert (evolution.add, evolution.unknown) == ((), ())


class _Borrowed:
    """The test's chDB client for ``migrate`` (a process holds one chDB store at a time)."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def __getattr__(self, name: str) -> object:
        return getattr(self._client, name)

    def close(self) -> None:
        pass


def test_migrate_applies_and_reports(
    chdb_client: Client,
    database: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("CLICKHOUSE_DATABASE", database)
    monkeypatch.setattr(migrate, "connect", lambda settings: _Borrowed(chdb_client))
    assert migrate.main(["--all"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"{job}: {table.qualified(database)} created" for job, table in TABLES_BY_JOB.items()
    ]

    newer = with_columns(SESSION_EVENTS, SPEED)
    monkeypatch.setattr(registry, "JOBS", with_events_table(newer))
    assert migrate.main(["--job", "events"]) == 0
    qualified = SESSION_EVENTS.qualified(database)
    assert capsys.readouterr().out == f"events: {qualified} added speed_kmh\n"
    assert migrate.main(["--job", "events"]) == 0
    assert capsys.readouterr().out == f"events: {qualified} up to date\n"

    changed = retyped(newer, "speed_kmh", "Nullable(Int64)")
    monkeypatch.setattr(registry, "JOBS", with_events_table(changed))
    assert migrate.main([]) == 1  # the others are fine, events is not
    out, err = capsys.readouterr()
    assert "base: " in out and "movements: " in out and "events" not in out
    assert "column speed_kmh is Nullable(Float64) in ClickHouse but Nullable(Int64)" in err


def test_migrate_refuses_an_unknown_job(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        migrate.main(["--job", "nope"])
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_hatch_run_migrate_creates_the_tables_in_the_embedded_store(tmp_path: Path) -> None:
    """The command as ``hatch run migrate`` runs it, on a store of its own (another process)."""
    env = {**os.environ, "CLICKHOUSE_EMBEDDED_PATH": str(tmp_path / "store")}
    done = subprocess.run(
        [sys.executable, "-m", "jupiter_common.migrate", "--all"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert [line.split(" ", 1)[0] for line in done.stdout.splitlines()] == [
        f"{job}:" for job in TABLES_BY_JOB
    ]
    assert all(line.endswith(" created") for line in done.stdout.splitlines())


def test_every_job_lands_the_table_its_registry_entry_names() -> None:
    for job in registry.jobs():
        spec = job.load()
        assert (spec.name, spec.table) == (job.name, job.table)
