"""ClickHouseWriter against the real ClickHouse engine (chDB): batching, retries, deduplication."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from typing import Any, Final, cast

import pytest
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError
from table_rows import write_rows

from jupiter_common.clickhouse import ensure_table
from jupiter_common.errors import ClickHouseWriteError
from jupiter_common.landed import Row
from jupiter_common.tables import SESSION_EVENTS, SESSION_MOVEMENTS, TableSpec
from jupiter_common.writer import (
    ClickHouseWriter,
    RetryPolicy,
    WriteResult,
    arrow_batch,
    is_transient,
)

T0_MS = 1_752_928_496_789  # 2025-07-19T12:34:56.789Z
TABLE = SESSION_MOVEMENTS
FAST = RetryPolicy(max_retries=5, backoff_ms=100, max_backoff_ms=300)


@pytest.fixture
def database(chdb_client: Client) -> Iterator[str]:
    """A fresh database holding an empty ``session_movements`` table."""
    name = f"test_{uuid.uuid4().hex}"
    ensure_table(chdb_client, TABLE, name)
    yield name
    chdb_client.command(f"DROP DATABASE IF EXISTS {name}")


class RecordingClient:
    """Seam: a thin proxy that forwards every call to the real chDB client and records each
    ``insert_arrow`` call (its keyword arguments, and the Arrow table as ``batch``) and the error
    the real client raised, if any."""

    def __init__(self, real: Client) -> None:
        self.real = real
        self.inserts: list[dict[str, Any]] = []
        self.errors: list[Exception] = []

    def insert_arrow(self, *args: Any, **kwargs: Any) -> Any:
        self.inserts.append({**kwargs, "batch": args[1]})
        try:
            return self.real.insert_arrow(*args, **kwargs)
        except Exception as exc:
            self.errors.append(exc)
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


class FailingFirst(RecordingClient):
    """Seam: raises ``OperationalError`` (what clickhouse-connect raises for a network failure,
    which the embedded engine cannot produce) on the first ``failures`` inserts, then forwards.
    With ``after_landing`` the insert is forwarded first and the error raised after it landed,
    like a timeout that hits after the server committed."""

    def __init__(self, real: Client, failures: int, *, after_landing: bool = False) -> None:
        super().__init__(real)
        self.failures = failures
        self.after_landing = after_landing

    def insert_arrow(self, *args: Any, **kwargs: Any) -> Any:
        if self.failures > 0 and not self.after_landing:
            self.failures -= 1
            self.inserts.append({**kwargs, "batch": args[1]})
            raise OperationalError("Error HTTPConnectionPool: Read timed out (injected)")
        result = super().insert_arrow(*args, **kwargs)
        if self.failures > 0:
            self.failures -= 1
            raise OperationalError("Error HTTPConnectionPool: Read timed out (injected)")
        return result


def as_client(proxy: RecordingClient) -> Client:
    return cast(Client, proxy)


def movement_rows(count: int, *, partition: int = 0, first_offset: int = 0) -> list[Row]:
    """Rows in ``session_movements`` insert order, in the form the movements job produces."""
    sessions = [str(uuid.uuid4()) for _ in range(3)]
    vehicle, order = str(uuid.uuid4()), str(uuid.uuid4())
    return [
        (
            sessions[i % 3],
            vehicle,
            order,
            T0_MS + 250 * i,
            ("en_route", "arrived", "started")[i % 3],
            40.0 + i / 1000,
            -73.0 - i / 1000,
            partition,
            first_offset + i,
        )
        for i in range(count)
    ]


def stored_rows(client: Client, database: str, *, final: bool = False) -> list[Row]:
    """Every row of the table, converted back to the writer's row form."""
    result = client.query(
        "SELECT toString(session_id), toString(vehicle_id), toString(order_id),"
        " toUnixTimestamp64Milli(timestamp), status, lat, lon, source_partition, source_offset"
        f" FROM {TABLE.qualified(database)} {'FINAL' if final else ''}"
        " ORDER BY source_partition, source_offset"
    )
    return [tuple(row) for row in result.result_rows]


def count(client: Client, database: str) -> int:
    return int(client.query(f"SELECT count() FROM {TABLE.qualified(database)}").result_rows[0][0])


