"""movements-job: every message that carries ``current_lat``/``current_lon`` becomes one
``session_movements`` row. Stateless: each Arrow batch of records is parsed and its pings are
inserted in one Python call, so it scales with ``FLINK_PARALLELISM`` alone."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

from jupiter_common.batch_parsing import ParsedBatch
from jupiter_common.flink.pipeline import Pipeline
from jupiter_common.flink.runner import JobSpec, run_job
from jupiter_common.flink.udfs import Offsets
from jupiter_common.tables import SESSION_MOVEMENTS


def movement_columns(
    batch: ParsedBatch, partitions: Offsets, offsets: Offsets
) -> Mapping[str, Any]:
    """The ``session_movements`` columns of a parsed batch: one row per GPS ping."""
    pings = batch.has_position
    mask = pa.array(pings)
    return {
        "session_id": batch.session_id.filter(mask),
        "vehicle_id": batch.vehicle_id.filter(mask),
        "order_id": batch.order_id.filter(mask),
        "timestamp": batch.timestamp_ms[pings],
        "status": batch.status.filter(mask),
        "lat": batch.current_lat[pings],
        "lon": batch.current_lon[pings],
        "source_partition": partitions[pings],
        "source_offset": offsets[pings],
    }


def build(pipeline: Pipeline) -> None:
    pipeline.parse_and_land(SESSION_MOVEMENTS, movement_columns)


JOB = JobSpec(name="movements", table=SESSION_MOVEMENTS, build=build)


def main(argv: Sequence[str] | None = None) -> int:
    return run_job(JOB, argv)


if __name__ == "__main__":
    raise SystemExit(main())
