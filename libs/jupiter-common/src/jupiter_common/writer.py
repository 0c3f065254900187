"""Where a job's rows go: the :class:`TableWriter` protocol, and its ClickHouse implementation,
columnar batched inserts into one table with bounded retries.

A job's writing function (:mod:`jupiter_common.flink.udfs`) holds a :class:`TableWriter` and
hands it each batch Flink gives it; when batches are cut (the flush policy) is Flink's bundle
policy (:func:`~jupiter_common.flink.environment.bundle_time_ms`), not the writer's. Another
store, or a fake in a test, is another :class:`TableWriter` and an :data:`OpenWriter`.

:class:`ClickHouseWriter` is the only place Jupiter inserts rows. It takes a whole batch (never one row) as
columns, makes it one Arrow table in the table's insert schema and sends one ``INSERT ...
FORMAT Arrow``. Transient failures (network, timeouts, too many parts, memory pressure ...) are
retried with exponential backoff up to a limit; anything else, or a transient failure past the
limit, raises :class:`ClickHouseWriteError` so the Flink task fails and restarts from its last
checkpoint, which reads the batch's records again.

Each batch carries an ``insert_deduplication_token`` made from its rows, so a retry of an insert
that did land (a timeout after the server committed, say) is dropped by ClickHouse instead of
written twice. Rows that an earlier run of the job already inserted (replayed after a restart)
are left out of the batch (:class:`LandedRows`), so a crash leaves no duplicate that a plain
query sees.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from jupiter_common.clickhouse import connect
from jupiter_common.errors import ClickHouseWriteError
from jupiter_common.landed import LandedRows
from jupiter_common.settings import Settings
from jupiter_common.tables import TableSpec

log = logging.getLogger(__name__)

__all__ = [
    "ClickHouseWriter",
    "OpenWriter",
    "RetryPolicy",
    "TableWriter",
    "WriteResult",
    "arrow_batch",
    "is_transient",
    "open_clickhouse_writer",
]

_T = TypeVar("_T")

# ClickHouse error codes worth retrying: the same insert can succeed a moment later.
TRANSIENT_ERROR_CODES: Final = frozenset(
    {
        3,  # UNEXPECTED_END_OF_FILE
        32,  # ATTEMPT_TO_READ_AFTER_EOF
        159,  # TIMEOUT_EXCEEDED
        202,  # TOO_MANY_SIMULTANEOUS_QUERIES
        203,  # NO_FREE_CONNECTION
        209,  # SOCKET_TIMEOUT
        210,  # NETWORK_ERROR
        241,  # MEMORY_LIMIT_EXCEEDED
        242,  # TABLE_IS_READ_ONLY
        252,  # TOO_MANY_PARTS
        285,  # TOO_FEW_LIVE_REPLICAS
        319,  # UNKNOWN_STATUS_OF_INSERT
        425,  # SYSTEM_ERROR
        999,  # KEEPER_EXCEPTION
    }
)


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What one :meth:`TableWriter.write` did: rows inserted, rows left out because the table
    already held them, and retries it took."""

    written: int
    skipped: int = 0
    retries: int = 0


class TableWriter(Protocol):
    """Writes batches of one table's rows, synchronously: when :meth:`write` returns, the rows
    are stored (a Flink checkpoint relies on it). Raises a :class:`JupiterError` subclass when
    they cannot be, so the task fails and restarts from its last checkpoint."""

    def write(self, batch: pa.Table) -> WriteResult:
        """Store ``batch`` (columns by name in the table's insert schema, see
        :func:`arrow_batch`)."""
        ...

    def close(self) -> None:
        """Release connections; called once when the task ends."""
        ...


OpenWriter = Callable[[Settings, TableSpec], TableWriter]
"""Opens a job task's writer for a table; called in the task (after pickling), so it must be a
module-level function."""


def open_clickhouse_writer(settings: Settings, table: TableSpec) -> ClickHouseWriter:
    """The writer every job uses: a :class:`ClickHouseWriter` on its own client."""
    retry = RetryPolicy(settings.sink_max_retries, settings.sink_retry_backoff_ms)
    return ClickHouseWriter(
        connect(settings), table, settings.clickhouse_database, retry, owns_client=True
    )


