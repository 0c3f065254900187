"""Runs one Jupiter job: settings, Flink environment, the job's statements, stop and resume.

A job package declares a :class:`JobSpec` (its name, its table and a ``build`` function over a
:class:`~jupiter_common.flink.pipeline.Pipeline`) and calls :func:`run_job` from ``main``. Only
the statements in between differ from job to job.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from py4j.protocol import Py4JJavaError
from pyflink.common import JobClient
from pyflink.datastream import StreamExecutionEnvironment
from pyflink.java_gateway import get_gateway

from jupiter_common.clickhouse import connect, ensure_table
from jupiter_common.errors import JupiterError
from jupiter_common.flink.environment import create_environment
from jupiter_common.flink.metrics import announce_endpoint
from jupiter_common.flink.pipeline import Pipeline
from jupiter_common.flink.restore import restore_point
from jupiter_common.flink.status_line import foreground
from jupiter_common.logs import announce, configure_driver_logging, keep_log_level
from jupiter_common.settings import Settings, load_settings
from jupiter_common.tables import TableSpec

log = logging.getLogger("jupiter")


@dataclass(frozen=True)
class JobSpec:
    name: str
    """``base``, ``events`` or ``movements``: sets the default consumer group and job name."""
    table: TableSpec
    build: Callable[[Pipeline], None]


def run_job(spec: JobSpec, argv: Sequence[str] | None = None) -> int:
    """The job's command line. Returns the process exit code."""
    parser = argparse.ArgumentParser(
        prog=f"jupiter-{spec.name}-job",
        description=f"Land sessions-topic in ClickHouse table {spec.table.name}.",
    )
    parser.add_argument(
        "--bounded",
        action="store_true",
        help="read up to the end offsets present at start, then finish (JUPITER_BOUNDED=true)",
    )
    parser.add_argument(
        "--print-settings", action="store_true", help="print the settings (password hidden)"
    )
    args = parser.parse_args(argv)
    overrides: dict[str, object] = {"bounded": True} if args.bounded else {}
    try:
        settings = load_settings(spec.name, overrides=overrides)
    except JupiterError as exc:
        print(f"jupiter-{spec.name}-job: {exc}", file=sys.stderr)
        return 2
    configure_driver_logging(settings)
    if args.print_settings:
        print(json.dumps(settings.redacted(), indent=2))
        return 0
    log.info("starting %s with %s", settings.job_name, json.dumps(settings.redacted()))
    stop = threading.Event()
    if not settings.bounded:
        for signum in (signal.SIGTERM, signal.SIGINT):  # from the start: Flink starts slowly
            signal.signal(signum, lambda *_: stop.set())
    try:
        restore = restore_point(settings)
        env, t_env = create_environment(settings, restore)
        keep_log_level(settings)  # PyFlink sets the root logger to WARNING
        prepare_table(settings, spec.table)
        pipeline = Pipeline(settings, t_env)
        spec.build(pipeline)
        if stop.is_set():
            announce(settings, f"stopped before {settings.job_name} was submitted")
            return 0
        started = time.monotonic()
        result = pipeline.execute()
        client = result.get_job_client()
        if submitted_to_cluster(env):
            if not settings.bounded:
                announce(settings, f"submitted {settings.job_name} as job {client.get_job_id()}")
                return 0
            result.wait()
        else:
            announce_endpoint(settings, str(client.get_job_id()))  # metrics URL (flink.metrics)
            with foreground(client, settings):  # the web UI's URL, the status line
                if settings.bounded:
                    result.wait()
                else:
                    run_until_stopped(client, settings, stop)
    except JupiterError as exc:
        print(f"jupiter-{spec.name}-job: {exc}", file=sys.stderr)
        return 1
    log.info("%s finished in %.1f s", settings.job_name, time.monotonic() - started)
    return 0


def prepare_table(settings: Settings, table: TableSpec) -> None:
    """Create the job's database and table when missing, else add the table's new columns and
    check the others (see :func:`ensure_table`; ``hatch run migrate`` does the same without a
    job): once per job start, in the driver, before any function writes."""
    client = connect(settings)
    try:
        ensure_table(client, table, settings.clickhouse_database)
    finally:
        client.close()


def submitted_to_cluster(env: StreamExecutionEnvironment) -> bool:
    """True under ``flink run`` or a Flink application cluster: the cluster runs the job and
    stops it (with a savepoint) itself, so the driver submits it and returns."""
    return "ContextEnvironment" in env._j_stream_execution_environment.getClass().getName()


def run_until_stopped(client: JobClient, settings: Settings, stop: threading.Event) -> None:
    """Run a streaming job until it ends or ``stop`` is set (by SIGTERM or SIGINT).

    SIGTERM or SIGINT (Ctrl-C, ``docker stop``) stops the job *with a savepoint*, so the rows
    still buffered in the sink and the Kafka offsets are kept together; the next start resumes
    from it (see :mod:`jupiter_common.flink.restore`). A job that cannot take a savepoint (it is
    restarting after a failure, say ClickHouse is down) is cancelled instead: its retained
    checkpoints hold the same pair, and the next start resumes from the newest one.
    """
    log.info("job %s submitted as %s", settings.job_name, client.get_job_id())
    while not stop.wait(1.0):
        if client.get_job_status().result().is_globally_terminal_state():
            client.get_job_execution_result().result()
            return
    log.info("stopping %s with a savepoint", settings.job_name)
    try:
        path = stop_with_savepoint(client, settings.savepoint_dir or None)
    except Py4JJavaError as exc:
        reason = _root_cause(exc)
        log.warning("no savepoint (%s); cancelling %s", reason, settings.job_name)
        client.cancel().result()
        resume = restore_point(settings)
        announce(
            settings,
            f"stopped without a savepoint ({reason}); the next start resumes from"
            f" {resume or 'the consumer group offsets'}",
        )
        return
    log.info("stopped with savepoint %s", path)
    announce(settings, f"savepoint: {path}")


def _root_cause(exc: Py4JJavaError) -> str:
    """The innermost Java exception's class and message, on one line."""
    cause = exc.java_exception
    while cause.getCause() is not None and cause.getCause() != cause:
        cause = cause.getCause()
    text = str(cause.toString()).splitlines()
    return text[0] if text else "unknown error"


def stop_with_savepoint(client: JobClient, directory: str | None) -> str:
    """Drain the job (flushing every sink buffer), take a savepoint and stop.

    PyFlink 2.2's ``JobClient.stop_with_savepoint`` calls a Java method that no longer exists
    (the savepoint format argument is missing), so this calls the Java client directly.
    """
    gateway = get_gateway()
    canonical = gateway.jvm.org.apache.flink.core.execution.SavepointFormatType.CANONICAL
    future = client._j_job_client.stopWithSavepoint(True, directory, canonical)
    return str(future.get())
