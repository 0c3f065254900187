"""Crashes and outages against running jobs: the real broker, PyFlink and the ClickHouse engine.

Every job writes over HTTP to the local ClickHouse endpoint (the real engine in its own
process), so the test can watch the tables while the job runs, and crash the server too.

- A job killed (SIGKILL of its whole process tree) again and again while records keep coming
  leaves every table exactly as a run without crashes would: no row missing, and no duplicate
  even for a plain query, without ``FINAL``, on a table ClickHouse is not allowed to merge (a
  merge would hide duplicates).
- A job killed while records it had read were not yet in ClickHouse, resumed on a quiet stream,
  has every row in the table within the flush interval, also when the killed run had a longer
  interval.
- A ClickHouse outage makes the job fail and restart until the server is back, then it lands
  everything once; SIGTERM while it is restart-looping stops it cleanly, says where it will
  resume, and the resumed job lands everything once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from oracle import (
    EVENTS_SQL,
    HEADER_SQL,
    MOVEMENTS_SQL,
    expected_events,
    expected_headers,
    expected_movements,
    plain,
)
from support import (
    ClickHouseEndpoint,
    PacedProducer,
    Produced,
    StreamingJob,
    job_environment,
    produce,
    unique,
    wait_until,
)

from jupiter_common.synthetic import GeneratorConfig, generate
from jupiter_common.tables import SESSION_EVENTS, SESSION_MOVEMENTS, SESSIONS_BASE, TableSpec

pytestmark = pytest.mark.chaos


@dataclass(frozen=True)
class Case:
    """What a job lands and the stream that exercises it."""

    spec: TableSpec
    sql: str
    expected: Callable[[list[Produced]], list[tuple[Any, ...]]]
    stream: GeneratorConfig
    rate: float
    """Records a second: below what the job sustains here, so that it keeps up between kills."""

    @property
    def table(self) -> str:
        return self.spec.name


CASES = {
    "movements": Case(
        SESSION_MOVEMENTS,
        plain(MOVEMENTS_SQL),
        expected_movements,
        # No producer duplicates: two records of one ping are two rows until ClickHouse merges
        # them, whenever it does; every row here is one record, so merges change nothing.
        GeneratorConfig(sessions=300, pings_per_session=40, seed=71, reorder_ratio=0.02),
        rate=400,
    ),
    "events": Case(
        SESSION_EVENTS,
        plain(EVENTS_SQL),
        expected_events,
        GeneratorConfig(
            sessions=1000, pings_per_session=6, seed=72, duplicate_ratio=0.03, reorder_ratio=0.02
        ),
        rate=250,
    ),
    "base": Case(
        SESSIONS_BASE,
        plain(HEADER_SQL),
        expected_headers,
        GeneratorConfig(sessions=3000, pings_per_session=1, seed=73, duplicate_ratio=0.03),
        rate=400,
    ),
}


def assert_landed_exactly(
    clickhouse: ClickHouseEndpoint, case: Case, produced: list[Produced], job: StreamingJob
) -> None:
    """Once the job has flushed what its last checkpoint covers, the table (plain query) is
    exactly what the records make: nothing missing, nothing twice."""
    expected = case.expected(produced)

    def flushed() -> bool:
        assert job.process.poll() is None, f"the job died:\n{job.output()[-3000:]}"
        return clickhouse.count(case.table) >= len(expected)

    wait_until(flushed, 120, f"{len(expected)} rows in {case.table}")
    assert clickhouse.query(case.sql) == expected


@pytest.fixture
def clickhouse(tmp_path: Path) -> Iterator[ClickHouseEndpoint]:
    endpoint = ClickHouseEndpoint(tmp_path / "clickhouse", tmp_path / "clickhouse.log")
    yield endpoint
    endpoint.stop()


def chaos_env(
    bootstrap: str,
    new_topic: Callable[..., str],
    topic: str,
    group: str,
    tmp_path: Path,
    clickhouse: ClickHouseEndpoint,
    **extra: str,
) -> dict[str, str]:
    """Small batches flushed often and a checkpoint every 2 s: a crash always finds rows
    inserted after the last checkpoint, which the next run reads and must not land twice."""
    return job_environment(
        bootstrap,
        topic,
        tmp_path / "unused-store",
        tmp_path / "checkpoints",
        **clickhouse.settings,
        KAFKA_CONSUMER_GROUP=group,
        DEAD_LETTER_TOPIC=new_topic("dead-letter", partitions=1),
        FLINK_CHECKPOINT_INTERVAL_MS="2000",
        SINK_BATCH_SIZE="100",
        SINK_FLUSH_INTERVAL_MS="200",
        SINK_MAX_RETRIES="1",
        SINK_RETRY_BACKOFF_MS="100",
        **extra,
    )


@pytest.mark.parametrize("job", ["movements", "events", "base"])
def test_repeated_kills_leave_no_gap_and_no_duplicate(
    job: str,
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    tmp_path: Path,
    clickhouse: ClickHouseEndpoint,
) -> None:
    case = CASES[job]
    topic, group = new_topic("sessions", partitions=2), unique(job)
    env = chaos_env(kafka_bootstrap, new_topic, topic, group, tmp_path, clickhouse)
    clickhouse.create_without_merges(case.spec)
    records = [(r.key, r.value) for r in generate(case.stream).records]
    producer = PacedProducer(kafka_bootstrap, topic, records, case.rate)

    for run in range(2):
        landed = clickhouse.count(case.table)
        # Batches cut elsewhere than in the killed run, as timer flushes do: otherwise a replayed
        # batch can equal one that landed, and ClickHouse's own insert deduplication hides it.
        batch = {"SINK_BATCH_SIZE": str(100 + 37 * (run + 1))}
        doomed = StreamingJob(f"jupiter_{job}", env | batch, tmp_path / f"run-{run}.log")

        def inserting(job: StreamingJob = doomed, before: int = landed) -> bool:
            assert job.process.poll() is None, f"the job died:\n{job.output()[-3000:]}"
            return clickhouse.count(case.table) >= before + 20

        wait_until(inserting, 180, f"run {run} of {job}-job to insert rows")
        doomed.kill()

    produced = producer.finish()
    last = StreamingJob(f"jupiter_{job}", env, tmp_path / "last.log")
    last.wait_caught_up(kafka_bootstrap, topic, group)
    last.stop_with_savepoint()
    assert clickhouse.query(case.sql) == case.expected(produced)


def test_a_killed_job_resumed_on_a_quiet_stream_lands_everything_within_the_interval(
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    tmp_path: Path,
    clickhouse: ClickHouseEndpoint,
) -> None:
    """The first run (a batch larger than the stream, an interval of an hour) has landed a
    first part of the stream when a second part arrives and it is killed at once, before a
    checkpoint covers that part. The resumed run (interval 2 s) gets no new record, yet every row
    is in the table while it keeps running, none twice."""
    case = CASES["events"]
    topic, group = new_topic("sessions", partitions=2), unique("events")
    env = chaos_env(kafka_bootstrap, new_topic, topic, group, tmp_path, clickhouse)
    records = [(r.key, r.value) for r in generate(GeneratorConfig(sessions=120, seed=74)).records]
    half = len(records) // 2
    produced = produce(kafka_bootstrap, topic, records[:half])

    first = StreamingJob(
        "jupiter_events",
        {**env, "SINK_BATCH_SIZE": "1000000", "SINK_FLUSH_INTERVAL_MS": "3600000"},
        tmp_path / "first.log",
    )
    first.wait_caught_up(kafka_bootstrap, topic, group)
    produced += produce(kafka_bootstrap, topic, records[half:])
    first.kill()

    resumed = StreamingJob(
        "jupiter_events", {**env, "SINK_FLUSH_INTERVAL_MS": "2000"}, tmp_path / "resumed.log"
    )
    assert_landed_exactly(clickhouse, case, produced, resumed)
    resumed.stop_with_savepoint()


def test_clickhouse_outage_restart_loop_and_stop(
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    tmp_path: Path,
    clickhouse: ClickHouseEndpoint,
) -> None:
    """ClickHouse crashes while movements-job writes. The job fails and restarts until the
    server is back, then catches up on its own. In a second outage it is told to stop (SIGTERM)
    while it restart-loops: it cannot take a savepoint, so it cancels, exits 0 and says where
    it will resume; resumed after the outage, it lands everything. No row is missing or twice."""
    case = CASES["movements"]
    topic, group = new_topic("sessions", partitions=2), unique("movements")
    env = chaos_env(kafka_bootstrap, new_topic, topic, group, tmp_path, clickhouse)
    records = [(r.key, r.value) for r in generate(case.stream).records]
    third = len(records) // 3
    produced = produce(kafka_bootstrap, topic, records[:third])

    job = StreamingJob("jupiter_movements", env, tmp_path / "job.log")
    job.wait_caught_up(kafka_bootstrap, topic, group)

    def failures() -> int:
        assert job.process.poll() is None, f"the job died:\n{job.output()[-3000:]}"
        return job.flink_log().count("switched from RUNNING to FAILED")

    clickhouse.kill()
    produced += produce(kafka_bootstrap, topic, records[third : 2 * third])
    wait_until(lambda: "ClickHouseWriteError" in job.flink_log(), 120, "an insert to fail")
    failed = failures()
    wait_until(lambda: failures() > failed, 120, "the job to fail again after a restart")
    clickhouse.start()
    job.wait_caught_up(kafka_bootstrap, topic, group)
    assert_landed_exactly(clickhouse, case, produced, job)

    clickhouse.kill()
    produced += produce(kafka_bootstrap, topic, records[2 * third :])
    failed = failures()
    wait_until(lambda: failures() > failed + 1, 120, "the job to restart-loop")
    output = job.terminate()
    assert "stopped without a savepoint" in output
    assert "the next start resumes from" in output
    clickhouse.start()
    resumed = StreamingJob("jupiter_movements", env, tmp_path / "resumed.log")
    resumed.wait_caught_up(kafka_bootstrap, topic, group)
    resumed.stop_with_savepoint()
    assert "resuming from" in resumed.output()
    assert clickhouse.query(case.sql) == case.expected(produced)