def is_transient(exc: BaseException) -> bool:
    """True when retrying the same insert may succeed."""
    if isinstance(exc, OperationalError):
        return True
    if isinstance(exc, DatabaseError):
        return getattr(exc, "code", None) in TRANSIENT_ERROR_CODES
    return isinstance(exc, ConnectionError | TimeoutError)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``max_retries`` retries after the first attempt, waiting ``backoff_ms`` doubled each
    time and capped at ``max_backoff_ms``."""

    max_retries: int = 5
    backoff_ms: int = 200
    max_backoff_ms: int = 30_000

    def delay_s(self, retry: int) -> float:
        return float(min(self.backoff_ms * 2**retry, self.max_backoff_ms)) / 1000.0


def arrow_batch(table: TableSpec, columns: Mapping[str, Any]) -> pa.Table:
    """The insert columns of ``table`` as one Arrow table in its insert schema.

    A column may be an Arrow array, a pandas Series, a numpy array or a list; timestamps are
    epoch milliseconds (or Arrow timestamps), ``None``/NaN is NULL for a nullable column.
    Columns are taken by name, so their order does not matter; a missing or an extra one raises
    :class:`~jupiter_common.errors.RowColumnsError`.
    """
    table.check_columns(columns, what="the columns of a batch", ordered=False)
    schema = table.arrow_schema
    return pa.table(
        [_arrow_column(columns[field.name], field.type) for field in schema], schema=schema
    )


def _arrow_column(values: Any, kind: pa.DataType) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if isinstance(values, pa.Array):
        if pa.types.is_timestamp(kind) and pa.types.is_integer(values.type):
            values = values.cast(pa.int64())
        return values if values.type == kind else values.cast(kind)
    if isinstance(values, pd.Series):
        values = values.to_numpy()
    if pa.types.is_timestamp(kind):
        return pa.array(np.asarray(values, dtype=np.int64), pa.int64()).cast(kind)
    return pa.array(values, kind, from_pandas=True)


class ClickHouseWriter:
    """The :class:`TableWriter` of a ClickHouse table: each batch one ``INSERT ... FORMAT
    Arrow``.

    Create it when the job's writing task starts: it reads which rows the table already holds
    (see :class:`LandedRows`) before it inserts anything. ``owns_client``: :meth:`close` closes
    the client too.
    """

    def __init__(
        self,
        client: Client,
        table: TableSpec,
        database: str,
        retry: RetryPolicy,
        *,
        sleep: Callable[[float], None] = time.sleep,
        owns_client: bool = False,
    ) -> None:
        self._client = client
        self._table = table
        self._database = database
        self._retry = retry
        self._sleep = sleep
        self._owns_client = owns_client
        self._landed = LandedRows(client, table, database)
        self._retries = 0

    @property
    def table(self) -> TableSpec:
        return self._table

    def write(self, batch: pa.Table) -> WriteResult:
        """Insert the rows of ``batch`` (see :func:`arrow_batch`) not yet in the table as one
        insert. Raises :class:`ClickHouseWriteError`."""
        if batch.num_rows == 0:
            return WriteResult(0)
        self._retries = 0
        target = self._table.qualified(self._database)
        fresh = self._retrying(
            f"checking which of {batch.num_rows} rows are already in {target}",
            batch.num_rows,
            lambda: self._landed.new_rows(batch),
        )
        skipped = batch.num_rows - fresh.num_rows
        if fresh.num_rows == 0:
            return WriteResult(0, skipped, self._retries)
        fresh = _in_offset_order(fresh)
        settings = {
            "insert_deduplication_token": self.dedup_token(fresh),
            # A batch spanning more than 100 months (a backfill) is written, not refused.
            "throw_on_max_partitions_per_insert_block": 0,
        }
        self._retrying(
            f"insert of {fresh.num_rows} rows into {target}",
            fresh.num_rows,
            lambda: self._client.insert_arrow(
                self._table.name, fresh, database=self._database, settings=settings
            ),
        )
        return WriteResult(fresh.num_rows, skipped, self._retries)

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def _retrying(self, what: str, rows: int, call: Callable[[], _T]) -> _T:
        """``call()``, retried on transient errors as the policy says."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return call()
            except Exception as exc:
                retry = attempt - 1
                if not is_transient(exc) or retry >= self._retry.max_retries:
                    raise ClickHouseWriteError(
                        f"{what} failed after {attempt} attempt(s): {exc}",
                        table=self._table.name,
                        rows=rows,
                        attempts=attempt,
                    ) from exc
                delay = self._retry.delay_s(retry)
                log.warning(
                    "%s failed (%s); retry %d/%d in %.2fs",
                    what,
                    exc,
                    attempt,
                    self._retry.max_retries,
                    delay,
                )
                self._retries += 1
                self._sleep(delay)

    def dedup_token(self, batch: pa.Table) -> str:
        """A token naming exactly these rows, whatever their order: a digest of their Arrow
        data in Kafka order.

        Content counts, not only Kafka coordinates: a topic deleted and created again reuses
        coordinates, and its records must not be taken for the ones written under them.
        """
        digest = hashlib.blake2b(digest_size=16)
        for column in _in_offset_order(batch).combine_chunks().columns:
            for chunk in column.chunks:
                for buffer in chunk.buffers():
                    if buffer is not None:
                        digest.update(buffer)
        return f"{self._table.name}:{batch.num_rows}:{digest.hexdigest()}"


def _in_offset_order(batch: pa.Table) -> pa.Table:
    return batch.sort_by([("source_partition", "ascending"), ("source_offset", "ascending")])
