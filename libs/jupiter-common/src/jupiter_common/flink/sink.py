"""The ClickHouse sink: rows buffered in Flink state, written in batches, never lost.

Python functions in PyFlink have no checkpoint hooks, so a plain in-memory buffer flushed on a
timer would lose its rows when the task dies between a checkpoint and the next flush. Here the
buffer *is* Flink keyed state (a ``ListState`` per writer subtask), so every checkpoint holds
exactly the rows read but not yet inserted, next to the Kafka offsets that produced them:

- a batch is inserted when it reaches ``SINK_BATCH_SIZE`` rows, when ``SINK_FLUSH_INTERVAL_MS``
  has passed since its first row (a processing-time timer, itself checkpointed), and at the end
  of a bounded input (an event-time timer at the end of time, fired by the final watermark);
- the buffer is cleared only after ClickHouse acknowledged the insert;
- after a failure, Flink restores the buffer and the offsets of the same checkpoint: rows
  inserted after that checkpoint are inserted again, and the tables' ``ReplacingMergeTree``
  keys (plus per-batch insert deduplication tokens) make the repeat invisible.

The result is at-least-once delivery into ClickHouse and exactly-once table contents by
business key, for queries that read with ``FINAL``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any, Final

from pyflink.common import Types
from pyflink.datastream import DataStream, KeyedProcessFunction, KeySelector, RuntimeContext
from pyflink.datastream.state import ListStateDescriptor, ValueStateDescriptor

from jupiter_common.clickhouse import connect, ensure_table
from jupiter_common.flink.sharding import shard_keys, shard_of
from jupiter_common.settings import Settings
from jupiter_common.tables import TableSpec
from jupiter_common.writer import ClickHouseWriter, RetryPolicy

log = logging.getLogger(__name__)

END_OF_INPUT: Final = (1 << 63) - 2
"""An event-time timer here fires only on the final watermark of a bounded input."""


class ShardBySession(KeySelector):  # type: ignore[misc]
    """Keys each row (session id first) by the writer subtask that will buffer it."""

    def __init__(self, parallelism: int, max_parallelism: int) -> None:
        self._keys = shard_keys(parallelism, max_parallelism)

    def get_key(self, value: Any) -> int:
        return shard_of(str(value[0]), self._keys)


class ClickHouseSink(KeyedProcessFunction):  # type: ignore[misc]
    """Buffers rows in keyed state and writes them with :class:`ClickHouseWriter`."""

    def __init__(self, settings: Settings, table: TableSpec) -> None:
        self._settings = settings
        self._table = table
        self._batch_size = settings.sink_batch_size
        self._interval_ms = settings.sink_flush_interval_ms

    def open(self, runtime_context: RuntimeContext) -> None:
        logging.getLogger().setLevel(self._settings.log_level)
        self._rows = runtime_context.get_list_state(
            ListStateDescriptor("buffered-rows", Types.PICKLED_BYTE_ARRAY())
        )
        self._count = runtime_context.get_state(
            ValueStateDescriptor("buffered-count", Types.LONG())
        )
        self._timer = runtime_context.get_state(ValueStateDescriptor("flush-timer", Types.LONG()))
        metrics = runtime_context.get_metrics_group().add_group("jupiter")
        self._rows_written = metrics.counter("rows_written")
        self._batches_written = metrics.counter("batches_written")
        self._insert_retries = metrics.counter("insert_retries")
        self._client = connect(self._settings)
        database = self._settings.clickhouse_database
        ensure_table(self._client, self._table, database)
        retry = RetryPolicy(self._settings.sink_max_retries, self._settings.sink_retry_backoff_ms)
        self._writer = ClickHouseWriter(self._client, self._table, database, retry)

    def close(self) -> None:
        client = getattr(self, "_client", None)
        if client is not None:
            client.close()

    def process_element(self, value: Any, ctx: KeyedProcessFunction.Context) -> Iterator[Any]:
        self._rows.add(value)
        count = (self._count.value() or 0) + 1
        if count >= self._batch_size:
            self._flush(ctx, count)
            return
        self._count.update(count)
        if count == 1:
            timers = ctx.timer_service()
            deadline = timers.current_processing_time() + self._interval_ms
            timers.register_processing_time_timer(deadline)
            timers.register_event_time_timer(END_OF_INPUT)
            self._timer.update(deadline)
        yield from ()

    def on_timer(self, timestamp: int, ctx: KeyedProcessFunction.OnTimerContext) -> Iterator[Any]:
        count = self._count.value() or 0
        if count:
            self._flush(ctx, count)
        yield from ()

    def _flush(self, ctx: Any, count: int) -> None:
        rows = list(self._rows.get())
        retries_before = self._writer.retries
        try:
            self._writer.write(rows)
        finally:
            self._insert_retries.inc(self._writer.retries - retries_before)
        self._rows_written.inc(len(rows))
        self._batches_written.inc()
        self._rows.clear()
        self._count.clear()
        deadline = self._timer.value()
        if deadline is not None:
            ctx.timer_service().delete_processing_time_timer(deadline)
            self._timer.clear()
        log.debug("wrote %d rows to %s (count %d)", len(rows), self._table.name, count)


def write_to_clickhouse(rows: DataStream, table: TableSpec, settings: Settings) -> None:
    """Attach the ClickHouse sink for ``table`` to ``rows`` (tuples in insert-column order,
    the session id first)."""
    parallelism = settings.writer_parallelism
    keyed = rows.key_by(
        ShardBySession(parallelism, settings.flink_max_parallelism), key_type=Types.INT()
    )
    (
        keyed.process(ClickHouseSink(settings, table))
        .name(f"clickhouse-{table.name}")
        .uid(f"clickhouse-sink-{table.name}")
        .set_parallelism(parallelism)
    )
