"""Crashes and outages against running jobs: the real broker, PyFlink and the ClickHouse engine.

Every job writes over HTTP to the local ClickHouse endpoint (the real engine in its own
process), so the test can watch the tables while the job runs, and crash the server too.

- A job killed (SIGKILL of its whole process tree) again and again while records keep coming
  leaves every table exactly as a run without crashes would: no row missing, and no duplicate
  even for a plain query, without ``FINAL``, on a table ClickHouse is not allowed to merge (a
  merge would hide duplicates). The short profile kills each run once it has inserted rows
  and completed a checkpoint, the second run as soon as its next checkpoint is in flight; the
  full one (``CHAOS_PROFILE=full``) at random moments: during start-up, while processing
  (inserting), or while a checkpoint is in flight.
- A job killed while records it had read were not yet in ClickHouse, resumed on a quiet stream,
  has every row in the table within the flush interval, also when the killed run had a longer
  interval.
- A ClickHouse outage (the profile's length) while records keep coming makes the job fail and
  restart until the server is back, then it catches up by itself (the time from the server's
  return to a checkpoint covering every record sent until then is reported) and lands
  everything once; SIGTERM while it is restart-looping stops it cleanly, says where it will
  resume, and the resumed job lands everything once.
"""

from __future__ import annotations

import random
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaException, TopicPartition
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

from jupiter_common.tables import SESSION_EVENTS, SESSION_MOVEMENTS, SESSIONS_BASE, TableSpec
from jupiter_local.chaos_profile import profile, report, rows_figures
from jupiter_local.synthetic import GeneratorConfig, generate

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


class CheckpointWatch:
    """Follows a job's Flink log: which checkpoints were triggered and which completed."""

    LINE = re.compile(rb"(Triggering|Completed) checkpoint (\d+) ")

    def __init__(self, job: StreamingJob) -> None:
        self._dir = job.flink_log_dir
        self._read: dict[Path, int] = {}
        self.triggered = self.completed = 0

    def poll(self) -> None:
        for path in self._dir.glob("*.log"):
            with path.open("rb") as log:
                log.seek(self._read.get(path, 0))
                data = log.read()
            whole = data[: data.rfind(b"\n") + 1]  # complete lines only
            self._read[path] = self._read.get(path, 0) + len(whole)
            for what, number in self.LINE.findall(whole):
                if what == b"Triggering":
                    self.triggered = max(self.triggered, int(number))
                else:
                    self.completed = max(self.completed, int(number))

    @property
    def in_flight(self) -> bool:
        return self.triggered > self.completed


def kill_at_a_moment(
    job: StreamingJob, inserted: Callable[[], int], moment: str, rng: random.Random | None
) -> str:
    """Kill ``job`` at ``moment`` and return where it was then: ``start-up`` (nothing inserted
    yet), ``mid-checkpoint`` (a checkpoint triggered and not completed) or ``processing``.

    ``processing``: once the run has inserted 20 rows and completed a checkpoint (so that the
    next run restores from it and reads again records already inserted); ``mid-checkpoint``:
    the same, then as soon as a checkpoint is in flight; ``start-up``: before the first insert.
    With ``rng`` (the full profile), at a random moment: start-up within 25 s, processing up
    to 8 s later, the first to the fourth checkpoint after that."""
    watch = CheckpointWatch(job)

    def alive() -> bool:
        assert job.process.poll() is None, f"the job died:\n{job.output()[-3000:]}"
        return True

    def running(rows: int) -> bool:
        watch.poll()
        return alive() and watch.completed > 0 and inserted() >= rows

    def checkpoint_in_flight(after: int) -> bool:
        watch.poll()
        return alive() and watch.in_flight and watch.triggered > after

    if moment == "start-up":
        deadline = time.monotonic() + (rng.uniform(0.5, 25) if rng else 5)
        wait_until(lambda: alive() and time.monotonic() > deadline, 60, "the moment")
    else:
        wait_until(lambda: running(20), 180, "the job to insert rows and checkpoint")
        if moment == "mid-checkpoint":
            after = watch.triggered + (rng.randint(0, 3) if rng else 0)
            wait_until(lambda: checkpoint_in_flight(after), 60, "a checkpoint", poll=0.01)
        elif rng:
            time.sleep(rng.uniform(0, 8))
    rows = inserted()
    job.kill()
    watch.poll()
    return "start-up" if rows == 0 else "mid-checkpoint" if watch.in_flight else "processing"


