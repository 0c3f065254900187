"""base-job: the first ``started`` message of a session becomes its ``sessions_base`` header.

Keyed by session, with one small piece of state per session (a TTL'd flag):

- unseen (no state): a ``started`` message writes the header and marks it written; any other
  status marks the session as *seen without a start* (metric ``sessions_without_started``);
- header written: every later message, a repeated or replayed ``started`` included, is ignored.

The flag is in checkpoints, so a restart from a checkpoint or savepoint never writes a second
header. When the flag has expired (``SESSION_STATE_TTL_MS`` after the session's last message),
a ``started`` for that session writes a header again; the table keeps one row per session and,
of two headers, the one with the earliest ``started_at`` (see ``SESSIONS_BASE``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Final

from pyflink.common import Types
from pyflink.datastream import KeyedProcessFunction, RuntimeContext
from pyflink.datastream.state import ValueStateDescriptor

from jupiter_common.flink.runner import JobSpec, Pipeline, run_job
from jupiter_common.flink.state import session_ttl
from jupiter_common.session_record import SessionRecord
from jupiter_common.settings import Settings
from jupiter_common.tables import SESSIONS_BASE

STARTED: Final = "started"
_SEEN_WITHOUT_START: Final = False
_HEADER_WRITTEN: Final = True


def header_row(record: SessionRecord) -> tuple[object, ...]:
    """The ``sessions_base`` row, in ``SESSIONS_BASE.insert_columns`` order."""
    return (
        record.session_id,
        record.vehicle_id,
        record.order_id,
        record.timestamp_ms,
        record.start_lat,
        record.start_lon,
        record.end_lat,
        record.end_lon,
        record.partition,
        record.offset,
    )


class FirstStarted(KeyedProcessFunction):  # type: ignore[misc]
    """Emits a session's header once, from its first ``started`` message."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def open(self, runtime_context: RuntimeContext) -> None:
        descriptor = ValueStateDescriptor("header", Types.BOOLEAN())
        descriptor.enable_time_to_live(session_ttl(self._settings))
        self._header = runtime_context.get_state(descriptor)
        metrics = runtime_context.get_metrics_group().add_group("jupiter")
        self._headers = metrics.counter("headers")
        self._without_start = metrics.counter("sessions_without_started")

    def process_element(self, value: SessionRecord, ctx: Any) -> Iterator[tuple[object, ...]]:
        state = self._header.value()
        if state == _HEADER_WRITTEN:
            return
        if value.status != STARTED:
            if state is None:
                self._header.update(_SEEN_WITHOUT_START)
                self._without_start.inc()
            return
        if state == _SEEN_WITHOUT_START:
            self._without_start.dec()
        self._header.update(_HEADER_WRITTEN)
        self._headers.inc()
        yield header_row(value)


def build(pipeline: Pipeline) -> None:
    headers = (
        pipeline.keyed_sessions()
        .process(FirstStarted(pipeline.settings))
        .name("first-started")
        .uid("first-started")
    )
    pipeline.write(headers, SESSIONS_BASE)


JOB = JobSpec(name="base", table=SESSIONS_BASE, build=build)


def main(argv: Sequence[str] | None = None) -> int:
    return run_job(JOB, argv)


if __name__ == "__main__":
    raise SystemExit(main())
