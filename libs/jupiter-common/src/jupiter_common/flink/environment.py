"""The Flink execution environment a Jupiter job runs in, configured from :class:`Settings`.

Configuration keys are Flink 2.x names. Python functions run in ``process`` mode: chDB hangs in
``thread`` mode, and process mode flushes each Python bundle before a checkpoint barrier. Records
cross to Python in Arrow batches of ``SINK_BATCH_SIZE`` rows; a bundle (``FLINK_PYTHON_BUNDLE_SIZE``
records, or ``SINK_FLUSH_INTERVAL_MS``) ends with every batch handed over, so no row waits longer
than the flush interval in a Python function. Object reuse is on: Flink's SQL operators and its
Python operators copy what they keep (a Python operator copies the rows it queues for its
results), so chained operators hand rows on without a copy each; those copies took a fifth of the
source task's CPU samples in events-job.

No secret reaches a log: the Python workers inherit the JVM's environment, and Flink's Python
runner (Beam's ``DefaultJobBundleFactory``) logs that environment whole, so
:func:`create_environment` first removes the secret variables from the driver's environment, before
PyFlink starts the JVM (the settings, secrets included, reach the workers as a pickled value).
A JVM PyFlink starts itself also gets Jupiter's log configuration, which silences that logger.
"""

from __future__ import annotations

import logging
import os
from collections.abc import MutableMapping
from pathlib import Path
from typing import Final

from pyflink.common import Configuration
from pyflink.datastream import StreamExecutionEnvironment
from pyflink.table import StreamTableEnvironment

from jupiter_common.errors import ConnectorJarNotFoundError
from jupiter_common.flink.metrics import enable_local_reporter
from jupiter_common.flink.web_ui import (
    WEB_UI_JAR,
    prepare_web_ui,
    rest_configuration,
    starts_own_cluster,
)
from jupiter_common.logs import prepare_jvm_logging
from jupiter_common.settings import Settings, drop_secret_variables

REQUIRED_JARS: Final = {
    "flink-sql-connector-kafka-*.jar": "the Flink Kafka connector",
    "jupiter-functions-*.jar": "Jupiter's Flink functions (libs/jupiter-functions)",
}
"""What every job needs on Flink's class path, by file pattern."""

LOCAL_JVM_ARGS: Final = "-Xms64m -Xmx768m -XX:+UseSerialGC"
"""Heap of a JVM PyFlink starts for an in-process run (unless ``JVM_ARGS`` says otherwise). The
JVM's default, a quarter of the machine's memory, lets the heap grow far past what a job needs:
measured, events-job at 400k messages has under 100 MB live after a collection. The serial
collector grows the heap only as the live data needs (up to 768 MB, room for a few hundred
thousand live sessions) and, on the two cores a local run shares with Python, costs no more
than a parallel one: peak RSS of the JVM 1,018 MB with G1 and ``-Xmx768m``, 644 MB so."""

LOCAL_LOG4J: Final = Path(__file__).with_name("log4j-local.properties")
"""Log4j 2 configuration of a JVM PyFlink starts for an in-process run."""
BEAM_ENVIRONMENT_LOGGER: Final = (
    "org.apache.beam.runners.fnexecution.control.DefaultJobBundleFactory"
)
"""Logs the Python workers' whole environment (INFO and WARN): Jupiter's log4j configurations
(:data:`LOCAL_LOG4J`, the images, the local cluster) set it to ``ERROR``."""
SILENCE_ENVIRONMENT_DUMP: Final = (
    f"logger.beam_environment.name = {BEAM_ENVIRONMENT_LOGGER}\n"
    "logger.beam_environment.level = ERROR\n"
)
"""The log4j 2 properties that set :data:`BEAM_ENVIRONMENT_LOGGER` to ``ERROR``."""

log = logging.getLogger(__name__)


def prepare_process_environment(
    environ: MutableMapping[str, str] | None = None, log4j: Path = LOCAL_LOG4J
) -> list[str]:
    """Make this process's environment (default ``os.environ``) fit to start Flink from: remove
    the secret variables, and point PyFlink at ``log4j`` (default :data:`LOCAL_LOG4J`) unless
    ``LOG4J_PROPERTIES`` or ``FLINK_CONF_DIR`` say otherwise. Returns the names of the variables
    removed."""
    env = os.environ if environ is None else environ
    removed = drop_secret_variables(env)
    if "LOG4J_PROPERTIES" not in env and "FLINK_CONF_DIR" not in env:
        env["LOG4J_PROPERTIES"] = str(log4j)
    env.setdefault("JVM_ARGS", LOCAL_JVM_ARGS)
    return removed


