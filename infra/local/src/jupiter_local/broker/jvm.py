"""The local broker's JVM: its files under the data dir (server.properties, log4j2, pid file),
the KRaft storage format, the detached launch, and which running process is ours."""

from __future__ import annotations

import base64
import os
import shlex
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from jupiter_common.errors import JupiterError
from jupiter_local.paths import REPO
from jupiter_local.processes import HOST, process_alive

KAFKA_JARS_DIR = REPO / ".cache" / "jars" / "kafka"
DEFAULT_DATA_DIR = REPO / ".jupiter" / "kafka"

PID_FILE = "broker.pid"
SERVER_PROPERTIES = "server.properties"
LOG4J_PROPERTIES = "log4j2.properties"
BROKER_LOG = "broker.log"
BROKER_OUT = "broker.out"
LOGS_SUBDIR = "logs"


# Packages that are chatty at INFO without telling a local user anything useful.
NOISY_LOGGERS = (
    "org.apache.kafka.common.config.AbstractConfig",
    "org.apache.kafka.common.utils.AppInfoParser",
    "org.apache.kafka.clients",
    "org.apache.kafka.common.metrics",
    "org.apache.kafka.storage.internals.log",
    "org.apache.kafka.image",
    "kafka.log",
    "kafka.request.logger",
    "state.change.logger",
    "kafka.server.metadata",
)


class KafkaLocalError(JupiterError):
    """A local broker operation failed; the message carries the context."""


@dataclass(frozen=True)
class BrokerConfig:
    """Settings for one local broker; ``data_dir`` holds everything it writes."""

    data_dir: Path
    port: int = 9092
    controller_port: int = 9093
    partitions: int = 4

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"


@dataclass(frozen=True)
class BrokerHandle:
    """A running broker: ``bootstrap`` is what clients pass as bootstrap.servers."""

    pid: int
    bootstrap: str
    data_dir: Path
    already_running: bool = False


def read_pid(data_dir: Path) -> int | None:
    try:
        return int((data_dir / PID_FILE).read_text().strip())
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise KafkaLocalError(f"corrupt pid file {data_dir / PID_FILE}: {exc}") from exc


def is_our_broker(pid: int, data_dir: Path) -> bool:
    """True if ``pid`` is a live kafka.Kafka JVM started with this data dir's config."""
    if not process_alive(pid):
        return False
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (FileNotFoundError, ProcessLookupError):
        return False
    config = str(data_dir / SERVER_PROPERTIES).encode()
    return b"kafka.Kafka" in argv and config in argv


def running_pid(data_dir: Path) -> int | None:
    """Pid of the broker this script started for ``data_dir``; drops stale pid files."""
    pid = read_pid(data_dir)
    if pid is None:
        return None
    if is_our_broker(pid, data_dir):
        return pid
    (data_dir / PID_FILE).unlink(missing_ok=True)
    return None


def java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise KafkaLocalError("java not found: install a JDK (17+) or set JAVA_HOME")
    return java


def classpath() -> str:
    if not any(KAFKA_JARS_DIR.glob("kafka_2.13-*.jar")):
        raise KafkaLocalError(
            f"Kafka jars missing in {KAFKA_JARS_DIR}: run `bash infra/local/setup.sh` first"
        )
    return f"{KAFKA_JARS_DIR}/*"


def server_properties(cfg: BrokerConfig) -> str:
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{HOST}:{cfg.controller_port}",
        "listeners": f"PLAINTEXT://{HOST}:{cfg.port},CONTROLLER://{HOST}:{cfg.controller_port}",
        "advertised.listeners": f"PLAINTEXT://{HOST}:{cfg.port}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(cfg.data_dir / LOGS_SUBDIR),
        "num.partitions": str(cfg.partitions),
        "default.replication.factor": "1",
        "auto.create.topics.enable": "false",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
    }
    header = "# Written by jupiter_local/broker.py; regenerated on every start.\n"
    return header + "".join(f"{key}={value}\n" for key, value in props.items())