@pytest.mark.parametrize("job", ["movements", "events", "base"])
def test_repeated_kills_leave_no_gap_and_no_duplicate(
    job: str,
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    tmp_path: Path,
    clickhouse: ClickHouseEndpoint,
) -> None:
    chaos, started = profile(), time.monotonic()
    case = CASES[job]
    topic, group = new_topic("sessions", partitions=2), unique(job)
    env = chaos_env(kafka_bootstrap, new_topic, topic, group, tmp_path, clickhouse)
    clickhouse.create_without_merges(case.spec)
    stream = replace(case.stream, sessions=case.stream.sessions * chaos.stream_scale)
    records = [(r.key, r.value) for r in generate(stream).records]
    producer = PacedProducer(kafka_bootstrap, topic, records, case.rate)
    rng = random.Random(f"{chaos.seed}-{job}")
    phases: Counter[str] = Counter()
    resumes_ok = resumed_from_checkpoint = 0

    for run in range(chaos.kills_per_job):
        landed = clickhouse.count(case.table)
        # Batches cut elsewhere than in the killed run, as timer flushes do: otherwise a replayed
        # batch can equal one that landed, and ClickHouse's own insert deduplication hides it.
        batch = {"SINK_BATCH_SIZE": str(100 + 37 * (run + 1))}
        doomed = StreamingJob(f"jupiter_{job}", env | batch, tmp_path / f"run-{run}.log")
        moments = ("processing", "mid-checkpoint", "start-up")
        moment = rng.choice(moments) if chaos.random_kills else moments[run % 2]

        def inserted(before: int = landed) -> int:
            return clickhouse.count(case.table) - before

        phases[kill_at_a_moment(doomed, inserted, moment, rng if chaos.random_kills else None)] += 1
        if run > 0:  # a resume that came up and ran until killed
            resumes_ok += 1
            resumed_from_checkpoint += "resuming from" in doomed.output()

    last = StreamingJob(f"jupiter_{job}", env, tmp_path / "last.log")
    # The full profile's stream outlasts the kills: the producer stops once they are done.
    produced = producer.finish(stop=chaos.stream_scale > 1)
    last.wait_caught_up(kafka_bootstrap, topic, group)
    last.stop_with_savepoint()
    resumes_ok += 1
    resumed_from_checkpoint += "resuming from" in last.output()
    expected, landed_rows = case.expected(produced), clickhouse.query(case.sql)
    report(
        "kills",
        job,
        records=len(produced),
        kills=chaos.kills_per_job,
        kills_in_start_up=phases["start-up"],
        kills_processing=phases["processing"],
        kills_mid_checkpoint=phases["mid-checkpoint"],
        resumes=chaos.kills_per_job,
        resumes_ok=resumes_ok,
        resumed_from_checkpoint=resumed_from_checkpoint,
        **rows_figures(expected, landed_rows),
        seconds=round(time.monotonic() - started),
    )
    assert landed_rows == expected


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
    started = time.monotonic()
    try:
        assert_landed_exactly(clickhouse, case, produced, resumed)
    finally:
        report(
            "quiet-resume",
            "events",
            records=len(produced),
            kills=1,
            landed_after_seconds=round(time.monotonic() - started, 1),
            **rows_figures(case.expected(produced), clickhouse.query(case.sql)),
        )
    resumed.stop_with_savepoint()


def partition_offsets(bootstrap: str, topic: str, group: str) -> tuple[list[int], list[int]]:
    """(committed, end) offset of ``group`` on each partition of ``topic``."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        partitions = sorted(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
        tps = [TopicPartition(topic, p) for p in partitions]
        done = [max(tp.offset, 0) for tp in consumer.committed(tps, timeout=10)]
        ends = [consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in tps]
        return done, ends
    finally:
        consumer.close()


RECOVERY_TARGET_S = 30
"""After an outage, the job has caught up this soon after the server's return (issue 7)."""