def _no_sleep(seconds: float) -> None:
    raise AssertionError(f"unexpected sleep({seconds})")


def test_write_makes_one_insert_and_lands_every_row(chdb_client: Client, database: str) -> None:
    proxy = RecordingClient(chdb_client)
    writer = ClickHouseWriter(as_client(proxy), TABLE, database, FAST, sleep=_no_sleep)
    rows = movement_rows(250)
    result = write_rows(writer, rows)
    assert len(proxy.inserts) == 1
    call = proxy.inserts[0]
    assert call["batch"].schema == TABLE.arrow_schema
    assert call["database"] == database
    assert call["settings"]["insert_deduplication_token"] == _token(rows)
    assert stored_rows(chdb_client, database) == rows
    assert result == WriteResult(written=250, skipped=0, retries=0)


def test_a_batch_spanning_more_than_100_months_lands(chdb_client: Client, database: str) -> None:
    """ClickHouse refuses an insert block touching over 100 partitions by default; a backfill
    batch would then fail after every restart."""
    month_ms = 31 * 24 * 3600 * 1000
    rows = [(*row[:3], T0_MS - i * month_ms, *row[4:]) for i, row in enumerate(movement_rows(150))]
    write_rows(ClickHouseWriter(chdb_client, TABLE, database, FAST, sleep=_no_sleep), rows)
    assert count(chdb_client, database) == 150


def test_ingested_at_is_filled_by_clickhouse(chdb_client: Client, database: str) -> None:
    write_rows(ClickHouseWriter(chdb_client, TABLE, database, FAST), movement_rows(2))
    result = chdb_client.query(
        f"SELECT count() FROM {TABLE.qualified(database)}"
        " WHERE ingested_at > now64(3) - INTERVAL 1 HOUR"
    )
    assert result.result_rows == [(2,)]


def test_empty_batch_makes_no_insert(chdb_client: Client, database: str) -> None:
    proxy = RecordingClient(chdb_client)
    write_rows(ClickHouseWriter(as_client(proxy), TABLE, database, FAST, sleep=_no_sleep), [])
    assert proxy.inserts == []
    assert count(chdb_client, database) == 0


@pytest.mark.parametrize(
    ("failures", "delays"), [(1, [0.1]), (2, [0.1, 0.2]), (4, [0.1, 0.2, 0.3, 0.3])]
)
def test_operational_error_is_retried_with_exponential_backoff(
    chdb_client: Client, database: str, failures: int, delays: list[float]
) -> None:
    proxy = FailingFirst(chdb_client, failures)
    slept: list[float] = []
    writer = ClickHouseWriter(as_client(proxy), TABLE, database, FAST, sleep=slept.append)
    rows = movement_rows(20)
    result = write_rows(writer, rows)
    assert slept == delays
    assert slept == [FAST.delay_s(retry) for retry in range(failures)]
    assert len(proxy.inserts) == failures + 1
    assert result == WriteResult(written=20, skipped=0, retries=failures)
    assert stored_rows(chdb_client, database) == rows


def _limit_parts(client: Client, database: str, limit: int) -> None:
    client.command(
        f"ALTER TABLE {TABLE.qualified(database)} MODIFY SETTING"
        f" parts_to_throw_insert = {limit}, parts_to_delay_insert = {limit}"
    )


def test_transient_database_error_is_retried(chdb_client: Client, database: str) -> None:
    """A real TOO_MANY_PARTS (code 252) from the engine: the table may hold one part per
    partition and already has one. The injected sleep lifts the limit, as merges would."""
    first = movement_rows(1, first_offset=1000)
    write_rows(ClickHouseWriter(chdb_client, TABLE, database, FAST), first)
    _limit_parts(chdb_client, database, 1)
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        _limit_parts(chdb_client, database, 3000)

    proxy = RecordingClient(chdb_client)
    rows = movement_rows(30)
    write_rows(ClickHouseWriter(as_client(proxy), TABLE, database, FAST, sleep=sleep), rows)

    assert len(proxy.errors) == 1
    error = proxy.errors[0]
    assert type(error) is DatabaseError
    assert error.code == 252
    assert slept == [0.1]
    assert len(proxy.inserts) == 2
    assert stored_rows(chdb_client, database) == rows + first


