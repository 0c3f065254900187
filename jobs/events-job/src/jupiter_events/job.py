"""events-job: one ``session_events`` row per status change, in arrival order per session.

Keyed by session, with two pieces of TTL'd state per session:

- ``last-status``: the status of the last message that was not a duplicate. A message whose
  status differs from it (or the session's first message: a change from nothing, with
  ``previous_status = ''``) is a change and becomes a row;
- ``seen``: the ``(timestamp, status)`` of every message of the session, so an exact duplicate
  is recognised wherever it arrives — right after the original, or after later messages
  (where it would otherwise look like a change back). A message with a new timestamp is never a
  duplicate: a real flip-flop A → B → A yields three rows.

"Arrival order" is Kafka order within the session's partition, so producers key records by
``session_id``. State is in checkpoints, so a restart from one neither repeats nor skips a
change. When a session's state has expired (``SESSION_STATE_TTL_MS`` after its last message),
its next message is a change from nothing again.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from pyflink.common import Types
from pyflink.datastream import KeyedProcessFunction, RuntimeContext
from pyflink.datastream.state import MapStateDescriptor, ValueStateDescriptor

from jupiter_common.flink.runner import JobSpec, Pipeline, run_job
from jupiter_common.flink.state import session_ttl
from jupiter_common.session_record import SessionRecord
from jupiter_common.settings import Settings
from jupiter_common.tables import SESSION_EVENTS


def event_row(record: SessionRecord, previous_status: str) -> tuple[object, ...]:
    """The ``session_events`` row, in ``SESSION_EVENTS.insert_columns`` order."""
    return (
        record.session_id,
        record.vehicle_id,
        record.order_id,
        record.timestamp_ms,
        record.status,
        previous_status,
        record.current_lat,
        record.current_lon,
        record.partition,
        record.offset,
    )


class StatusChanges(KeyedProcessFunction):  # type: ignore[misc]
    """Emits a row for each status change of a session, ignoring exact duplicates."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def open(self, runtime_context: RuntimeContext) -> None:
        ttl = session_ttl(self._settings)
        last = ValueStateDescriptor("last-status", Types.STRING())
        last.enable_time_to_live(ttl)
        seen = MapStateDescriptor("seen", Types.STRING(), Types.BOOLEAN())
        seen.enable_time_to_live(ttl)
        self._last = runtime_context.get_state(last)
        self._seen = runtime_context.get_map_state(seen)
        metrics = runtime_context.get_metrics_group().add_group("jupiter")
        self._changes = metrics.counter("status_changes")
        self._duplicates = metrics.counter("duplicates_ignored")

    def process_element(self, value: SessionRecord, ctx: Any) -> Iterator[tuple[object, ...]]:
        identity = f"{value.timestamp_ms}|{value.status}"
        if self._seen.contains(identity):
            self._duplicates.inc()
            return
        self._seen.put(identity, True)
        previous = self._last.value()
        if previous == value.status:
            return
        self._last.update(value.status)
        self._changes.inc()
        yield event_row(value, previous or "")


def build(pipeline: Pipeline) -> None:
    changes = (
        pipeline.keyed_sessions()
        .process(StatusChanges(pipeline.settings))
        .name("status-changes")
        .uid("status-changes")
    )
    pipeline.write(changes, SESSION_EVENTS)


JOB = JobSpec(name="events", table=SESSION_EVENTS, build=build)


def main(argv: Sequence[str] | None = None) -> int:
    return run_job(JOB, argv)


if __name__ == "__main__":
    raise SystemExit(main())
