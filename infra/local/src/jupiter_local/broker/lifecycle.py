"""Start, reuse, stop and choose the local broker; ask whether a Kafka answers; create topics."""

from __future__ import annotations

import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from jupiter_local.broker.jvm import (
    BROKER_LOG,
    BROKER_OUT,
    DEFAULT_DATA_DIR,
    PID_FILE,
    SERVER_PROPERTIES,
    BrokerConfig,
    BrokerHandle,
    KafkaLocalError,
    classpath,
    configured_port,
    format_storage,
    is_formatted,
    running_pid,
    spawn_broker,
    write_configs,
)
from jupiter_local.processes import (
    HOST,
    free_ports,
    port_bindable,
    port_open,
    process_alive,
    tail,
    terminate,
    wait_for,
)

ADMIN_TIMEOUT_S = 2.0


def _ensure_ports_free(cfg: BrokerConfig) -> None:
    for name, port in (("--port", cfg.port), ("--controller-port", cfg.controller_port)):
        if port_open(port) or not port_bindable(port):
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
    return any(port_open(port, host) for host, port in _addresses(bootstrap))


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


def _logs_tail(data_dir: Path) -> str:
    return tail(data_dir / BROKER_LOG) + "\n" + tail(data_dir / BROKER_OUT)


def _wait_until_ready(pid: int, cfg: BrokerConfig, timeout: float) -> None:
    died = False

    def ready_or_dead() -> bool:
        nonlocal died
        died = not process_alive(pid)
        return died or kafka_answers(cfg.bootstrap)

    if wait_for(ready_or_dead, timeout) and not died:
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
    existing = running_pid(cfg.data_dir)
    if existing is not None:
        return _reuse_running(existing, cfg, timeout)
    classpath()  # fail fast on missing jars before touching anything
    _ensure_ports_free(cfg)
    write_configs(cfg)
    if not is_formatted(cfg.data_dir):
        format_storage(cfg.data_dir)
    pid = spawn_broker(cfg.data_dir)
    _wait_until_ready(pid, cfg, timeout)
    return BrokerHandle(pid=pid, bootstrap=cfg.bootstrap, data_dir=cfg.data_dir)


def _reuse_running(pid: int, cfg: BrokerConfig, timeout: float) -> BrokerHandle:
    running_port = configured_port(cfg.data_dir)
    if running_port != cfg.port:
        raise KafkaLocalError(
            f"a broker (pid {pid}) for {cfg.data_dir} is already running on port "
            f"{running_port}, not {cfg.port}; stop it first"
        )
    _wait_until_ready(pid, cfg, timeout)
    return BrokerHandle(pid, cfg.bootstrap, cfg.data_dir, already_running=True)


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
        running_port = configured_port(path) or port
        handle = start_broker(path, running_port, controller_port, partitions, timeout)
        if handle.bootstrap == wanted:  # it was still starting when probed
            reasons = []
        line = f"kafka: using the local broker at {handle.bootstrap}, already running for {path}"
    else:
        broker_port, ctrl_port = free_ports(port, controller_port)
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


def stop_broker(data_dir: Path | str = DEFAULT_DATA_DIR, timeout: float = 30.0) -> int | None:
    """Stop the broker for ``data_dir``; returns its pid, or None if none was running."""
    path = Path(data_dir).resolve()
    pid = running_pid(path)
    if pid is None:
        return None
    if not terminate(pid, timeout):
        raise KafkaLocalError(f"broker pid {pid} survived SIGKILL")
    (path / PID_FILE).unlink(missing_ok=True)
    return pid


def broker_status(data_dir: Path | str = DEFAULT_DATA_DIR) -> BrokerHandle | None:
    """The running broker for ``data_dir``, or None."""
    path = Path(data_dir).resolve()
    pid = running_pid(path)
    if pid is None:
        return None
    return BrokerHandle(pid, f"{HOST}:{configured_port(path)}", path, already_running=True)


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

    if not wait_for(all_led, timeout):
        raise KafkaLocalError(
            f"topics {sorted(names)} on {bootstrap} have no leaders after {timeout:g}s"
        )