def test_non_transient_database_error_is_not_retried(chdb_client: Client, database: str) -> None:
    """A real UNKNOWN_TABLE (code 60): the events table is dropped after the writer started."""
    proxy = RecordingClient(chdb_client)
    slept: list[float] = []
    ensure_table(chdb_client, SESSION_EVENTS, database)
    writer = ClickHouseWriter(as_client(proxy), SESSION_EVENTS, database, FAST, sleep=slept.append)
    rows = [(*row[:5], "started", *row[5:]) for row in movement_rows(8)]
    write_rows(writer, rows[:1])
    chdb_client.command(f"DROP TABLE {SESSION_EVENTS.qualified(database)}")
    proxy.inserts.clear()
    with pytest.raises(ClickHouseWriteError) as info:
        write_rows(writer, rows[1:])
    error = info.value
    assert (error.table, error.rows, error.attempts) == ("session_events", 7, 1)
    assert isinstance(error.__cause__, DatabaseError)
    assert error.__cause__.code == 60
    assert error.__cause__ is proxy.errors[0]
    assert SESSION_EVENTS.qualified(database) in str(error)
    assert "after 1 attempt(s)" in str(error)
    assert slept == []
    assert len(proxy.inserts) == 1


@pytest.mark.parametrize("max_retries", [0, 1, 3])
def test_retries_exhausted_raise(chdb_client: Client, database: str, max_retries: int) -> None:
    """A real TOO_MANY_PARTS (code 252) that never clears."""
    first = movement_rows(1, first_offset=1000)
    write_rows(ClickHouseWriter(chdb_client, TABLE, database, FAST), first)
    _limit_parts(chdb_client, database, 1)
    policy = RetryPolicy(max_retries=max_retries, backoff_ms=50, max_backoff_ms=10_000)
    proxy = RecordingClient(chdb_client)
    slept: list[float] = []
    writer = ClickHouseWriter(as_client(proxy), TABLE, database, policy, sleep=slept.append)
    with pytest.raises(ClickHouseWriteError) as info:
        write_rows(writer, movement_rows(4))
    error = info.value
    assert error.attempts == max_retries + 1
    assert (error.table, error.rows) == ("session_movements", 4)
    assert isinstance(error.__cause__, DatabaseError)
    assert error.__cause__.code == 252
    assert error.__cause__ is proxy.errors[-1]
    assert f"after {max_retries + 1} attempt(s)" in str(error)
    assert len(proxy.inserts) == max_retries + 1
    assert slept == [0.05 * 2**retry for retry in range(max_retries)]
    assert stored_rows(chdb_client, database) == first


def test_operational_error_past_the_limit_raises(chdb_client: Client, database: str) -> None:
    proxy = FailingFirst(chdb_client, 3)
    slept: list[float] = []
    policy = RetryPolicy(max_retries=2, backoff_ms=10)
    writer = ClickHouseWriter(as_client(proxy), TABLE, database, policy, sleep=slept.append)
    with pytest.raises(ClickHouseWriteError) as info:
        write_rows(writer, movement_rows(3))
    assert info.value.attempts == 3
    assert isinstance(info.value.__cause__, OperationalError)
    assert slept == [0.01, 0.02]
    assert count(chdb_client, database) == 0


def test_retry_of_an_insert_that_landed_does_not_duplicate(
    chdb_client: Client, database: str
) -> None:
    """Both attempts carry the same token, so the repeat is dropped. (ClickHouse's block hash
    would drop this identical repeat too; the next test isolates the token.)"""
    proxy = FailingFirst(chdb_client, 1, after_landing=True)
    slept: list[float] = []
    writer = ClickHouseWriter(as_client(proxy), TABLE, database, FAST, sleep=slept.append)
    rows = movement_rows(40)
    write_rows(writer, rows)
    assert len(proxy.inserts) == 2
    assert proxy.inserts[0]["settings"] == proxy.inserts[1]["settings"]
    assert slept == [0.1]
    assert stored_rows(chdb_client, database, final=False) == rows


