"""Metrics on a Prometheus endpoint: Flink's own Prometheus reporter, and the latency histogram.

**The reporter.** Flink's ``PrometheusReporterFactory`` (``flink-metrics-prometheus``, shipped in
PyFlink's ``plugins/metrics-prometheus``) serves every metric of the JVM — Flink's own (records
in/out, the Kafka source's ``pendingRecords``, checkpoints, backpressure) and the counters the
Python functions register — at ``http://<host>:<port>/metrics``. A Flink cluster loads it from its
``plugins`` directory (its configuration is in ``infra/compose`` and ``infra/k8s``). A local run
is a MiniCluster inside the PyFlink JVM, which looks a reporter up on its class path only (not in
``plugins``, measured with PyFlink 2.2.1: "could not be found ... Available factories: []");
:func:`enable_local_reporter` puts the jar there through ``HADOOP_CLASSPATH``, the one variable
PyFlink's launcher adds to the JVM's class path, and picks the port (``METRICS_PORT``).

**The histogram.** PyFlink's Python metric group has counters, gauges, meters and
"distributions"; a distribution reaches Flink as a gauge of (sum, count, min, max), which the
Prometheus reporter cannot export. So :class:`LatencyHistogram` is a Prometheus *histogram* made
of counters: one per upper bound, in a key/value group ``le`` (the reporter makes a group's key
a label), plus ``_sum`` and ``_count``. PromQL's ``histogram_quantile`` reads it like any
histogram (``le="Inf"`` parses as +Inf), and unlike a summary it adds up across subtasks.
Bounds are whole milliseconds: the reporter replaces a ``.`` in a label value with ``_``.
"""

from __future__ import annotations

import errno
import glob
import http.client
import logging
import os
import socket
import time
import urllib.request
from collections.abc import MutableMapping, Sequence
from pathlib import Path
from typing import Final, Protocol

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from jupiter_common.errors import MetricsPortError
from jupiter_common.flink.web_ui import add_to_local_classpath
from jupiter_common.logs import announce
from jupiter_common.settings import Settings
from jupiter_common.tables import TableSpec

REPORTER: Final = "prom"
"""The reporter's name in Flink's configuration (``metrics.reporter.prom.*``)."""
REPORTER_FACTORY: Final = "org.apache.flink.metrics.prometheus.PrometheusReporterFactory"
CLUSTER_PORT: Final = 9249
"""The reporter's port in every process of a Flink cluster (the Compose and Kubernetes files):
one process per container or pod, so one port, Flink's default."""
JAR_PATTERN: Final = "metrics-prometheus/flink-metrics-prometheus-*.jar"
"""The reporter's jar, under a Flink ``plugins`` directory."""
METRIC_PREFIX: Final = "flink_taskmanager_job_task_operator_jupiter_"
"""How the Prometheus reporter names the Python functions' metrics (group ``jupiter``)."""

LATENCY_BOUNDS_MS: Final = (25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000,
                            300_000, 1_800_000)  # fmt: skip
"""Upper bounds (ms) of the event-to-queryable histogram's buckets; one more, ``Inf``, counts
every observation. From the half-second flush (``SINK_FLUSH_INTERVAL_MS``) to a backlog of half
an hour."""
LATENCY_METRIC: Final = "event_to_queryable_ms"

log = logging.getLogger(__name__)


def port_range(settings: Settings) -> tuple[int, int] | None:
    """``METRICS_PORT`` as (first, last), or None when it is ``off``."""
    if settings.metrics_port == "off":
        return None
    low, _, high = settings.metrics_port.partition("-")
    return int(low), int(high or low)


def reporter_configuration(port: int | str) -> dict[str, str]:
    """The Flink configuration that starts the Prometheus reporter on ``port`` (or a range
    ``"9249-9259"``: each Flink process takes the first free port)."""
    return {
        f"metrics.reporter.{REPORTER}.factory.class": REPORTER_FACTORY,
        f"metrics.reporter.{REPORTER}.port": str(port),
    }


def reporter_jar(environ: MutableMapping[str, str] | None = None) -> Path | None:
    """The reporter's jar in ``FLINK_PLUGINS_DIR`` or PyFlink's own ``plugins``, if there."""
    env = os.environ if environ is None else environ
    import pyflink

    roots = [env.get("FLINK_PLUGINS_DIR", ""), str(Path(pyflink.__file__).parent / "plugins")]
    for root in filter(None, roots):
        found = sorted(glob.glob(str(Path(root) / JAR_PATTERN)))
        if found:
            return Path(found[-1])
    return None