def flink_configuration(settings: Settings, restore_path: str | None = None) -> Configuration:
    """The job's Flink configuration (everything but the jars)."""
    conf = Configuration()
    values: dict[str, str] = {
        "pipeline.name": settings.job_name,
        "python.execution-mode": "process",
        "pipeline.object-reuse": "true",
        "execution.checkpointing.interval": f"{settings.flink_checkpoint_interval_ms} ms",
        "execution.checkpointing.mode": "EXACTLY_ONCE",
        "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
        "execution.checkpointing.num-retained": "3",
        "state.backend.type": settings.flink_state_backend,
        "execution.checkpointing.incremental": str(settings.flink_state_backend == "rocksdb"),
        "table.exec.state.ttl": f"{settings.session_state_ttl_ms} ms",
        "python.fn-execution.arrow.batch.size": str(settings.sink_batch_size),
        "python.fn-execution.bundle.size": str(settings.flink_python_bundle_size),
        "python.fn-execution.bundle.time": str(bundle_time_ms(settings)),
    }
    if settings.checkpoint_root:
        values["execution.checkpointing.dir"] = settings.checkpoint_root
        values["execution.checkpointing.savepoint-dir"] = settings.savepoint_dir
    if settings.bounded:
        # A bounded run is a batch of work: fail fast rather than retry forever.
        values["restart-strategy.type"] = "fixed-delay"
        values["restart-strategy.fixed-delay.attempts"] = "2"
        values["restart-strategy.fixed-delay.delay"] = "1 s"
    else:
        values["restart-strategy.type"] = "exponential-delay"
        values["restart-strategy.exponential-delay.initial-backoff"] = "1 s"
        values["restart-strategy.exponential-delay.max-backoff"] = "1 min"
    if restore_path:
        values["execution.state-recovery.path"] = restore_path
    for key, value in values.items():
        conf.set_string(key, value)
    return conf


def bundle_time_ms(settings: Settings) -> int:
    """``python.fn-execution.bundle.time`` for ``SINK_FLUSH_INTERVAL_MS``: half of it.

    Flink checks a Python operator's bundle age on a timer of that period and ends the bundle
    only when it is older than the period, counted from when the previous one ended; the
    previous one ended just after the previous tick, so on a steady stream a bundle ends every
    *second* tick. Half the interval keeps every record within the interval of reaching Python.
    Measured with ``hatch run bench --rate 10000`` and a 1 s interval, event-to-queryable
    p50/p99 of events-job (two Python steps): 2.4/5.1 s with the whole interval as bundle time,
    1.3/2.7 s with half of it."""
    return max(settings.sink_flush_interval_ms // 2, 1)


def connector_jars(settings: Settings) -> list[str]:
    """``file://`` URLs of the jars to ship with the job: the Kafka connector and Jupiter's
    functions (:data:`REQUIRED_JARS`).

    ``FLINK_CONNECTOR_JARS`` names jar files or directories (separated by ``;``). Unset, the jars
    must already be in Flink's own ``lib`` (as in the container images): nothing is shipped.
    """
    spec = settings.flink_connector_jars
    if not spec:
        missing = [what for pattern, what in REQUIRED_JARS.items() if not _in_flink_lib(pattern)]
        if not missing:
            return []
        raise ConnectorJarNotFoundError(
            f"{' and '.join(missing)} not in Flink's lib directory and FLINK_CONNECTOR_JARS is"
            " not set; run `bash infra/local/setup.sh` and set"
            " FLINK_CONNECTOR_JARS=.cache/jars/flink (hatch run sets it for you)"
        )
    jars: list[Path] = []
    for part in filter(None, (p.strip() for p in spec.split(";"))):
        path = Path(part).expanduser().resolve()
        found = sorted(path.glob("*.jar")) if path.is_dir() else [path] if path.is_file() else []
        if not found:
            raise ConnectorJarNotFoundError(
                f"FLINK_CONNECTOR_JARS={part!r}: no jar there; run `bash infra/local/setup.sh`"
            )
        jars.extend(jar for jar in found if not jar.match(WEB_UI_JAR))  # see flink.web_ui
    return [jar.as_uri() for jar in jars]


def _in_flink_lib(pattern: str) -> bool:
    import pyflink

    libs = [
        os.environ.get("FLINK_LIB_DIR", ""),
        os.path.join(os.environ.get("FLINK_HOME", ""), "lib"),
        str(Path(pyflink.__file__).parent / "lib"),
    ]
    return any(lib and any(Path(lib).glob(pattern)) for lib in libs)


def create_environment(
    settings: Settings, restore_path: str | None = None
) -> tuple[StreamExecutionEnvironment, StreamTableEnvironment]:
    """A streaming environment and its table environment for ``settings``, restoring the
    savepoint or checkpoint at ``restore_path`` if given.

    Call it with the settings already read: it removes the secret variables from this process's
    environment before PyFlink starts (or connects to) the JVM."""
    removed = prepare_process_environment(log4j=prepare_jvm_logging(settings))
    if removed:
        log.info("removed %s from the environment before starting Flink", ", ".join(removed))
    reporter = enable_local_reporter(settings)  # before the JVM starts (see flink.metrics)
    local = starts_own_cluster()
    if local:  # the web UI's jar, before the JVM starts (see flink.web_ui)
        prepare_web_ui(settings)
    conf = flink_configuration(settings, restore_path)
    for key, value in reporter.items():
        conf.set_string(key, value)
    if local:  # a local run: its MiniCluster's REST endpoint
        for key, value in rest_configuration(settings).items():
            conf.set_string(key, value)
    jars = connector_jars(settings)
    if jars:
        conf.set_string("pipeline.jars", ";".join(jars))
    env = StreamExecutionEnvironment.get_execution_environment(conf)
    env.set_parallelism(settings.flink_parallelism)
    env.set_max_parallelism(settings.flink_max_parallelism)
    return env, StreamTableEnvironment.create(env)
