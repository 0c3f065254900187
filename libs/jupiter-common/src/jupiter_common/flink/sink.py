"""The ClickHouse sink: rows buffered in Flink state, written in batches, never lost.

Python functions in PyFlink have no checkpoint hooks, so a plain in-memory buffer flushed on a
timer would lose its rows when the task dies between a checkpoint and the next flush. Here the
buffer *is* Flink keyed state (a ``ListState`` per writer subtask), so every checkpoint holds
exactly the rows read but not yet inserted, next to the Kafka offsets that produced them:

- a batch is inserted when it reaches ``SINK_BATCH_SIZE`` rows, when its oldest row has waited
  ``SINK_FLUSH_INTERVAL_MS`` (processing time), and at the end of a bounded input (an
  event-time timer at the end of time, fired by the final watermark);
- the interval is checked by a processing-time timer that is never set more than
  :data:`TICK_MS` ahead and is armed again by the first row after a start: a restored buffer is
  written within the *current* interval, also on a quiet stream and also when the interval was
  longer in the run that took the checkpoint;
- the buffer is cleared only after ClickHouse acknowledged the insert;
- after a failure, Flink restores the buffer and the offsets of the same checkpoint; the rows
  inserted after that checkpoint come again, and the writer leaves out those already in the
  table (:mod:`jupiter_common.landed`).

The result is exactly-once table contents by Kafka record: a crash leaves neither a gap nor a
duplicate, for plain queries too.
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

TICK_MS: Final = 1_000
"""The furthest ahead a flush timer is set; each firing re-checks the buffer's age."""


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
        self._oldest = runtime_context.get_state(
            ValueStateDescriptor("oldest-row-at", Types.LONG())
        )
        self._tick = runtime_context.get_state(ValueStateDescriptor("flush-tick", Types.LONG()))
        self._armed: set[int] = set()
        metrics = runtime_context.get_metrics_group().add_group("jupiter")
        self._rows_written = metrics.counter("rows_written")
        self._batches_written = metrics.counter("batches_written")
        self._insert_retries = metrics.counter("insert_retries")
        self._rows_already_landed = metrics.counter("rows_already_landed")
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
            self._flush(count)
            return
        self._count.update(count)
        timers = ctx.timer_service()
        if count == 1:
            self._oldest.update(timers.current_processing_time())
            timers.register_event_time_timer(END_OF_INPUT)
        if count == 1 or ctx.get_current_key() not in self._armed:
            self._arm(ctx)
        yield from ()

    def on_timer(self, timestamp: int, ctx: KeyedProcessFunction.OnTimerContext) -> Iterator[Any]:
        if self._tick.value() == timestamp:
            self._tick.clear()
        count = self._count.value() or 0
        if not count:
            return
        oldest = self._oldest.value() or 0
        now = ctx.timer_service().current_processing_time()
        if timestamp == END_OF_INPUT or now >= oldest + self._interval_ms:
            self._flush(count)
        else:
            self._arm(ctx)
        yield from ()

    def _arm(self, ctx: Any) -> None:
        """Make sure a processing-time timer fires by the time the oldest row is due, and at
        most :data:`TICK_MS` from now."""
        timers = ctx.timer_service()
        now = timers.current_processing_time()
        due = (self._oldest.value() or now) + self._interval_ms
        tick = min(due, now + TICK_MS)
        current = self._tick.value()
        self._armed.add(ctx.get_current_key())
        if current is not None and now < current <= tick:
            return
        timers.register_processing_time_timer(tick)
        self._tick.update(tick)

    def _flush(self, count: int) -> None:
        rows = list(self._rows.get())
        retries_before, skipped_before = self._writer.retries, self._writer.skipped
        try:
            self._writer.write(rows)
        finally:
            self._insert_retries.inc(self._writer.retries - retries_before)
        skipped = self._writer.skipped - skipped_before
        self._rows_already_landed.inc(skipped)
        self._rows_written.inc(len(rows) - skipped)
        self._batches_written.inc()
        self._rows.clear()
        self._count.clear()
        self._oldest.clear()
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
