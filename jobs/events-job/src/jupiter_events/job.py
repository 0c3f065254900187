"""events-job: one ``session_events`` row per status change, in arrival order per session.

The valid messages, partitioned by session in Kafka order, go through ``status_changes``
(``dev.jupiter.functions.StatusChanges``, per-session state in the JVM). A message is a change,
and a row with the session's previous status (``''`` for its first message), when its status
differs from the last one; an exact duplicate of an earlier message, wherever it arrives, is
not. Per session the state is the last status and one *run* per change (its status and the
smallest and largest timestamp of that status's messages since), so it grows with the changes
of a session, not with its messages; a message whose timestamp lies inside an earlier run of its
own status counts as a duplicate.

"Arrival order" is Kafka order within the session's partition, so producers key records by
``session_id``. State is in checkpoints, so a restart from one neither repeats nor skips a
change. When a session's state has expired (``SESSION_STATE_TTL_MS`` after its last message),
its next message is a change from nothing again.
"""

from __future__ import annotations

from collections.abc import Sequence

from jupiter_common.flink.pipeline import Pipeline
from jupiter_common.flink.runner import JobSpec, run_job
from jupiter_common.tables import SESSION_EVENTS


def rows(valid: str) -> str:
    """The ``session_events`` rows of the valid messages in the view ``valid``: one column per
    insert column of the table, named after it."""
    return (
        "SELECT session_id, vehicle_id, order_id, timestamp_ms AS `timestamp`, status,"
        " previous_status, current_lat AS lat, current_lon AS lon, source_partition,"
        " source_offset"
        f" FROM status_changes(input => TABLE {valid} PARTITION BY session_id)"
    )


def build(pipeline: Pipeline) -> None:
    pipeline.land(SESSION_EVENTS, rows(pipeline.valid_messages()))


JOB = JobSpec(name="events", table=SESSION_EVENTS, build=build)


def main(argv: Sequence[str] | None = None) -> int:
    return run_job(JOB, argv)


if __name__ == "__main__":
    raise SystemExit(main())
