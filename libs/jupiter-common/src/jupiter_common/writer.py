"""Columnar, batched inserts into one ClickHouse table, with bounded retries.

The writer is the only place Jupiter inserts rows. It takes a whole batch (never one row), turns
it into columns and sends one ``INSERT``. Transient failures (network, timeouts, too many parts,
memory pressure ...) are retried with exponential backoff up to a limit; anything else, or a
transient failure past the limit, raises :class:`ClickHouseWriteError` so the Flink task fails
and restarts from its last checkpoint with the batch still in state.

Each batch carries an ``insert_deduplication_token`` derived from the Kafka coordinates of its
rows, so a retry of an insert that did land (a timeout after the server committed, say) is
dropped by ClickHouse instead of written twice. Rows that an earlier run of the job already
inserted (replayed after a restart) are left out of the batch (:class:`LandedRows`), so a crash
leaves no duplicate that a plain query sees.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, TypeVar

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from jupiter_common.errors import ClickHouseWriteError
from jupiter_common.landed import LandedRows, Row
from jupiter_common.tables import TableSpec

log = logging.getLogger(__name__)

__all__ = ["ClickHouseWriter", "RetryPolicy", "Row", "is_transient"]

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


class ClickHouseWriter:
    """Writes batches of row tuples (in ``table.insert_columns`` order) to one table.

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
        self._partition_at = table.column_index("source_partition")
        self._offset_at = table.column_index("source_offset")
        self._landed = LandedRows(client, table, database)
        self.retries = 0
        """Retries made so far, over the writer's life (for metrics)."""
        self.skipped = 0
        """Rows left out because the table already held them, over the writer's life."""

    def write(self, batch: Sequence[Row]) -> None:
        """Insert the rows of ``batch`` not yet in the table as one columnar batch.
        Raises :class:`ClickHouseWriteError`."""
        if not batch:
            return
        target = self._table.qualified(self._database)
        rows = self._retrying(
            f"checking which of {len(batch)} rows are already in {target}",
            len(batch),
            lambda: self._landed.not_landed(batch),
        )
        self.skipped += len(batch) - len(rows)
        if not rows:
            return
        columns = [list(column) for column in zip(*rows, strict=True)]
        settings = {
            "insert_deduplication_token": self.dedup_token(rows),
            # A batch spanning more than 100 months (a backfill) is written, not refused.
            "throw_on_max_partitions_per_insert_block": 0,
        }
        self._retrying(
            f"insert of {len(rows)} rows into {target}",
            len(rows),
            lambda: self._client.insert(
                self._table.name,
                columns,
                column_names=self._table.insert_columns,
                database=self._database,
                column_oriented=True,
                settings=settings,
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

    def dedup_token(self, rows: Sequence[Row]) -> str:
        """A token naming exactly these rows: their Kafka coordinates and their content.

        The content counts too: a topic deleted and created again reuses coordinates, and its
        records must not be taken for the ones already written under the same offsets.
        """
        digest = hashlib.blake2b(digest_size=16)
        p, o = self._partition_at, self._offset_at
        ordered = sorted(rows, key=lambda row: (int(row[p]), int(row[o])))  # type: ignore[call-overload]
        for row in ordered:
            digest.update(repr(row).encode())
            digest.update(b"\n")
        return f"{self._table.name}:{len(rows)}:{digest.hexdigest()}"