def test_clickhouse_outage_restart_loop_and_stop(
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    tmp_path: Path,
    clickhouse: ClickHouseEndpoint,
) -> None:
    """ClickHouse crashes while movements-job writes and records keep coming at the case's
    rate; it is back after the profile's outage (20 s, full: 60 s). The job fails and restarts
    until the server is back, then catches up on its own: the time from the server's return
    until a checkpoint covers every record sent before it is the recovery time. In a second
    outage it is told to stop (SIGTERM) while it restart-loops: it cannot take a savepoint, so
    it cancels, exits 0 and says where it will resume; resumed after the outage, it lands
    everything. No row is missing or twice, for a plain query on a table that is not merged."""
    chaos, started = profile(), time.monotonic()
    case = CASES["movements"]
    topic, group = new_topic("sessions", partitions=2), unique("movements")
    env = chaos_env(kafka_bootstrap, new_topic, topic, group, tmp_path, clickhouse)
    clickhouse.create_without_merges(case.spec)
    # Enough for the producer to keep sending through the outage and the catch-up (it stops
    # then), with a part kept for the second outage.
    sessions = int(case.rate * (chaos.outage_seconds + 90) / 40)
    records = [(r.key, r.value) for r in generate(replace(case.stream, sessions=sessions)).records]
    part = len(records) // 10
    produced = produce(kafka_bootstrap, topic, records[:part])

    job = StreamingJob("jupiter_movements", env, tmp_path / "job.log")
    job.wait_caught_up(kafka_bootstrap, topic, group)

    def failures() -> int:
        assert job.process.poll() is None, f"the job died:\n{job.output()[-3000:]}"
        return job.flink_log().count("switched from RUNNING to FAILED")

    producer = PacedProducer(kafka_bootstrap, topic, records[part:-part], case.rate)
    wait_until(lambda: producer.sent > case.rate, 30, "the producer to send for a second")
    failed = failures()
    clickhouse.kill()
    back = time.monotonic() + chaos.outage_seconds
    wait_until(lambda: "ClickHouseWriteError" in job.flink_log(), 120, "an insert to fail")
    wait_until(lambda: failures() > failed, 120, "the job to fail")
    time.sleep(max(0.0, back - time.monotonic()))
    outage_failures = failures() - failed
    clickhouse.start()
    returned, (_, sent) = time.monotonic(), partition_offsets(kafka_bootstrap, topic, group)

    def caught_up() -> bool:
        assert job.process.poll() is None, f"the job died:\n{job.output()[-3000:]}"
        try:
            done, _ = partition_offsets(kafka_bootstrap, topic, group)
        except KafkaException:  # e.g. the group coordinator is still loading
            return False
        return all(d >= s for d, s in zip(done, sent, strict=True))

    wait_until(caught_up, 300, "the job to catch up after the outage", poll=0.2)
    recovery = time.monotonic() - returned
    produced += producer.finish(stop=True)
    job.wait_caught_up(kafka_bootstrap, topic, group)
    assert_landed_exactly(clickhouse, case, produced, job)

    clickhouse.kill()
    produced += produce(kafka_bootstrap, topic, records[-part:])
    failed = failures()
    wait_until(lambda: failures() > failed + 1, 180, "the job to restart-loop")
    output = job.terminate()
    assert "stopped without a savepoint" in output
    assert "the next start resumes from" in output
    clickhouse.start()
    resumed = StreamingJob("jupiter_movements", env, tmp_path / "resumed.log")
    resumed.wait_caught_up(kafka_bootstrap, topic, group)
    resumed.stop_with_savepoint()
    assert "resuming from" in resumed.output()
    expected, landed = case.expected(produced), clickhouse.query(case.sql)
    report(
        "outage",
        "movements",
        records=len(produced),
        rate=case.rate,
        outage_seconds=chaos.outage_seconds,
        task_failures_in_outage=outage_failures,
        recovery_seconds=round(recovery, 1),
        recovery_target_seconds=RECOVERY_TARGET_S,
        stopped_in_restart_loop=1,
        **rows_figures(expected, landed),
        seconds=round(time.monotonic() - started),
    )
    assert landed == expected
