"""Columnar, batched inserts into one ClickHouse table, with bounded retries.

The writer is the only place Jupiter inserts rows. It takes a whole batch (never one row) as
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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from jupiter_common.errors import ClickHouseWriteError
from jupiter_common.landed import LandedRows, Row
from jupiter_common.tables import TableSpec

log = logging.getLogger(__name__)

__all__ = ["ClickHouseWriter", "RetryPolicy", "Row", "arrow_batch", "is_transient"]

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
    """Writes batches of rows to one table: Arrow tables in ``table.arrow_schema``, or row
    tuples in ``table.insert_columns`` order.

    Create it when the job's writing task starts: it reads which rows the table already holds
    (see :class:`LandedRows`) before it inserts anything.
    """

    def __init__(
        self,
        client: Client,
        table: TableSpec,
        database: str,
        retry: RetryPolicy,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._table = table
        self._database = database
        self._retry = retry
        self._sleep = sleep
        self._landed = LandedRows(client, table, database)
        self.retries = 0
        """Retries made so far, over the writer's life (for metrics)."""
        self.skipped = 0
        """Rows left out because the table already held them, over the writer's life."""

    def write(self, rows: Sequence[Row]) -> None:
        """Insert the rows (tuples in ``insert_columns`` order) not yet in the table."""
        names = self._table.insert_columns
        columns = zip(*rows, strict=True) if rows else ([] for _ in names)
        self.write_table(arrow_batch(self._table, dict(zip(names, columns, strict=True))))

    def write_table(self, batch: pa.Table) -> None:
        """Insert the rows of ``batch`` (see :func:`arrow_batch`) not yet in the table as one
        insert. Raises :class:`ClickHouseWriteError`."""
        if batch.num_rows == 0:
            return
        target = self._table.qualified(self._database)
        fresh = self._retrying(
            f"checking which of {batch.num_rows} rows are already in {target}",
            batch.num_rows,
            lambda: self._landed.new_rows(batch),
        )
        self.skipped += batch.num_rows - fresh.num_rows
        if fresh.num_rows == 0:
            return
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
                self.retries += 1
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
