"""movements-job: every message that carries ``current_lat``/``current_lon`` becomes one
``session_movements`` row. Stateless: no keyed state before the sink, so it scales with
``FLINK_PARALLELISM`` alone."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from jupiter_common.dead_letter import SourceRecord
from jupiter_common.flink.runner import JobSpec, Pipeline, run_job
from jupiter_common.schema import SessionMessage
from jupiter_common.tables import SESSION_MOVEMENTS


def movement_rows(message: SessionMessage, source: SourceRecord) -> Iterator[tuple[object, ...]]:
    """One row per GPS ping, in ``SESSION_MOVEMENTS.insert_columns`` order; none otherwise."""
    if message.current_lat is None or message.current_lon is None:
        return
    yield (
        str(message.session_id),
        str(message.vehicle_id),
        str(message.order_id),
        message.timestamp_ms,
        message.status,
        message.current_lat,
        message.current_lon,
        source.partition,
        source.offset,
    )


def build(pipeline: Pipeline) -> None:
    pipeline.write(pipeline.sessions(movement_rows), SESSION_MOVEMENTS)


JOB = JobSpec(name="movements", table=SESSION_MOVEMENTS, build=build)


def main(argv: Sequence[str] | None = None) -> int:
    return run_job(JOB, argv)


if __name__ == "__main__":
    raise SystemExit(main())
