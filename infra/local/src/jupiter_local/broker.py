"""Run a real single-node Apache Kafka broker (KRaft mode) for local work and tests.

Why this exists: Jupiter's jobs and integration tests must run against a real
Kafka broker (mocks and embedded fakes hide protocol, rebalance and transaction
behaviour), but the project has no Docker. This script runs the genuine
``kafka.Kafka`` server straight from the jars that ``infra/local/setup.sh``
fetches into ``.cache/jars/kafka``: one JVM acting as both broker and KRaft
controller, bound to 127.0.0.1, with all state under a single data dir.

CLI::

    python -m jupiter_local.broker start [--port 9092] [--controller-port 9093]
                                      [--data-dir .jupiter/kafka] [--partitions 4]
                                      [--timeout 60]
    python -m jupiter_local.broker stop [--data-dir ...] [--timeout 30]
    python -m jupiter_local.broker status [--data-dir ...]      # exit 0 running, 3 not
    python -m jupiter_local.broker create-topics --bootstrap 127.0.0.1:9092 NAME[:PARTITIONS] ...
    python -m jupiter_local.broker reset [--data-dir ...]       # stop + delete data dir

``start`` without ports reuses the running broker whatever its port, else takes 9092/9093, or
free ports when something else holds those, and says where it runs (:func:`choose_broker`, which
the demo and the benchmark use too); with ``--port`` it takes exactly that port or fails.

The module is also loaded by pytest fixtures via importlib (it is not in a
package), so importing it has no side effects; use :func:`start_broker`,
:func:`stop_broker`, :func:`choose_broker` and :func:`create_topics`.
"""

from __future__ import annotations

import argparse
import base64
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from jupiter_local.paths import REPO

KAFKA_JARS_DIR = REPO / ".cache" / "jars" / "kafka"
DEFAULT_DATA_DIR = REPO / ".jupiter" / "kafka"
HOST = "127.0.0.1"

PID_FILE = "broker.pid"
SERVER_PROPERTIES = "server.properties"
LOG4J_PROPERTIES = "log4j2.properties"
BROKER_LOG = "broker.log"
BROKER_OUT = "broker.out"
LOGS_SUBDIR = "logs"

POLL_INTERVAL_S = 0.25
ADMIN_TIMEOUT_S = 2.0
LOG_TAIL_LINES = 40
EXIT_NOT_RUNNING = 3

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


class KafkaLocalError(Exception):
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


# --------------------------------------------------------------------------- processes


def _read_pid(data_dir: Path) -> int | None:
    try:
        return int((data_dir / PID_FILE).read_text().strip())
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise KafkaLocalError(f"corrupt pid file {data_dir / PID_FILE}: {exc}") from exc


def _process_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie (reaping it if it is our child)."""
    try:
        if os.waitpid(pid, os.WNOHANG) != (0, 0):
            return False
    except ChildProcessError:
        pass  # not our child: fall through to the /proc check
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X")


def _is_our_broker(pid: int, data_dir: Path) -> bool:
    """True if ``pid`` is a live kafka.Kafka JVM started with this data dir's config."""
    if not _process_alive(pid):
        return False
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (FileNotFoundError, ProcessLookupError):
        return False
    config = str(data_dir / SERVER_PROPERTIES).encode()
    return b"kafka.Kafka" in argv and config in argv


def _running_pid(data_dir: Path) -> int | None:
    """Pid of the broker this script started for ``data_dir``; drops stale pid files."""
    pid = _read_pid(data_dir)
    if pid is None:
        return None
    if _is_our_broker(pid, data_dir):
        return pid
    (data_dir / PID_FILE).unlink(missing_ok=True)
    return None


def _wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_INTERVAL_S)


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise KafkaLocalError("java not found: install a JDK (17+) or set JAVA_HOME")
    return java


def _classpath() -> str:
    if not any(KAFKA_JARS_DIR.glob("kafka_2.13-*.jar")):
        raise KafkaLocalError(
            f"Kafka jars missing in {KAFKA_JARS_DIR}: run `bash infra/local/setup.sh` first"
        )
    return f"{KAFKA_JARS_DIR}/*"


# --------------------------------------------------------------------------- config files


