"""Each job's rows are its table's insert columns, as Flink's planner sees the job's statements.

How: a child process (this file run as a script) builds each job's real statements with its
real ``build`` function on a real ``Pipeline`` and table environment, and never executes them.
Flink's planner names the columns of base-job's and events-job's queries (their Java functions'
pass-through and output columns included), and ``Pipeline.land`` checks them; movements-job's
row function is tried on an empty batch by ``Pipeline.parse_and_land``. Only the dead-letter
topic check is left out (a Kafka admin request); planning does not contact Kafka. The child
starts a JVM, so this module takes about 10 s (one JVM for the three jobs), and it needs what
``bash infra/local/setup.sh`` fetches (the jars ``FLINK_CONNECTOR_JARS`` names). The checks
themselves are tested fast, over a stand-in environment, in ``test_rows.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Final

import pytest

from jupiter_common.tables import SESSION_EVENTS, SESSION_MOVEMENTS, SESSIONS_BASE

MARK: Final = "JOB_ROWS "
UNALIASED: Final = (
    "SELECT session_id, vehicle_id, order_id, timestamp_ms, status, previous_status,"
    " current_lat, current_lon, source_partition, source_offset"
    " FROM status_changes(input => TABLE valid_messages PARTITION BY session_id)"
)
"""events-job's query as it was when columns were mapped by position."""


def _no_dead_letter_topic_check(settings: object, topic_limit: object = None) -> None:
    pass


def plan_jobs() -> dict[str, dict[str, Any]]:
    """In the child: build every job against the planner; what each lands, and any error."""
    from jupiter_base import job as base_job
    from jupiter_common.errors import JupiterError
    from jupiter_common.flink import pipeline as pipeline_module
    from jupiter_common.flink.environment import create_environment
    from jupiter_common.flink.pipeline import Pipeline
    from jupiter_common.flink.udfs import message_columns
    from jupiter_common.settings import load_settings
    from jupiter_events import job as events_job
    from jupiter_movements import job as movements_job

    setattr(pipeline_module, "check_dead_letter_topic", _no_dead_letter_topic_check)  # noqa: B010
    report: dict[str, dict[str, Any]] = {}
    for module in (base_job, events_job, movements_job):
        spec = module.JOB
        settings = load_settings(spec.name)
        _, t_env = create_environment(settings)
        pipeline = Pipeline(settings, t_env)
        entry: dict[str, Any] = {"table": spec.table.name}
        try:
            spec.build(pipeline)
            entry["built"] = True
        except JupiterError as exc:
            entry["built"] = False
            entry["error"] = str(exc)
        if module is movements_job:
            import numpy as np

            from jupiter_common.batch_parsing import parse_batch

            none = np.zeros(0, dtype=np.int64)
            rows = module.movement_columns(
                message_columns(parse_batch([]), none, none, only_valid=True)
            )
            entry["columns"] = list(rows)
        else:
            query = t_env.sql_query(module.rows(pipeline_module.VALID_MESSAGES))
            entry["columns"] = list(query.get_resolved_schema().get_column_names())
        if module is events_job:
            try:
                pipeline.land(spec.table, UNALIASED)
                entry["unaliased"] = "accepted"
            except JupiterError as exc:
                entry["unaliased"] = str(exc)
        report[spec.name] = entry
    return report


@pytest.fixture(scope="module")
def planned() -> dict[str, dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve())],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith(MARK)]
    assert done.returncode == 0 and lines, done.stderr[-4000:] + done.stdout[-2000:]
    report: dict[str, dict[str, Any]] = json.loads(lines[-1].removeprefix(MARK))
    return report


def test_base_job_lands_the_insert_columns_of_sessions_base(
    planned: dict[str, dict[str, Any]],
) -> None:
    base = planned["base"]
    assert base == {**base, "table": SESSIONS_BASE.name, "built": True}
    assert tuple(base["columns"]) == SESSIONS_BASE.insert_columns


def test_events_job_lands_the_insert_columns_of_session_events(
    planned: dict[str, dict[str, Any]],
) -> None:
    events = planned["events"]
    assert events == {**events, "table": SESSION_EVENTS.name, "built": True}
    assert tuple(events["columns"]) == SESSION_EVENTS.insert_columns


def test_movements_job_lands_the_insert_columns_of_session_movements(
    planned: dict[str, dict[str, Any]],
) -> None:
    movements = planned["movements"]
    assert movements == {**movements, "table": SESSION_MOVEMENTS.name, "built": True}
    assert tuple(movements["columns"]) == SESSION_MOVEMENTS.insert_columns


def test_a_query_with_the_old_positional_columns_is_refused_when_built(
    planned: dict[str, dict[str, Any]],
) -> None:
    refused = planned["events"]["unaliased"]
    assert refused.startswith(
        "the columns of the query landed in session_events are not the insert columns"
    )
    assert "missing timestamp, lat, lon" in refused
    assert "timestamp_ms, current_lat, current_lon" in refused


if __name__ == "__main__":
    print(MARK + json.dumps(plan_jobs()), flush=True)
