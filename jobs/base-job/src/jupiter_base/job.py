"""base-job: the first ``started`` message of a session becomes its ``sessions_base`` header.

The valid messages, partitioned by session in Kafka order, go through ``first_started``
(``dev.jupiter.functions.FirstStarted``, per-session state in the JVM): it passes on a
session's first ``started`` message and nothing else of the session, a repeated or replayed
``started`` included. Its one flag per session is in every checkpoint, so a restart from a
checkpoint or savepoint never writes a second header. The flag lives ``SESSION_STATE_TTL_MS``
after the session's last message; after that a ``started`` for the session writes a header
again, and the table keeps one row per session: of two headers, the one with the earliest
``started_at`` (see ``SESSIONS_BASE``).
"""

from __future__ import annotations

from collections.abc import Sequence

from jupiter_common.flink.pipeline import Pipeline
from jupiter_common.flink.runner import JobSpec, run_job
from jupiter_common.tables import SESSIONS_BASE


def rows(valid: str) -> str:
    """The ``sessions_base`` rows of the valid messages in the view ``valid``: one column per
    insert column of the table, named after it."""
    return (
        "SELECT session_id, vehicle_id, order_id, timestamp_ms AS started_at, start_lat,"
        " start_lon, end_lat, end_lon, source_partition, source_offset"
        f" FROM first_started(input => TABLE {valid} PARTITION BY session_id)"
    )


def build(pipeline: Pipeline) -> None:
    pipeline.land(SESSIONS_BASE, rows(pipeline.valid_messages()))


JOB = JobSpec(name="base", table=SESSIONS_BASE, build=build)


def main(argv: Sequence[str] | None = None) -> int:
    return run_job(JOB, argv)


if __name__ == "__main__":
    raise SystemExit(main())