def log4j_properties(data_dir: Path) -> str:
    lines = [
        "# Written by jupiter_local/broker.py; regenerated on every start.",
        "status = warn",
        "name = jupiter-local-kafka",
        "appender.file.type = RollingFile",
        "appender.file.name = FILE",
        f"appender.file.fileName = {data_dir / BROKER_LOG}",
        f"appender.file.filePattern = {data_dir / BROKER_LOG}.%i",
        "appender.file.layout.type = PatternLayout",
        "appender.file.layout.pattern = [%d] %p %m (%c)%n",
        "appender.file.policies.type = Policies",
        "appender.file.policies.size.type = SizeBasedTriggeringPolicy",
        "appender.file.policies.size.size = 50MB",
        "appender.file.strategy.type = DefaultRolloverStrategy",
        "appender.file.strategy.max = 2",
        "rootLogger.level = INFO",
        "rootLogger.appenderRef.file.ref = FILE",
    ]
    for i, name in enumerate(NOISY_LOGGERS):
        lines += [f"logger.noisy{i}.name = {name}", f"logger.noisy{i}.level = WARN"]
    return "\n".join(lines) + "\n"


def write_configs(cfg: BrokerConfig) -> None:
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    (cfg.data_dir / SERVER_PROPERTIES).write_text(server_properties(cfg))
    (cfg.data_dir / LOG4J_PROPERTIES).write_text(log4j_properties(cfg.data_dir))


def jvm_base(data_dir: Path) -> list[str]:
    return [
        java(),
        "-cp",
        classpath(),
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={data_dir / LOG4J_PROPERTIES}",
    ]


def new_cluster_id() -> str:
    """Kafka-style cluster id: unpadded base64url of a random UUID, never starting with '-'."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cid.startswith("-"):  # would be parsed as an option by StorageTool
            return cid


def is_formatted(data_dir: Path) -> bool:
    return (data_dir / LOGS_SUBDIR / "meta.properties").is_file()


def format_storage(data_dir: Path) -> None:
    cmd = [
        *jvm_base(data_dir),
        "kafka.tools.StorageTool",
        "format",
        "-t",
        new_cluster_id(),
        "-c",
        str(data_dir / SERVER_PROPERTIES),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise KafkaLocalError(
            f"formatting KRaft storage in {data_dir / LOGS_SUBDIR} failed "
            f"(exit {result.returncode}):\n{result.stdout}{result.stderr}"
        )


def spawn_broker(data_dir: Path) -> int:
    """Launch kafka.Kafka fully detached and return its pid.

    The JVM is backgrounded by a short-lived ``sh`` (itself in a new session), so
    it is re-parented away from this process: no zombie and no Popen
    ResourceWarning in a long-lived caller such as pytest.
    """
    java_cmd = shlex.join([*jvm_base(data_dir), "kafka.Kafka", str(data_dir / SERVER_PROPERTIES)])
    out = shlex.quote(str(data_dir / BROKER_OUT))
    script = f"{java_cmd} </dev/null >>{out} 2>&1 & echo $!"
    result = subprocess.run(
        ["/bin/sh", "-c", script],
        capture_output=True,
        text=True,
        check=False,
        cwd=data_dir,
        start_new_session=True,
    )
    if result.returncode != 0 or not result.stdout.strip().isdigit():
        raise KafkaLocalError(f"could not launch the broker JVM: {result.stderr.strip()}")
    pid = int(result.stdout.strip())
    (data_dir / PID_FILE).write_text(f"{pid}\n")
    return pid


def configured_port(data_dir: Path) -> int | None:
    try:
        text = (data_dir / SERVER_PROPERTIES).read_text()
    except FileNotFoundError:
        return None
    for line in text.splitlines():
        if line.startswith("advertised.listeners="):
            return int(line.rsplit(":", 1)[1])
    return None