def free_port(first: int, last: int, *, any_if_busy: bool) -> int:
    """The first port of ``first..last`` nothing listens on; if all are taken, any free port
    when ``any_if_busy``, else :class:`MetricsPortError`."""
    for port in range(first, last + 1):
        if _bindable(port):
            return port
    if any_if_busy:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("", 0))
            return int(probe.getsockname()[1])
    span = f"{first}-{last}" if last > first else str(first)
    raise MetricsPortError(
        f"METRICS_PORT={span}: every port is in use; choose another port or range, or"
        " METRICS_PORT=off"
    )


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("", port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def enable_local_reporter(
    settings: Settings, environ: MutableMapping[str, str] | None = None
) -> dict[str, str]:
    """For a run whose MiniCluster starts in this process, *before* PyFlink starts its JVM
    (creating a PyFlink ``Configuration`` starts it): put the reporter's jar on that JVM's class
    path (``HADOOP_CLASSPATH`` of ``environ``, default ``os.environ``) and return the Flink
    configuration that starts the reporter; :func:`announce_endpoint` prints its URL once the
    job runs. Empty when ``METRICS_PORT`` is off, or when the JVM is not ours to start (``flink
    run``, an application cluster: the cluster's own reporter serves the metrics).

    The reporter gets the range from the first port of ``METRICS_PORT`` free now to its end:
    Flink binds the first one free when the JVM starts, seconds later, when another job starting
    at the same time may have taken it. With the default range all taken (many local jobs at
    once), any free port; a port or range given explicitly and all taken raises
    :class:`MetricsPortError`."""
    global _served_from
    env = os.environ if environ is None else environ
    ports = port_range(settings)
    if ports is None or "PYFLINK_GATEWAY_PORT" in env:
        return {}
    jar = reporter_jar(env)
    if jar is None:
        log.warning("no Prometheus reporter jar in Flink's plugins directory: metrics are off")
        return {}
    default = "metrics_port" not in settings.model_fields_set
    port = free_port(*ports, any_if_busy=default)
    last = ports[1] if ports[0] <= port <= ports[1] else port
    add_to_local_classpath(jar, env)
    _served_from = (port, last)
    return reporter_configuration(f"{port}-{last}" if last > port else port)


_served_from: tuple[int, int] | None = None
"""The ports the reporter of this process's MiniCluster binds one of (set by
:func:`enable_local_reporter`: one job per process)."""


def announce_endpoint(settings: Settings, job_id: str, timeout_s: float = 10.0) -> str | None:
    """Print ``metrics: <url>`` for the endpoint that serves the job ``job_id`` (a local run's,
    see :func:`enable_local_reporter`) and return the URL: the port of the range whose metrics
    carry the job's id, which the JobManager registers when the job is submitted. None, with a
    warning, when no port serves it within ``timeout_s`` (the reporter could not start: see the
    Flink log), or when this process started no reporter."""
    if _served_from is None:
        return None
    first, last = _served_from
    deadline = time.monotonic() + timeout_s
    while True:
        for port in range(first, last + 1):
            url = f"http://localhost:{port}/metrics"
            if _serves_job(url, job_id):
                announce(settings, f"metrics: {url}")  # a JSON object with LOG_FORMAT=json
                return url
        if time.monotonic() > deadline:
            log.warning("no Prometheus endpoint on ports %d-%d serves job %s", first, last, job_id)
            return None
        time.sleep(0.5)


def _serves_job(url: str, job_id: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - http://localhost
            return f'job_id="{job_id}"'.encode() in response.read()
    except (OSError, http.client.HTTPException):  # nothing there (yet), or not HTTP
        return False


def event_time_column(table: TableSpec) -> str:
    """The column of ``table`` that holds the message's ``timestamp``: its first
    ``DateTime64`` insert column (``timestamp``, or ``started_at`` for ``sessions_base``)."""
    by_name = {column.name: column for column in table.columns}
    for name in table.insert_columns:
        if by_name[name].type.startswith("DateTime64"):
            return name
    raise ValueError(f"table {table.name} has no DateTime64 insert column")


class _Counter(Protocol):
    def inc(self, n: int = 1) -> None: ...


class _Group(Protocol):
    def add_group(self, name: str, extra: str | None = None) -> _Group: ...

    def counter(self, name: str) -> _Counter: ...


class LatencyHistogram:
    """Event-to-queryable latency of ``table``'s rows: from the message's ``timestamp`` to the
    moment ClickHouse acknowledged the insert that holds its row, in ms, as counters of
    ``group`` labelled ``table``: ``..._table_le_event_to_queryable_ms_bucket{le=...}``,
    ``..._table_event_to_queryable_ms_sum`` and ``_count``. A timestamp in the future counts
    as 0 ms."""

    def __init__(
        self, group: _Group, table: str, bounds: Sequence[int] = LATENCY_BOUNDS_MS
    ) -> None:
        by_table = group.add_group("table", table)
        self._bounds = np.asarray(bounds, dtype=np.int64)
        self._buckets = [
            by_table.add_group("le", str(bound)).counter(f"{LATENCY_METRIC}_bucket")
            for bound in [*bounds, "Inf"]
        ]
        self._sum = by_table.counter(f"{LATENCY_METRIC}_sum")
        self._count = by_table.counter(f"{LATENCY_METRIC}_count")

    def observe(self, event_ms: npt.NDArray[np.int64], now_ms: int | None = None) -> None:
        """Count one latency per event time in ``event_ms`` (epoch ms), against now."""
        if not len(event_ms):
            return
        now = int(time.time() * 1000) if now_ms is None else now_ms
        latency = np.maximum(now - event_ms, 0)
        # cumulative[i]: latencies <= bounds[i]; the last bucket (Inf) takes them all.
        cumulative = np.searchsorted(np.sort(latency), self._bounds, side="right")
        # Every bucket, empty ones too: a bucket only appears on the endpoint once counted.
        for counter, count in zip(self._buckets, [*cumulative.tolist(), len(latency)], strict=True):
            counter.inc(count)
        self._sum.inc(int(latency.sum()))
        self._count.inc(len(latency))

    def observe_column(self, batch: pa.Table, column: str) -> None:
        """:meth:`observe` the timestamps of ``batch``'s ``column`` (nulls left out)."""
        values = batch.column(column).combine_chunks().drop_null().cast(pa.int64())
        self.observe(values.to_numpy(zero_copy_only=False))
