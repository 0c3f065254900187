"""What a job in the foreground says while it runs: its web UI's address, then a status line.

A local run (``hatch run jobs/<job>``) prints the address of its Flink web UI once the job is
submitted (see :mod:`jupiter_common.flink.web_ui`), and on a terminal, every
``STATUS_INTERVAL_S`` seconds, one line::

    jupiter-movements 12:04:31 RUNNING  in 9,812/s  rows 1,204,331  dead letters 12  lag 0
      checkpoint 3 s ago

(on one line). The figures come from the MiniCluster's REST API, the one the web UI reads:
Jupiter's own counters of the Python functions (``jupiter.records_in``, ``jupiter.rows_written``,
``jupiter.records_rejected``: every rejected record is dead-lettered), the Kafka source's
``pendingRecords`` (the records after its position, summed over partitions) and the latest
completed checkpoint. A figure Flink has not reported yet shows as ``-``.

No status line when stdout is not a terminal (a pipe, a file, a container's log), with
``LOG_FORMAT=json`` (stdout is for JSON objects then), or with ``STATUS_INTERVAL_S=0``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final, TextIO

from pyflink.common import JobClient

from jupiter_common.flink.web_ui import find_web_ui_jar, rest_url
from jupiter_common.logs import announce
from jupiter_common.settings import Settings

METRICS: Final = {
    "records_in": "jupiter.records_in",
    "rows_written": "jupiter.rows_written",
    "dead_letters": "jupiter.records_rejected",
    "lag": "pendingRecords",
}
"""Each figure of the line, by the metric name it sums over every operator and subtask."""
REQUEST_TIMEOUT_S: Final = 2.0

log = logging.getLogger(__name__)

GetJson = Callable[[str], Any]
"""A GET of a path of Flink's REST API, decoded from JSON."""


@dataclass(frozen=True)
class Sample:
    """The figures of one look at the job."""

    at: float
    """``time.monotonic()`` when taken."""
    state: str
    totals: dict[str, float]
    """Per :data:`METRICS` key, the sum over the operators that report it (absent: none yet)."""
    checkpoint_age_s: float | None


def status_line_enabled(settings: Settings, stream: TextIO) -> bool:
    """Whether a job prints its status line to ``stream``: a terminal, text logs, an interval."""
    if settings.status_interval_s <= 0 or settings.log_format != "text":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or closed
        return False


def rest_getter(base_url: str, timeout: float = REQUEST_TIMEOUT_S) -> GetJson:
    """A :data:`GetJson` for the REST API at ``base_url`` (``http://127.0.0.1:<port>``)."""

    def get(path: str) -> Any:
        with urllib.request.urlopen(base_url + path, timeout=timeout) as response:  # noqa: S310
            return json.load(response)

    return get


def take_sample(get: GetJson, job_id: str, now_ms: float | None = None) -> Sample:
    """Read the job's state, :data:`METRICS` and latest completed checkpoint."""
    at = time.monotonic()
    job = get(f"/jobs/{job_id}")
    totals: dict[str, float] = {}
    for vertex in job.get("vertices", []):
        base = f"/jobs/{job_id}/vertices/{vertex['id']}/subtasks/metrics"
        names = [str(metric["id"]) for metric in get(base)]
        wanted = {n: key for n in names for key, suffix in METRICS.items() if _is(n, suffix)}
        for name, key in wanted.items():
            # one metric a request: an operator's name in a metric's name may hold a comma,
            # which would split a list of names
            query = urllib.parse.urlencode({"get": name, "agg": "sum"})
            for value in get(f"{base}?{query}"):
                totals[key] = totals.get(key, 0.0) + float(value.get("sum", 0.0))
    latest = (get(f"/jobs/{job_id}/checkpoints").get("latest") or {}).get("completed") or {}
    acked = latest.get("latest_ack_timestamp")
    now = time.time() * 1000 if now_ms is None else now_ms
    age = max(now - float(acked), 0.0) / 1000 if acked else None
    return Sample(at, str(job.get("state", "?")), totals, age)


def _is(name: str, suffix: str) -> bool:
    return name == suffix or name.endswith("." + suffix)


def format_status(job: str, sample: Sample, previous: Sample | None, clock: str) -> str:
    """The status line of ``sample``; the rate in is over the time since ``previous``."""
    totals = sample.totals
    rate = "-"
    if previous is not None and "records_in" in totals and "records_in" in previous.totals:
        elapsed = sample.at - previous.at
        if elapsed > 0:
            delta = max(totals["records_in"] - previous.totals["records_in"], 0.0)
            rate = f"{delta / elapsed:,.0f}"
    age = sample.checkpoint_age_s
    checkpoint = "none yet" if age is None else f"{_duration(age)} ago"
    return (
        f"{job} {clock} {sample.state}  in {rate}/s  rows {_count(totals.get('rows_written'))}"
        f"  dead letters {_count(totals.get('dead_letters'))}  lag {_count(totals.get('lag'))}"
        f"  checkpoint {checkpoint}"
    )


def _count(value: float | None) -> str:
    return "-" if value is None else f"{max(value, 0):,.0f}"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.0f} h"


class StatusLine(threading.Thread):
    """Prints the status line of a job every ``interval`` seconds until :meth:`stop`."""

    def __init__(self, job: str, get: GetJson, job_id: str, interval: float, out: TextIO) -> None:
        super().__init__(name="jupiter-status-line", daemon=True)
        self._job, self._get, self._job_id = job, get, job_id
        self._interval, self._out = interval, out
        self._stopped = threading.Event()

    def run(self) -> None:
        previous: Sample | None = None
        while not self._stopped.wait(self._interval):
            try:
                sample = take_sample(self._get, self._job_id)
            except (OSError, ValueError, KeyError, TypeError) as exc:  # not up yet, going down
                log.debug("no status: %s", exc)
                continue
            clock = time.strftime("%H:%M:%S")
            self._out.write(format_status(self._job, sample, previous, clock) + "\n")
            self._out.flush()
            previous = sample

    def stop(self) -> None:
        self._stopped.set()
        self.join(timeout=REQUEST_TIMEOUT_S * 8)


@contextlib.contextmanager
def foreground(client: JobClient, settings: Settings, out: TextIO | None = None) -> Iterator[None]:
    """While a local run's job runs: its web UI's address (printed once) and, on a terminal,
    the status line."""
    stream = sys.stdout if out is None else out
    url = rest_url(client)
    if url is not None and settings.flink_web_ui_port != "off" and find_web_ui_jar(settings):
        announce(settings, f"Flink web UI: {url}/")
    line: StatusLine | None = None
    if url is not None and status_line_enabled(settings, stream):
        job_id = str(client.get_job_id())
        line = StatusLine(
            settings.job_name, rest_getter(url), job_id, settings.status_interval_s, stream
        )
        line.start()
    try:
        yield
    finally:
        if line is not None:
            line.stop()
