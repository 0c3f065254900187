"""Log output of a job, readable text or one JSON object per line (``LOG_FORMAT``).

A job logs from three places:

- the driver (``python -m jupiter_<job>``): :func:`configure_driver_logging`, to stderr as text,
  to stdout as JSON;
- the Python workers Flink starts in ``process`` mode: their root logger has one handler, Beam's
  ``FnApiLogRecordHandler``, which sends each record to the JVM over gRPC, where Beam's
  ``Slf4jLogWriter`` logs it through log4j under the logger ``<file>:<line>``.
  :func:`configure_worker_logging` (called when a function opens) gives Jupiter's loggers the
  level of ``LOG_LEVEL`` and, for JSON, renders each record as the JSON object (exception
  included) before it is sent;
- the JVM's log4j: :func:`prepare_jvm_logging` picks its configuration for a local run. In
  JSON mode (``log4j-local-json.properties``) the JVM's own log file is JSON too, and the
  workers' JSON lines are also written to the JVM's stdout, the job process's stdout.

So with ``LOG_FORMAT=json`` the job's stdout carries only JSON objects, one per line, each with
``time`` (UTC, ISO 8601), ``level``, ``job``, ``logger``, ``message`` and, when there is one,
``exception``. A record carries what the code logs and nothing else: no environment, no
settings beyond :meth:`~jupiter_common.settings.Settings.redacted`.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import MutableMapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from jupiter_common.settings import Settings

TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JUPITER_LOGGERS: Final = ("jupiter", "jupiter_common")
"""Loggers that follow ``LOG_LEVEL``: PyFlink sets the root logger to WARNING in the driver, and
Beam sets it to INFO in the workers."""
LOCAL_LOG4J_JSON: Final = Path(__file__).parent / "flink" / "log4j-local-json.properties"
"""Log4j 2 configuration of a local run's JVM with ``LOG_FORMAT=json``."""
JOB_VARIABLE: Final = "JUPITER_LOG_JOB"
"""The job's name for the JVM's log4j configuration (``${env:JUPITER_LOG_JOB}``)."""
_WORKER_FILTER: Final = "_jupiter_json"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line: time, level, job, logger, message, exception."""

    def __init__(self, job: str) -> None:
        super().__init__()
        self._job = job

    def format(self, record: logging.LogRecord) -> str:
        created = datetime.fromtimestamp(record.created, tz=UTC)
        entry: dict[str, object] = {
            "time": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "job": self._job,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_driver_logging(settings: Settings) -> None:
    """The driver's logging: the level of ``LOG_LEVEL``; text on stderr, or JSON on stdout (the
    stream the JVM's JSON lines share)."""
    handler = logging.StreamHandler(sys.stdout if settings.log_format == "json" else sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter(settings.job_name))
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(settings.log_level)
    keep_log_level(settings)


def keep_log_level(settings: Settings) -> None:
    """Give Jupiter's loggers the level of ``LOG_LEVEL`` again (PyFlink resets the root's)."""
    for name in JUPITER_LOGGERS:
        logging.getLogger(name).setLevel(settings.log_level)


class _RenderJson(logging.Filter):
    """Renders a worker's record as the JSON object before Beam's handler sends it: the
    handler sends ``format(record)`` as the message and the traceback apart (log4j would print
    it after the message, on lines of its own), so the exception goes into the object and the
    record leaves without one."""

    def __init__(self, job: str) -> None:
        super().__init__(_WORKER_FILTER)
        self._formatter = JsonFormatter(job)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self._formatter.format(record)
        record.args = None
        record.exc_info = None
        record.exc_text = None
        record.stack_info = None
        return True


def configure_worker_logging(settings: Settings) -> None:
    """In a Python worker (from a function's ``open``): Jupiter's loggers at ``LOG_LEVEL``, and
    with ``LOG_FORMAT=json`` every record rendered as JSON. Idempotent: a worker runs several
    functions."""
    keep_log_level(settings)
    if settings.log_format != "json":
        return
    first = False
    for handler in logging.getLogger().handlers:
        if not any(getattr(f, "name", None) == _WORKER_FILTER for f in handler.filters):
            handler.addFilter(_RenderJson(settings.job_name))
            first = True
    if first:
        logging.getLogger(__name__).info(
            "python worker %d logs JSON at level %s", os.getpid(), settings.log_level
        )


def prepare_jvm_logging(
    settings: Settings, environ: MutableMapping[str, str] | None = None
) -> Path:
    """Before PyFlink starts the JVM of a local run: the log4j 2 configuration for
    ``LOG_FORMAT``; sets ``JUPITER_LOG_JOB`` (the ``job`` of the JVM's JSON lines) in ``environ``
    (default ``os.environ``)."""
    from jupiter_common.flink.environment import LOCAL_LOG4J

    env = os.environ if environ is None else environ
    env[JOB_VARIABLE] = settings.job_name
    return LOCAL_LOG4J_JSON if settings.log_format == "json" else LOCAL_LOG4J


def announce(settings: Settings, message: str) -> None:
    """Tell the person running the job, whatever ``LOG_LEVEL``: a plain line on stdout, or with
    ``LOG_FORMAT=json`` a JSON object (level INFO, logger ``jupiter``), so that stdout stays JSON
    only."""
    if settings.log_format == "json":
        record = logging.LogRecord("jupiter", logging.INFO, __file__, 0, message, None, None)
        message = JsonFormatter(settings.job_name).format(record)
    print(message, flush=True)  # noqa: T201