def test_same_coordinates_with_other_content_are_not_dropped(
    chdb_client: Client, database: str
) -> None:
    """A topic deleted and created again reuses offsets: records with the same coordinates but
    other content are new records, not replays, and are written."""
    writer = ClickHouseWriter(chdb_client, TABLE, database, FAST)
    rows = movement_rows(10)
    recreated = [(*row[:5], row[5] + 1.0, *row[6:]) for row in rows]  # type: ignore[operator]
    assert _token(recreated) != _token(rows)
    write_rows(writer, rows)
    write_rows(ClickHouseWriter(chdb_client, TABLE, database, FAST), recreated)
    assert sorted(stored_rows(chdb_client, database, final=False)) == sorted(rows + recreated)


def test_a_different_batch_is_not_dropped(chdb_client: Client, database: str) -> None:
    writer = ClickHouseWriter(chdb_client, TABLE, database, FAST)
    first = movement_rows(5, partition=0)
    second = movement_rows(5, partition=1)
    write_rows(writer, first)
    write_rows(writer, second)
    assert stored_rows(chdb_client, database) == first + second


def _token(rows: Sequence[Row], table: TableSpec = TABLE) -> str:
    batch = arrow_batch(
        table, dict(zip(table.insert_columns, zip(*rows, strict=True), strict=True))
    )
    return ClickHouseWriter(cast(Client, None), table, "default", FAST).dedup_token(batch)


_TEMPLATE: Final = movement_rows(1)[0]


def _coords(*pairs: tuple[int, int]) -> list[Row]:
    return [(*_TEMPLATE[:-2], partition, offset) for partition, offset in pairs]


def test_dedup_token_is_equal_for_the_same_rows() -> None:
    rows = _coords((0, 1), (0, 2), (3, 7))
    assert _token(rows) == _token(list(rows))
    assert _token(rows) == _token(_coords((0, 1), (0, 2), (3, 7)))
    assert _token(rows).startswith("session_movements:3:")


def test_dedup_token_differs_for_other_content_at_the_same_coordinates() -> None:
    rows = _coords((0, 1), (0, 2))
    other = [rows[0], (*rows[1][:4], "arrived", *rows[1][5:])]
    assert _token(rows) != _token(other)


@pytest.mark.parametrize(
    "other",
    [
        [(0, 1), (0, 2), (3, 8)],  # one offset differs
        [(0, 1), (0, 2), (4, 7)],  # one partition differs
        [(0, 1), (0, 2)],  # a subset
        [(0, 1), (0, 2), (3, 7), (3, 8)],  # a superset
        [(0, 12), (3, 7)],  # "0:1,0:2" vs "0:12": no ambiguity from concatenation
        [(1, 0), (2, 0), (7, 3)],  # partition and offset swapped
    ],
)
def test_dedup_token_differs_for_different_coordinates(other: list[tuple[int, int]]) -> None:
    assert _token(_coords((0, 1), (0, 2), (3, 7))) != _token(_coords(*other))


def test_dedup_token_differs_between_tables() -> None:
    rows = _coords((0, 1))
    events_rows = [(*row[:5], "started", *row[5:]) for row in rows]
    assert _token(rows) != _token(events_rows, SESSION_EVENTS)


def test_dedup_token_is_equal_for_the_same_set_in_another_order() -> None:
    assert _token(_coords((0, 1), (1, 5), (0, 2))) == _token(_coords((1, 5), (0, 1), (0, 2)))


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (OperationalError("Network Error"), True),
        (DatabaseError("Code: 252. TOO_MANY_PARTS", code=252, name="TOO_MANY_PARTS"), True),
        (DatabaseError("Code: 209. SOCKET_TIMEOUT", code=209, name="SOCKET_TIMEOUT"), True),
        (DatabaseError("Code: 60. UNKNOWN_TABLE", code=60, name="UNKNOWN_TABLE"), False),
        (DatabaseError("Code: 62. SYNTAX_ERROR", code=62, name="SYNTAX_ERROR"), False),
        (DatabaseError("The ClickHouse server returned an error"), False),
        (ConnectionResetError(), True),
        (TimeoutError(), True),
        (ValueError("bad row"), False),
    ],
)
def test_is_transient(error: Exception, transient: bool) -> None:
    assert is_transient(error) is transient


def test_retry_policy_doubles_and_caps() -> None:
    policy = RetryPolicy(max_retries=10, backoff_ms=200, max_backoff_ms=1000)
    assert [policy.delay_s(retry) for retry in range(5)] == [0.2, 0.4, 0.8, 1.0, 1.0]
    assert RetryPolicy().delay_s(20) == 30.0
