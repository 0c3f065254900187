"""The three jobs on a real Flink standalone cluster, one rescaled on its own.

Starts the local session cluster (PyFlink's own start-cluster.sh, through jupiter_local/cluster.py)
with the local ClickHouse HTTP endpoint (the real engine, shared by every writer process),
submits all three jobs, then rescales movements-job from 1 to 3 by stop-with-savepoint and
resubmit while more data arrives. base-job and events-job keep running untouched (same Flink
job ids); the REST API shows movements-job at parallelism 3; every table holds exactly the rows
expected from the generated stream.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import clickhouse_connect
import pytest
from oracle import (
    EVENTS_SQL,
    HEADER_SQL,
    MOVEMENTS_SQL,
    expected_events,
    expected_headers,
    expected_movements,
)
from support import committed_offsets, free_port, produce, wait_until

from jupiter_local import cluster as cluster_module
from jupiter_local.synthetic import GeneratorConfig, generate

pytestmark = pytest.mark.e2e


@pytest.fixture
def cluster_tool() -> ModuleType:
    return cluster_module


@pytest.fixture
def cluster(cluster_tool: ModuleType, tmp_path: Path) -> Iterator[Any]:
    local = cluster_tool.Cluster(
        home=tmp_path / "flink",
        rest_port=free_port(),
        rpc_port=free_port(),
        clickhouse_port=free_port(),
    )
    cluster_tool.start(local, slots=8)
    try:
        yield local
    finally:
        cluster_tool.stop(local)


def test_rescale_movements_while_the_others_keep_running(
    cluster_tool: ModuleType,
    cluster: Any,
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    topic = new_topic("sessions", partitions=4)
    for name, value in {
        "KAFKA_BOOTSTRAP": kafka_bootstrap,
        "KAFKA_TOPIC": topic,
        "DEAD_LETTER_TOPIC": new_topic("dead-letter", partitions=1),
        "FLINK_CHECKPOINT_DIR": (tmp_path / "checkpoints").as_uri(),
        "FLINK_CHECKPOINT_INTERVAL_MS": "1000",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("CLICKHOUSE_HOST", "FLINK_JOB_NAME", "KAFKA_CONSUMER_GROUP"):
        monkeypatch.delenv(name, raising=False)

    config = GeneratorConfig(
        sessions=60, pings_per_session=8, seed=21, duplicate_ratio=0.03, reorder_ratio=0.03,
        malformed_count=3,
    )  # fmt: skip
    records = [(r.key, r.value) for r in generate(config).records]
    half = len(records) // 2
    produced = produce(kafka_bootstrap, topic, records[:half])

    ids = {job: cluster_tool.deploy(cluster, job, 1) for job in cluster_tool.job_folders()}

    def caught_up(job: str) -> bool:
        done, end = committed_offsets(kafka_bootstrap, topic, f"jupiter-{job}")
        return done == end

    wait_until(lambda: caught_up("movements"), 180, "movements-job to catch up")

    savepoint = cluster_tool.stop_job(cluster, "movements-job")
    produced += produce(kafka_bootstrap, topic, records[half:])
    ids["movements-job"] = cluster_tool.deploy(cluster, "movements-job", 3, savepoint)

    parallelism = cluster_tool.vertex_parallelism(cluster, ids["movements-job"])
    assert parallelism and set(parallelism.values()) == {3}, parallelism
    for job in ("base", "events", "movements"):
        wait_until(lambda j=job: caught_up(j), 180, f"{job}-job to catch up")  # type: ignore[misc]

    client = clickhouse_connect.get_client(host="127.0.0.1", port=cluster.clickhouse_port)
    expected = {
        HEADER_SQL: expected_headers(produced),
        EVENTS_SQL: expected_events(produced),
        MOVEMENTS_SQL: expected_movements(produced),
    }

    def count(sql: str) -> int:
        return int(client.query(f"SELECT count() FROM ({sql})").result_rows[0][0])

    # Rows reach ClickHouse within one flush interval after their checkpoint.
    wait_until(
        lambda: all(count(sql) >= len(rows) for sql, rows in expected.items()),
        60,
        "every table to receive its rows",
    )
    for sql, rows in expected.items():
        assert [tuple(r) for r in client.query(sql).result_rows] == rows

    for job in ("base-job", "events-job"):
        assert cluster_tool.running_job(cluster, cluster_tool.job_folders()[job]) == ids[job]