def _server_properties(cfg: BrokerConfig) -> str:
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


def _log4j_properties(data_dir: Path) -> str:
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


def _write_configs(cfg: BrokerConfig) -> None:
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    (cfg.data_dir / SERVER_PROPERTIES).write_text(_server_properties(cfg))
    (cfg.data_dir / LOG4J_PROPERTIES).write_text(_log4j_properties(cfg.data_dir))


def _jvm_base(data_dir: Path) -> list[str]:
    return [
        _java(),
        "-cp",
        _classpath(),
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={data_dir / LOG4J_PROPERTIES}",
    ]


# --------------------------------------------------------------------------- storage + launch


def _new_cluster_id() -> str:
    """Kafka-style cluster id: unpadded base64url of a random UUID, never starting with '-'."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cid.startswith("-"):  # would be parsed as an option by StorageTool
            return cid


def _is_formatted(data_dir: Path) -> bool:
    return (data_dir / LOGS_SUBDIR / "meta.properties").is_file()


def _format_storage(data_dir: Path) -> None:
    cmd = [
        *_jvm_base(data_dir),
        "kafka.tools.StorageTool",
        "format",
        "-t",
        _new_cluster_id(),
        "-c",
        str(data_dir / SERVER_PROPERTIES),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise KafkaLocalError(
            f"formatting KRaft storage in {data_dir / LOGS_SUBDIR} failed "
            f"(exit {result.returncode}):\n{result.stdout}{result.stderr}"
        )


def _spawn_broker(data_dir: Path) -> int:
    """Launch kafka.Kafka fully detached and return its pid.

    The JVM is backgrounded by a short-lived ``sh`` (itself in a new session), so
    it is re-parented away from this process: no zombie and no Popen
    ResourceWarning in a long-lived caller such as pytest.
    """
    java_cmd = shlex.join([*_jvm_base(data_dir), "kafka.Kafka", str(data_dir / SERVER_PROPERTIES)])
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


# --------------------------------------------------------------------------- readiness


def _port_open(port: int, host: str = HOST) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _port_bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def _ensure_ports_free(cfg: BrokerConfig) -> None:
    for name, port in (("--port", cfg.port), ("--controller-port", cfg.controller_port)):
        if _port_open(port) or not _port_bindable(port):
            raise KafkaLocalError(
                f"{HOST}:{port} ({name}) is already in use by another process "
                f"(not a broker started by this script for {cfg.data_dir}); "
                f"free it or pick another port"
            )


def _addresses(bootstrap: str) -> list[tuple[str, int]]:
    """``host:port[,host:port...]`` as (host, port) pairs."""
    pairs = []
    for item in bootstrap.split(","):
        host, _, port = item.strip().rpartition(":")
        if not host or not port.isdigit():
            raise KafkaLocalError(f"bad bootstrap {bootstrap!r}: expected host:port[,host:port...]")
        pairs.append((host.strip("[]"), int(port)))
    return pairs


def _listening(bootstrap: str) -> bool:
    return any(_port_open(port, host) for host, port in _addresses(bootstrap))


def kafka_answers(bootstrap: str) -> bool:
    """True if a Kafka broker at ``bootstrap`` serves metadata within a short timeout (a port
    held by anything else, or by nothing, is False)."""
    if not _listening(bootstrap):  # cheap check first; avoids librdkafka connect noise
        return False
    admin = AdminClient(
        {
            "bootstrap.servers": bootstrap,
            "socket.connection.setup.timeout.ms": 1000,
            "log_level": 0,  # a port held by something else is an answer here, not an error
        }
    )
    try:
        admin.list_topics(timeout=ADMIN_TIMEOUT_S)
    except KafkaException:
        return False
    return True


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        content = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return f"--- {path}: (missing)"
    return f"--- last {lines} lines of {path}:\n" + "\n".join(content[-lines:])


def _logs_tail(data_dir: Path) -> str:
    return _tail(data_dir / BROKER_LOG) + "\n" + _tail(data_dir / BROKER_OUT)


def _wait_until_ready(pid: int, cfg: BrokerConfig, timeout: float) -> None:
    died = False

    def ready_or_dead() -> bool:
        nonlocal died
        died = not _process_alive(pid)
        return died or kafka_answers(cfg.bootstrap)

    if _wait_for(ready_or_dead, timeout) and not died:
        return
    reason = "exited during start-up" if died else f"did not answer within {timeout:g}s"
    if not died:
        stop_broker(cfg.data_dir)
    raise KafkaLocalError(
        f"broker (pid {pid}) on {cfg.bootstrap} {reason}\n{_logs_tail(cfg.data_dir)}"
    )


# --------------------------------------------------------------------------- public API


def start_broker(
    data_dir: Path | str = DEFAULT_DATA_DIR,
    port: int = 9092,
    controller_port: int = 9093,
    partitions: int = 4,
    timeout: float = 60.0,
) -> BrokerHandle:
    """Start a broker for ``data_dir`` (or reuse the one already running) and wait for it."""
    cfg = BrokerConfig(Path(data_dir).resolve(), port, controller_port, partitions)
    existing = _running_pid(cfg.data_dir)
    if existing is not None:
        return _reuse_running(existing, cfg, timeout)
    _classpath()  # fail fast on missing jars before touching anything
    _ensure_ports_free(cfg)
    _write_configs(cfg)
    if not _is_formatted(cfg.data_dir):
        _format_storage(cfg.data_dir)
    pid = _spawn_broker(cfg.data_dir)
    _wait_until_ready(pid, cfg, timeout)
    return BrokerHandle(pid=pid, bootstrap=cfg.bootstrap, data_dir=cfg.data_dir)


def _reuse_running(pid: int, cfg: BrokerConfig, timeout: float) -> BrokerHandle:
    running_port = _configured_port(cfg.data_dir)
    if running_port != cfg.port:
        raise KafkaLocalError(
            f"a broker (pid {pid}) for {cfg.data_dir} is already running on port "
            f"{running_port}, not {cfg.port}; stop it first"
        )
    _wait_until_ready(pid, cfg, timeout)
    return BrokerHandle(pid, cfg.bootstrap, cfg.data_dir, already_running=True)


def _configured_port(data_dir: Path) -> int | None:
    try:
        text = (data_dir / SERVER_PROPERTIES).read_text()
    except FileNotFoundError:
        return None
    for line in text.splitlines():
        if line.startswith("advertised.listeners="):
            return int(line.rsplit(":", 1)[1])
    return None


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True)
class BrokerChoice:
    """The broker local tools use: ``bootstrap``, the local broker's ``handle`` (None when it is
    a broker this script does not run), and one ``line`` saying which broker and why."""

    bootstrap: str
    handle: BrokerHandle | None
    line: str


def choose_broker(
    bootstrap: str | None,
    data_dir: Path | str = DEFAULT_DATA_DIR,
    port: int = 9092,
    controller_port: int = 9093,
    partitions: int = 4,
    timeout: float = 60.0,
) -> BrokerChoice:
    """The broker to use for ``bootstrap`` (``KAFKA_BOOTSTRAP``; None: the local broker).

    A Kafka broker answering at ``bootstrap`` is used as it is and nothing is started. Else,
    when ``bootstrap`` is on this machine (or None), the local broker for ``data_dir``: the
    running one whatever its port, or a new one on ``port``/``controller_port``, or on free
    ports when something else holds those. A remote ``bootstrap`` that does not answer is an
    error: the local broker is no stand-in for a cluster you named."""
    path = Path(data_dir).resolve()
    wanted = bootstrap or f"{HOST}:{port}"
    reasons: list[str] = []
    if bootstrap is not None:
        if kafka_answers(bootstrap):
            line = f"kafka: using the broker at {bootstrap} (KAFKA_BOOTSTRAP)"
            return BrokerChoice(bootstrap, None, line)
        if any(host not in LOOPBACK_HOSTS for host, _ in _addresses(bootstrap)):
            raise KafkaLocalError(
                f"no Kafka broker answers at {bootstrap} (KAFKA_BOOTSTRAP); start it, or set "
                f"KAFKA_BOOTSTRAP={HOST}:{port} to use the local broker"
            )
        if _listening(bootstrap):
            reasons.append(f"{bootstrap} is taken by something that is not Kafka")
        else:
            reasons.append(f"nothing answers at {bootstrap}")
    running = broker_status(path)
    if running is not None:
        running_port = _configured_port(path) or port
        handle = start_broker(path, running_port, controller_port, partitions, timeout)
        if handle.bootstrap == wanted:  # it was still starting when probed
            reasons = []
        line = f"kafka: using the local broker at {handle.bootstrap}, already running for {path}"
    else:
        broker_port, ctrl_port = _free_ports(port, controller_port)
        if broker_port != port and f"{HOST}:{port}" != bootstrap:
            reasons.append(f"{HOST}:{port} is in use by another process")
        started = time.monotonic()
        handle = start_broker(path, broker_port, ctrl_port, partitions, timeout)
        line = (
            f"kafka: started the local broker at {handle.bootstrap} for {path}"
            f" in {time.monotonic() - started:.1f} s"
        )
    if reasons:
        line += f" ({'; '.join(reasons)})"
    if handle.bootstrap != wanted:
        line += f"; export KAFKA_BOOTSTRAP={handle.bootstrap} to run the jobs against it"
    return BrokerChoice(handle.bootstrap, handle, line)


def _free_ports(*preferred: int) -> list[int]:
    """``preferred`` where free on HOST, else ports the kernel picks; all distinct."""
    held: list[socket.socket] = []  # open until the end, so the kernel never picks one twice
    ports: list[int] = []
    try:
        for want in preferred:
            port = want
            if port in ports or _port_open(port) or not _port_bindable(port):
                port = 0
            while port in (0, *ports):
                sock = socket.socket()
                held.append(sock)
                sock.bind((HOST, 0))
                port = int(sock.getsockname()[1])
            ports.append(port)
        return ports
    finally:
        for sock in held:
            sock.close()


def stop_broker(data_dir: Path | str = DEFAULT_DATA_DIR, timeout: float = 30.0) -> int | None:
    """Stop the broker for ``data_dir``; returns its pid, or None if none was running."""
    path = Path(data_dir).resolve()
    pid = _running_pid(path)
    if pid is None:
        return None
    os.kill(pid, signal.SIGTERM)
    if not _wait_for(lambda: not _process_alive(pid), timeout):
        os.kill(pid, signal.SIGKILL)
        if not _wait_for(lambda: not _process_alive(pid), 10.0):
            raise KafkaLocalError(f"broker pid {pid} survived SIGKILL")
    (path / PID_FILE).unlink(missing_ok=True)
    return pid


def broker_status(data_dir: Path | str = DEFAULT_DATA_DIR) -> BrokerHandle | None:
    """The running broker for ``data_dir``, or None."""
    path = Path(data_dir).resolve()
    pid = _running_pid(path)
    if pid is None:
        return None
    return BrokerHandle(pid, f"{HOST}:{_configured_port(path)}", path, already_running=True)


def reset_broker(data_dir: Path | str = DEFAULT_DATA_DIR, timeout: float = 30.0) -> None:
    """Stop the broker and delete ``data_dir`` (only if it looks like one of ours)."""
    path = Path(data_dir).resolve()
    stop_broker(path, timeout)
    if not path.exists():
        return
    if not (path / SERVER_PROPERTIES).is_file() and any(path.iterdir()):
        raise KafkaLocalError(f"refusing to delete {path}: it has no {SERVER_PROPERTIES}")
    shutil.rmtree(path)


def create_topics(bootstrap: str, topics: Mapping[str, int], timeout: float = 30.0) -> None:
    """Create ``{name: partitions}`` topics (replication 1); existing topics are fine."""
    if not topics:
        return
    admin = AdminClient({"bootstrap.servers": bootstrap})
    new = [NewTopic(name, num_partitions=n, replication_factor=1) for name, n in topics.items()]
    futures = admin.create_topics(new, operation_timeout=timeout, request_timeout=timeout)
    for name, future in futures.items():
        try:
            future.result(timeout=timeout)
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            if isinstance(error, KafkaError) and error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue
            raise KafkaLocalError(f"creating topic {name!r} on {bootstrap} failed: {exc}") from exc
    _wait_for_leaders(admin, bootstrap, set(topics), timeout)


def _wait_for_leaders(admin: AdminClient, bootstrap: str, names: set[str], timeout: float) -> None:
    def all_led() -> bool:
        meta = admin.list_topics(timeout=ADMIN_TIMEOUT_S)
        for name in names:
            topic = meta.topics.get(name)
            if topic is None or topic.error is not None:
                return False
            if any(p.leader < 0 for p in topic.partitions.values()):
                return False
        return True

    if not _wait_for(all_led, timeout):
        raise KafkaLocalError(
            f"topics {sorted(names)} on {bootstrap} have no leaders after {timeout:g}s"
        )


# --------------------------------------------------------------------------- CLI


def _parse_topic(spec: str) -> tuple[str, int]:
    name, sep, count = spec.partition(":")
    if not name or (sep and not count.isdigit()):
        raise argparse.ArgumentTypeError(f"bad topic spec {spec!r}, expected NAME[:PARTITIONS]")
    return name, int(count) if sep else -1


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Local single-node Kafka (KRaft) broker.")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_data_dir(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="broker state dir")
        return p

    start = with_data_dir(sub.add_parser("start", help="start (or reuse) the broker"))
    ports = "default: the running broker's, else 9092 and 9093 when free, else free ports"
    start.add_argument("--port", type=int, default=None, help=f"exactly this port ({ports})")
    start.add_argument("--controller-port", type=int, default=None, help="exactly this port")
    start.add_argument("--partitions", type=int, default=4, help="default num.partitions")
    start.add_argument("--timeout", type=float, default=60.0)

    stop = with_data_dir(sub.add_parser("stop", help="stop the broker"))
    stop.add_argument("--timeout", type=float, default=30.0)

    with_data_dir(sub.add_parser("status", help="exit 0 if running, 3 if not"))
    with_data_dir(sub.add_parser("reset", help="stop the broker and delete the data dir"))

    topics = sub.add_parser("create-topics", help="create topics idempotently")
    topics.add_argument("--bootstrap", default=f"{HOST}:9092")
    topics.add_argument("--partitions", type=int, default=4, help="for specs without :N")
    topics.add_argument("--timeout", type=float, default=30.0)
    topics.add_argument("topics", nargs="+", type=_parse_topic, metavar="NAME[:PARTITIONS]")
    return parser


def _cmd_start(args: argparse.Namespace) -> int:
    if args.port is None and args.controller_port is None:
        choice = choose_broker(
            None, args.data_dir, partitions=args.partitions, timeout=args.timeout
        )
        print(choice.line)
        return 0
    t0 = time.monotonic()
    handle = start_broker(
        args.data_dir,
        args.port or 9092,
        args.controller_port or 9093,
        args.partitions,
        args.timeout,
    )
    verb = (
        "already running" if handle.already_running else f"started in {time.monotonic() - t0:.1f}s"
    )
    print(
        f"kafka {verb}: pid {handle.pid}, bootstrap {handle.bootstrap}, data dir {handle.data_dir}"
    )
    return 0


def _cmd_stop(args: argparse.Namespace) -> int:
    pid = stop_broker(args.data_dir, args.timeout)
    print(f"kafka stopped (pid {pid})" if pid else f"kafka not running for {args.data_dir}")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    handle = broker_status(args.data_dir)
    if handle is None:
        print(f"kafka not running for {Path(args.data_dir).resolve()}")
        return EXIT_NOT_RUNNING
    print(
        f"kafka running: pid {handle.pid}, bootstrap {handle.bootstrap}, data dir {handle.data_dir}"
    )
    return 0


def _cmd_create_topics(args: argparse.Namespace) -> int:
    specs: list[tuple[str, int]] = args.topics
    topics = {name: (n if n > 0 else args.partitions) for name, n in specs}
    create_topics(args.bootstrap, topics, args.timeout)
    print("topics ready: " + ", ".join(f"{name}:{n}" for name, n in topics.items()))
    return 0


def _cmd_reset(args: argparse.Namespace) -> int:
    reset_broker(args.data_dir)
    print(f"kafka reset: {Path(args.data_dir).resolve()} removed")
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "start": _cmd_start,
    "stop": _cmd_stop,
    "status": _cmd_status,
    "create-topics": _cmd_create_topics,
    "reset": _cmd_reset,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except KafkaLocalError as exc:
        print(f"broker.py {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
