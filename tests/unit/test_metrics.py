"""The metrics of a job: METRICS_PORT, the local Prometheus reporter's set-up, the latency
histogram's buckets. The endpoint itself, served by a running job, is tested in
tests/e2e/test_metrics_endpoint.py."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections import Counter as Tally
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from jupiter_common.errors import ClickHouseWriteError, MetricsPortError, SettingsError
from jupiter_common.flink import metrics
from jupiter_common.flink.metrics import (
    LATENCY_BOUNDS_MS,
    LatencyHistogram,
    enable_local_reporter,
    event_time_column,
    free_port,
    port_range,
    reporter_jar,
)
from jupiter_common.flink.udfs import LandRows
from jupiter_common.settings import Settings, load_settings
from jupiter_common.tables import SESSION_EVENTS, SESSION_MOVEMENTS, SESSIONS_BASE, TableSpec
from jupiter_common.writer import WriteResult


@pytest.mark.parametrize(
    ("value", "expected"),
    [("9249", (9249, 9249)), (" 9300-9310 ", (9300, 9310)), ("OFF", None), ("off", None)],
)
def test_metrics_port_takes_a_port_a_range_or_off(
    value: str, expected: tuple[int, int] | None
) -> None:
    assert port_range(load_settings("movements", {"METRICS_PORT": value})) == expected


def test_metrics_port_defaults_to_a_range() -> None:
    assert port_range(load_settings("movements", {})) == (9249, 9259)


@pytest.mark.parametrize("value", ["http", "9259-9249", "0", "70000", "9249-", "-1", "9249-x"])
def test_a_bad_metrics_port_stops_start_up_naming_the_variable(value: str) -> None:
    with pytest.raises(SettingsError, match="METRICS_PORT"):
        load_settings("movements", {"METRICS_PORT": value})


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("", 0))
        listener.listen()
        yield int(listener.getsockname()[1])


def test_free_port_skips_a_port_in_use(taken_port: int) -> None:
    chosen = free_port(taken_port, taken_port + 1, any_if_busy=False)
    assert chosen == taken_port + 1 or not _free(taken_port + 1)


def test_a_taken_port_given_explicitly_is_an_error_naming_the_variable(taken_port: int) -> None:
    with pytest.raises(MetricsPortError, match=f"METRICS_PORT={taken_port}"):
        free_port(taken_port, taken_port, any_if_busy=False)


def test_the_default_range_all_taken_falls_back_to_any_free_port(taken_port: int) -> None:
    chosen = free_port(taken_port, taken_port, any_if_busy=True)
    assert chosen != taken_port
    assert _free(chosen)


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("", port))
        except OSError:
            return False
    return True


def test_pyflink_ships_the_reporter_jar() -> None:
    jar = reporter_jar({})
    assert jar is not None and jar.is_file(), "pyflink/plugins/metrics-prometheus is missing"


def test_a_local_run_gets_the_reporter_on_the_rest_of_the_range_and_its_jar_on_the_class_path(
    taken_port: int,
) -> None:
    settings = load_settings("movements", {"METRICS_PORT": f"{taken_port}-{taken_port + 3}"})
    environ = {"HADOOP_CLASSPATH": "/some/other.jar"}
    conf = enable_local_reporter(settings, environ)
    first, _, last = conf["metrics.reporter.prom.port"].partition("-")
    assert taken_port < int(first) <= int(last) == taken_port + 3, "from the first free port on"
    assert conf["metrics.reporter.prom.factory.class"] == metrics.REPORTER_FACTORY
    jar = reporter_jar({})
    assert environ["HADOOP_CLASSPATH"].split(os.pathsep) == ["/some/other.jar", str(jar)]
    enable_local_reporter(settings, environ)  # a second time: the jar is on it once
    assert environ["HADOOP_CLASSPATH"].count(str(jar)) == 1


class Endpoint:
    """A Prometheus endpoint on a free port that serves ``body``."""

    def __init__(self, body: str, port: int = 0) -> None:
        data = body.encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = HTTPServer(("", port), Handler)
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def neighbours(first: str, second: str) -> tuple[Endpoint, Endpoint]:
    """Two endpoints on consecutive ports."""
    for port in range(23_000, 24_000, 7):
        try:
            one = Endpoint(first, port)
        except OSError:
            continue
        try:
            return one, Endpoint(second, port + 1)
        except OSError:
            one.close()
    raise AssertionError("no two consecutive free ports")


def test_the_url_announced_is_the_port_that_serves_the_job(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ours, other = "9f0e", "1a2b"
    theirs, mine = neighbours(f'flink_jobmanager_job_uptime{{job_id="{other}",}} 1.0\n',
                              f'flink_jobmanager_job_uptime{{job_id="{ours}",}} 1.0\n')  # fmt: skip
    try:
        monkeypatch.setattr(metrics, "_served_from", (theirs.port, mine.port))
        settings = load_settings("movements", {})
        url = metrics.announce_endpoint(settings, ours, timeout_s=0)
        assert url == f"http://localhost:{mine.port}/metrics"
        assert capsys.readouterr().out == f"metrics: {url}\n"
        assert metrics.announce_endpoint(settings, "0000", timeout_s=0) is None
        assert capsys.readouterr().out == "", "nothing announced for a job no port serves"
    finally:
        theirs.close()
        mine.close()


def test_nothing_to_announce_without_a_local_reporter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics, "_served_from", None)
    assert metrics.announce_endpoint(load_settings("movements", {}), "9f0e") is None


def test_no_reporter_when_off_or_when_the_jvm_is_a_clusters() -> None:
    off = load_settings("movements", {"METRICS_PORT": "off"})
    environ: dict[str, str] = {}
    assert enable_local_reporter(off, environ) == {}
    on = load_settings("movements", {})
    assert enable_local_reporter(on, {"PYFLINK_GATEWAY_PORT": "41234"}) == {}
    assert environ == {}


def test_no_jar_no_reporter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics, "reporter_jar", lambda environ: None)
    environ: dict[str, str] = {}
    assert enable_local_reporter(load_settings("movements", {}), environ) == {}
    assert environ == {}


@pytest.mark.parametrize(
    ("table", "column"),
    [
        (SESSION_MOVEMENTS, "timestamp"),
        (SESSION_EVENTS, "timestamp"),
        (SESSIONS_BASE, "started_at"),
    ],
)
def test_each_tables_event_time_is_the_messages_timestamp(table: TableSpec, column: str) -> None:
    assert event_time_column(table) == column


Labels = tuple[tuple[str, str], ...]
Key = tuple[Labels, str]


class FakeGroup:
    """A PyFlink metric group that tallies its counters by (labels, name): a key/value group
    is a label."""

    def __init__(self, tally: Tally[Key], labels: Labels = ()) -> None:
        self.tally = tally
        self.labels = labels

    def add_group(self, name: str, extra: str | None = None) -> FakeGroup:
        if extra is None:  # a plain group (``jupiter``): part of the name, not a label
            return FakeGroup(self.tally, self.labels)
        return FakeGroup(self.tally, (*self.labels, (name, extra)))

    def counter(self, name: str) -> FakeCounter:
        return FakeCounter(self.tally, (self.labels, name))


class FakeCounter:
    def __init__(self, tally: Tally[Key], key: Key) -> None:
        self.tally, self.key = tally, key

    def inc(self, n: int = 1) -> None:
        self.tally[self.key] += n


def bucket(tally: Tally[Key], le: str) -> int:
    return tally[((("table", "t"), ("le", le)), "event_to_queryable_ms_bucket")]


def test_the_histogram_counts_cumulative_buckets_a_sum_and_a_count() -> None:
    tally: Tally[Key] = Tally()
    histogram = LatencyHistogram(FakeGroup(tally), "t")
    now = 1_000_000
    latencies = [0, 25, 26, 400, 999, 1_000, 7_200_000]
    histogram.observe(np.array([now - x for x in latencies], dtype=np.int64), now_ms=now)
    histogram.observe(np.array([now + 5_000], dtype=np.int64), now_ms=now)  # clock skew: 0
    assert bucket(tally, "25") == 3
    assert bucket(tally, "50") == 4
    assert bucket(tally, "500") == 5
    assert bucket(tally, "1000") == 7
    assert bucket(tally, str(LATENCY_BOUNDS_MS[-1])) == 7
    assert bucket(tally, "Inf") == 8
    assert tally[((("table", "t"),), "event_to_queryable_ms_count")] == 8
    assert tally[((("table", "t"),), "event_to_queryable_ms_sum")] == sum(latencies)


def test_the_histogram_reads_a_batchs_timestamp_column() -> None:
    tally: Tally[Key] = Tally()
    histogram = LatencyHistogram(FakeGroup(tally), "t")
    stamps = pa.array([1_000, None, 2_000], pa.timestamp("ms", tz="UTC"))
    histogram.observe_column(pa.table({"timestamp": stamps}), "timestamp")
    assert bucket(tally, "Inf") == 2
    histogram.observe_column(pa.table({"timestamp": stamps.slice(0, 0)}), "timestamp")
    assert bucket(tally, "Inf") == 2


class OneWriter:
    """A TableWriter that acknowledges every batch, or raises ``error``."""

    def __init__(self) -> None:
        self.error: Exception | None = None

    def open(self, settings: Settings, table: TableSpec) -> OneWriter:
        return self

    def write(self, batch: pa.Table) -> WriteResult:
        if self.error is not None:
            raise self.error
        return WriteResult(batch.num_rows)

    def close(self) -> None:
        pass


class Context:
    def __init__(self) -> None:
        self.tally: Tally[Key] = Tally()

    def get_metric_group(self) -> FakeGroup:
        return FakeGroup(self.tally)


def events_columns(stamps_ms: list[int]) -> list[pd.Series]:
    """``session_events`` insert columns, in order, for rows stamped ``stamps_ms``."""
    count = len(stamps_ms)
    values: dict[str, list[object]] = {
        "session_id": ["5f1b1f0e-8f3a-4c1e-9d3a-0b7f6e2d1a01"] * count,
        "vehicle_id": ["a1b2c3d4-e5f6-4a8b-9c0d-1e2f3a4b5c6d"] * count,
        "order_id": ["c1d2e3f4-a5b6-4c8d-9e0f-1a2b3c4d5e6f"] * count,
        "timestamp": list(stamps_ms),
        "status": ["en_route"] * count,
        "previous_status": ["started"] * count,
        "lat": [None] * count,
        "lon": [None] * count,
        "source_partition": [0] * count,
        "source_offset": list(range(count)),
    }
    return [pd.Series(values[name]) for name in SESSION_EVENTS.insert_columns]


def test_a_writing_function_measures_each_row_it_landed_and_none_it_failed_to() -> None:
    writer = OneWriter()
    function = LandRows(load_settings("events", {}), SESSION_EVENTS, writer.open)
    context = Context()
    function.open(context)
    now = int(time.time() * 1000)
    function.eval(*events_columns([now - 60_000, now - 120_000, now + 10_000]))
    table = (("table", "session_events"),)
    assert context.tally[(table, "event_to_queryable_ms_count")] == 3
    assert context.tally[((*table, ("le", "30000")), "event_to_queryable_ms_bucket")] == 1
    assert context.tally[((*table, ("le", "300000")), "event_to_queryable_ms_bucket")] == 3
    assert 180_000 <= context.tally[(table, "event_to_queryable_ms_sum")] < 190_000
    writer.error = ClickHouseWriteError("down", table="session_events", rows=1, attempts=1)
    with pytest.raises(ClickHouseWriteError):
        function.eval(*events_columns([now]))
    assert context.tally[(table, "event_to_queryable_ms_count")] == 3, "a failed insert: none"
