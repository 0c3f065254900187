"""The Flink web UI of a local run: the MiniCluster a job starts in its own process.

A job run with ``hatch run jobs/<job>`` (``python -m jupiter_<job>``) runs in a MiniCluster,
whose REST endpoint serves the web UI (job graph, backpressure, checkpoints) when
``flink-runtime-web`` is on the class path of the JVM PyFlink starts. PyFlink's own ``lib`` lacks
that jar: ``infra/local/setup.sh`` fetches it into ``.cache/jars/flink`` with the connectors
(``infra/pom.xml``), :func:`~jupiter_common.flink.environment.connector_jars` leaves it out of
the jars a job ships, and :func:`prepare_web_ui` puts it on the JVM's class path through
``HADOOP_CLASSPATH``, the one variable PyFlink's launcher appends to that class path
(``pyflink_gateway_server.construct_hadoop_classpath``; ``pipeline.jars`` reach the user-code
class loader only, and the REST endpoint looks for the UI with ``Class.forName``).

``FLINK_WEB_UI_PORT`` chooses the port: a range (default ``8081-8099``, Flink binds the first
free one), one port, ``0`` for any free port, or ``off`` (no UI files, and the REST endpoint,
which a MiniCluster always starts, on any free port). The endpoint listens on 127.0.0.1 only.
:func:`rest_url` reads the address the MiniCluster actually bound.

A job run on a Flink cluster (``flink run``, the local cluster, Kubernetes) is not touched: the
cluster has its own UI, and the driver then runs inside a JVM that is already started
(``PYFLINK_GATEWAY_PORT`` is set).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any, Final

from jupiter_common.settings import Settings

WEB_UI_JAR: Final = "flink-runtime-web-*.jar"
"""The web UI's jar, by file pattern: fetched with the connectors, never shipped with a job."""
CLASSPATH_VARIABLE: Final = "HADOOP_CLASSPATH"
"""The one variable PyFlink's launcher appends to the class path of the JVM it starts."""


def add_to_local_classpath(jar: Path, environ: MutableMapping[str, str]) -> None:
    """Put ``jar`` on the class path of the JVM PyFlink starts for a local run (once): what a
    MiniCluster finds by class name (the web UI, the Prometheus reporter) must be there, not
    among the job's jars. Call it before that JVM starts."""
    present = [p for p in environ.get(CLASSPATH_VARIABLE, "").split(os.pathsep) if p]
    if str(jar) not in present:
        environ[CLASSPATH_VARIABLE] = os.pathsep.join([*present, str(jar)])


"""Appended by PyFlink's launcher to the class path of the JVM it starts."""
LOOPBACK: Final = "127.0.0.1"

log = logging.getLogger(__name__)


def starts_own_cluster(environ: Mapping[str, str] | None = None) -> bool:
    """True when PyFlink will start a JVM (and a MiniCluster) for this process: no gateway to a
    running Flink process is given."""
    env = os.environ if environ is None else environ
    return "PYFLINK_GATEWAY_PORT" not in env


def find_web_ui_jar(settings: Settings) -> Path | None:
    """The ``flink-runtime-web`` jar in ``FLINK_CONNECTOR_JARS``'s directories, if there."""
    for part in filter(None, (p.strip() for p in settings.flink_connector_jars.split(";"))):
        path = Path(part).expanduser()
        candidates = sorted(path.glob(WEB_UI_JAR)) if path.is_dir() else [path]
        found = [jar for jar in candidates if jar.is_file() and jar.match(WEB_UI_JAR)]
        if found:
            return found[-1].resolve()
    return None


def prepare_web_ui(settings: Settings, environ: MutableMapping[str, str] | None = None) -> bool:
    """Before PyFlink starts its JVM: put the web UI's jar on that JVM's class path (see the
    module docstring). Returns whether the UI will be served; logs why not when it is asked for
    and its jar is missing."""
    env = os.environ if environ is None else environ
    if settings.flink_web_ui_port == "off" or not starts_own_cluster(env):
        return False
    jar = find_web_ui_jar(settings)
    if jar is None:
        log.warning(
            "no Flink web UI: %s not found in FLINK_CONNECTOR_JARS; run `hatch run setup`",
            WEB_UI_JAR,
        )
        return False
    add_to_local_classpath(jar, env)
    return True


def rest_configuration(settings: Settings) -> dict[str, str]:
    """The Flink options of a local run's REST endpoint: on 127.0.0.1, on the port or range of
    ``FLINK_WEB_UI_PORT`` (any free port when it is ``off``)."""
    port = settings.flink_web_ui_port
    return {
        "rest.bind-address": LOOPBACK,
        "rest.address": LOOPBACK,
        "rest.bind-port": "0" if port == "off" else port,
    }


def rest_url(job_client: Any) -> str | None:
    """``http://127.0.0.1:<port>`` of the MiniCluster running ``job_client``'s job (a PyFlink
    ``JobClient``), or None when the job does not run in a MiniCluster of this process.

    Flink's ``MiniClusterJobClient`` keeps its cluster in a private field; the cluster's
    ``getRestAddress()`` is public and gives the port actually bound (from a range, or 0)."""
    try:
        java_client = job_client._j_job_client
        field = java_client.getClass().getDeclaredField("miniCluster")
        field.setAccessible(True)
        address = field.get(java_client).getRestAddress().get()
    except Exception as exc:  # a cluster's client has no such field: no local UI
        log.debug("no local REST endpoint: %s", exc)
        return None
    return str(address.toString()).rstrip("/")
