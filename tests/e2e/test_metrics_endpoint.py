"""A job run locally serves its metrics on a Prometheus endpoint: every metric the Grafana
dashboard (infra/observability/grafana/jupiter.json) queries is there, and the
event-to-queryable latency histogram has a sample per row landed.

movements-job, streaming, on the real broker and the real ClickHouse engine (chDB); the
endpoint is the one the job prints at start (``metrics: http://localhost:<port>/metrics``).
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from dashboard import dashboard_metric_names, exported_metrics
from support import StreamingJob, job_environment, produce, query, unique, wait_until

from jupiter_common.flink.metrics import LATENCY_BOUNDS_MS

pytestmark = pytest.mark.e2e

METRIC_PREFIX = "flink_taskmanager_job_task_operator_jupiter_"
VALID = 120
MALFORMED = [b"{not json", b'{"session_id": 5}', b"[]"]


def fresh_messages(count: int) -> list[tuple[bytes, bytes]]:
    """``count`` valid pings stamped now, over a few sessions."""
    now = datetime.now(UTC)
    records = []
    for index in range(count):
        session = f"7e0c1a52-0000-4000-8000-{index % 6:012d}"
        body = {
            "session_id": session, "vehicle_id": f"8f1d2b63-0000-4000-8000-{index % 6:012d}",
            "order_id": "9a2e3c74-0000-4000-8000-000000000001", "status": "en_route",
            "timestamp": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "start_lat": 40.7, "start_lon": -73.9, "end_lat": 40.8, "end_lon": -73.95,
            "current_lat": 40.7 + index / 1e4, "current_lon": -73.9,
        }  # fmt: skip
        records.append((session.encode(), json.dumps(body).encode()))
        now += timedelta(milliseconds=1)
    return records


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return str(response.read().decode())


def total(
    samples: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str
) -> float:
    return sum(
        value
        for found, value in samples.get(name, [])
        if all(found.get(key) == want for key, want in labels.items())
    )


def test_the_dashboards_metrics_are_exported_and_the_latency_histogram_has_samples(
    kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = new_topic("sessions", partitions=2)
    group = unique("metrics")
    env = job_environment(
        kafka_bootstrap,
        topic,
        tmp_path / "store",
        tmp_path / "checkpoints",
        KAFKA_CONSUMER_GROUP=group,
        DEAD_LETTER_TOPIC=new_topic("dead-letter", partitions=1),
        FLINK_CHECKPOINT_INTERVAL_MS="500",
    )
    produced = time.time()
    produce(kafka_bootstrap, topic, fresh_messages(VALID) + [(b"k", m) for m in MALFORMED])
    job = StreamingJob("jupiter_movements", env, tmp_path / "job.log")

    def url_printed() -> bool:
        assert job.process.poll() is None, f"the job died:\n{job.output()[-6000:]}"
        return "metrics: http://" in job.output()

    wait_until(url_printed, 120, "the job to print its metrics URL")
    url = re.findall(r"^metrics: (http://\S+)$", job.output(), re.MULTILINE)[0]
    job.wait_caught_up(kafka_bootstrap, topic, group)
    text = ""

    def counted() -> bool:
        nonlocal text
        text = scrape(url)
        samples = exported_metrics(text)
        return total(samples, METRIC_PREFIX + "records_in") == VALID + len(MALFORMED) and (
            total(samples, METRIC_PREFIX + "table_event_to_queryable_ms_count") == VALID
        )

    wait_until(counted, 60, "the job's counters to reach the endpoint")
    (tmp_path / "metrics.txt").write_text(text)
    samples = exported_metrics(text)
    waited = (time.time() - produced) * 1000

    missing = sorted(dashboard_metric_names() - samples.keys())
    assert not missing, f"the dashboard queries metrics {url} does not export: {missing}"

    table = {"table": "session_movements"}
    buckets = {
        found["le"]: value
        for found, value in samples[METRIC_PREFIX + "table_le_event_to_queryable_ms_bucket"]
        if found.get("table") == "session_movements"
    }
    assert set(buckets) == {*map(str, LATENCY_BOUNDS_MS), "Inf"}, "every bucket is exported"
    counts = [buckets[str(bound)] for bound in LATENCY_BOUNDS_MS] + [buckets["Inf"]]
    assert counts == sorted(counts) and counts[-1] == VALID, f"cumulative buckets: {buckets}"
    # Every row landed after it was produced and before now: within the first bound >= that.
    bound = next((str(b) for b in LATENCY_BOUNDS_MS if b >= waited), "Inf")
    assert buckets[bound] == VALID, f"rows slower than {waited:.0f} ms: {buckets}"
    latency_sum = total(samples, METRIC_PREFIX + "table_event_to_queryable_ms_sum", **table)
    assert 0 < latency_sum <= VALID * waited
    assert total(samples, METRIC_PREFIX + "reason_records_rejected") == len(MALFORMED)
    assert total(samples, METRIC_PREFIX + "reason_records_rejected", reason="not_json") >= 1
    assert total(samples, METRIC_PREFIX + "rows_written") == VALID
    job.terminate()
    assert query(tmp_path / "store", "SELECT count() FROM session_movements") == [(VALID,)]
