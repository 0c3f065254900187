"""movements-job: every message that carries ``current_lat``/``current_lon`` becomes one
``session_movements`` row. Stateless: each Arrow batch of records is parsed and its pings are
inserted in one Python call, so it scales with ``FLINK_PARALLELISM`` alone."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from jupiter_common.flink.pipeline import Pipeline
from jupiter_common.flink.runner import JobSpec, run_job
from jupiter_common.flink.udfs import Columns
from jupiter_common.tables import SESSION_MOVEMENTS


def movement_columns(messages: Columns) -> Columns:
    """The ``session_movements`` columns of a batch's valid messages (their ``MESSAGE_FIELDS``
    columns): one row per GPS ping, each column named after its insert column."""
    pings = ~np.isnan(messages["current_lat"])  # a valid message has both or neither
    mask = pa.array(pings)
    return {
        "session_id": messages["session_id"].filter(mask),
        "vehicle_id": messages["vehicle_id"].filter(mask),
        "order_id": messages["order_id"].filter(mask),
        "timestamp": messages["timestamp_ms"][pings],
        "status": messages["status"].filter(mask),
        "lat": messages["current_lat"][pings],
        "lon": messages["current_lon"][pings],
        "source_partition": messages["source_partition"][pings],
        "source_offset": messages["source_offset"][pings],
    }


def build(pipeline: Pipeline) -> None:
    pipeline.parse_and_land(SESSION_MOVEMENTS, movement_columns)


JOB = JobSpec(name="movements", table=SESSION_MOVEMENTS, build=build)


def main(argv: Sequence[str] | None = None) -> int:
    return run_job(JOB, argv)


if __name__ == "__main__":
    raise SystemExit(main())
