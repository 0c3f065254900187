"""Helpers the tests share: real Kafka produce/consume, running a job, reading the store."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import clickhouse_connect
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from jupiter_common.clickhouse import ensure_table
from jupiter_common.tables import TableSpec
from jupiter_local import localrun

if TYPE_CHECKING:
    from tls_certs import Pki

REPO = Path(__file__).resolve().parents[1]

# The example message from the original service's README.
SEED: dict[str, Any] = {
    "session_id": "f1e2d3c4-b5a6-7c8d-9e0f-1a2b3c4d5e6f",
    "vehicle_id": "a1b2c3d4-e5f6-7a8b-9c0d-1e2f3a4b5c6d",
    "order_id": "c1d2e3f4-a5b6-7c8d-9e0f-1a2b3c4d5e6f",
    "status": "en_route",
    "timestamp": "2025-07-19T12:34:56.789Z",
    "start_lat": 40.7527,
    "start_lon": -73.9772,
    "end_lat": 40.7580,
    "end_lon": -73.9855,
    "current_lat": 40.7550,
    "current_lon": -73.9800,
}

CONNECTOR_JARS = REPO / ".cache" / "jars" / "flink"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass(frozen=True)
class Produced:
    key: bytes | None
    value: bytes
    partition: int
    offset: int


def produce(
    bootstrap: str,
    topic: str,
    records: Iterable[tuple[bytes | None, bytes | None]],
    producer: Producer | None = None,
) -> list[Produced]:
    """Produce in order and return each record with the partition/offset Kafka gave it. A
    ``None`` value is a tombstone (``b""`` in what is returned, as :func:`consume_all` reads it)."""
    if producer is None:
        producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    delivered: dict[int, Produced] = {}
    errors: list[str] = []

    def on_delivery(index: int, key: bytes | None, value: bytes | None) -> Any:
        def callback(err: KafkaError | None, msg: Any) -> None:
            if err is not None:
                errors.append(str(err))
            else:
                delivered[index] = Produced(key, value or b"", msg.partition(), msg.offset())

        return callback

    count = 0
    for index, (key, value) in enumerate(records):
        producer.produce(topic, key=key, value=value, on_delivery=on_delivery(index, key, value))
        producer.poll(0)
        count += 1
    remaining = producer.flush(30)
    assert remaining == 0 and not errors, f"produce failed: {errors}, {remaining} undelivered"
    return [delivered[i] for i in range(count)]


def consume_all(bootstrap: str, topic: str, timeout: float = 30.0) -> list[Produced]:
    """Every record of ``topic`` up to its current end offsets."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": unique("test-reader"),
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        partitions = list(metadata.topics[topic].partitions)
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in partitions
        }
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        positions = {p: 0 for p in partitions}
        out: list[Produced] = []
        deadline = time.monotonic() + timeout
        while any(positions[p] < ends[p] for p in partitions):
            assert time.monotonic() < deadline, f"timed out reading {topic}: {positions}/{ends}"
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            partition, offset = msg.partition(), msg.offset()
            assert partition is not None and offset is not None
            positions[partition] = offset + 1
            out.append(Produced(msg.key(), msg.value() or b"", partition, offset))
        return out
    finally:
        consumer.close()


def job_environment(
    bootstrap: str, topic: str, store: Path, checkpoints: Path, **extra: str
) -> dict[str, str]:
    """Environment for a job run in a test: the given broker/topic, an embedded store."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "CLICKHOUSE_"))}
    env.update(
        {
            "KAFKA_BOOTSTRAP": bootstrap,
            "KAFKA_TOPIC": topic,
            "CLICKHOUSE_EMBEDDED_PATH": str(store),
            "FLINK_CONNECTOR_JARS": str(CONNECTOR_JARS),
            "FLINK_CHECKPOINT_DIR": checkpoints.as_uri(),
            "FLINK_CHECKPOINT_INTERVAL_MS": "1000",
            "LOG_LEVEL": "INFO",
        }
    )
    env.update(extra)
    return env


def run_job(
    module: str, env: Mapping[str, str], args: Sequence[str] = ("--bounded",), timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m module`` to completion; fail the test with its output if it fails. On a
    timeout the whole process tree (driver, Flink JVM, Python workers) is killed."""
    process = subprocess.Popen(
        [sys.executable, "-m", module, *args],
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        raise AssertionError(
            f"{module} did not finish in {timeout:.0f} s:\n{stdout[-6000:]}"
        ) from None
    result = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    assert result.returncode == 0, (
        f"{module} exited {result.returncode}\n--- stdout\n{result.stdout[-6000:]}"
        f"\n--- stderr\n{result.stderr[-6000:]}"
    )
    return result


def query(store: Path, sql: str) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` against the embedded store (the job must have finished)."""
    client = clickhouse_connect.get_client(dsn=f"chdb://{store}")
    try:
        return [tuple(row) for row in client.query(sql).result_rows]
    finally:
        client.close()


def wait_until(condition: Callable[[], bool], timeout: float, what: str, poll: float = 0.5) -> None:
    """Poll ``condition`` until it holds; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f} s waiting for {what}"
        time.sleep(poll)


def committed_offsets(bootstrap: str, topic: str, group: str) -> tuple[int, int]:
    """(committed, end) offsets of ``group`` on ``topic``, summed over partitions: the local
    tools' own (``jupiter_local/localrun.py``)."""
    done, end = localrun.committed_offsets(bootstrap, topic, group)
    return int(done), int(end)


class StreamingJob:
    """A job running streaming in its own process, as ``hatch run jobs/<job>`` runs it.

    Every instance is tracked; :func:`kill_leftover_jobs` (run after each test) kills any that
    a failed test left running."""

    started: ClassVar[list[StreamingJob]] = []

    def __init__(
        self, module: str, env: Mapping[str, str], log: Path, args: Sequence[str] = ()
    ) -> None:
        self.module = module
        self.log = log
        self.flink_log_dir = log.with_name(f"{log.stem}-flink")
        self._out = log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            env={"FLINK_LOG_DIR": str(self.flink_log_dir), **env},
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        StreamingJob.started.append(self)

    def output(self) -> str:
        if not self._out.closed:
            self._out.flush()
        return self.log.read_text(errors="replace")

    def flink_log(self) -> str:
        """The job's Flink log (the JVM's, with the Python functions' log lines)."""
        return "".join(p.read_text(errors="replace") for p in self.flink_log_dir.glob("*.log"))

    def wait_caught_up(self, bootstrap: str, topic: str, group: str, timeout: float = 180) -> None:
        """Until a completed checkpoint covers every record now in ``topic``."""

        def caught_up() -> bool:
            assert self.process.poll() is None, f"{self.module} died:\n{self.output()[-6000:]}"
            try:
                done, end = committed_offsets(bootstrap, topic, group)
            except KafkaException:  # e.g. the group coordinator is still loading
                return False
            return done == end

        wait_until(caught_up, timeout, f"{self.module} to checkpoint all of {topic}")

    def terminate(self, timeout: float = 120) -> str:
        """SIGTERM, as ``docker stop`` or Ctrl-C, once the job has been submitted (a signal
        while Python is still importing PyFlink just kills it); the job must exit 0. Returns its
        output."""

        def submitted() -> bool:
            assert self.process.poll() is None, f"{self.module} died:\n{self.output()[-6000:]}"
            return " submitted as " in self.output()

        wait_until(submitted, timeout, f"{self.module} to submit its job")
        os.kill(self.process.pid, signal.SIGTERM)
        code = self.process.wait(timeout)
        self._out.close()
        output = self.log.read_text(errors="replace")
        assert code == 0, f"{self.module} exited {code} on SIGTERM:\n{output[-6000:]}"
        return output

    def stop_with_savepoint(self, timeout: float = 120) -> str:
        """SIGTERM: the job drains, savepoints and exits 0. Returns the savepoint's path."""
        output = self.terminate(timeout)
        paths = [
            line.split(":", 1)[1].strip()
            for line in output.splitlines()
            if line.startswith("savepoint:")
        ]
        assert paths, f"no savepoint reported:\n{output[-3000:]}"
        return paths[-1]

    def kill(self) -> None:
        """SIGKILL the whole process tree (driver, Flink JVM, Python workers): a crash."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(30)
        self._out.close()


def kill_leftover_jobs() -> None:
    """Kill what is left of every streaming job's process tree."""
    while StreamingJob.started:
        job = StreamingJob.started.pop()
        try:  # the whole session: a JVM can outlive its driver
            os.killpg(job.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
        job.process.wait(30)


class ClickHouseEndpoint:
    """The local ClickHouse HTTP endpoint (``jupiter_local.chdb_http``: the real engine behind
    ClickHouse's HTTP interface) in a process of its own, so that a test can query a table
    while a job writes to it, crash the server (SIGKILL) and start it again on the same port
    and data.

    With ``pki`` it serves HTTPS with the PKI's server certificate; ``mutual`` also requires a
    client certificate signed by the PKI's CA. Its ``settings`` and its own clients then use the
    PKI's CA (and client certificate)."""

    def __init__(
        self, data: Path, log: Path, pki: Pki | None = None, *, mutual: bool = False
    ) -> None:
        self.data = data
        self.port = free_port()
        self._log = log
        self.pki = pki
        self.mutual = mutual
        self.process: subprocess.Popen[bytes] | None = None
        self._unmerged: list[TableSpec] = []
        self.start()

    @property
    def settings(self) -> dict[str, str]:
        """The job settings that point at this server instead of an embedded store."""
        settings = {
            "CLICKHOUSE_EMBEDDED_PATH": "",
            "CLICKHOUSE_HOST": "127.0.0.1",
            "CLICKHOUSE_PORT": str(self.port),
        }
        if self.pki is not None:
            settings["CLICKHOUSE_SECURE"] = "true"
            settings["CLICKHOUSE_CA_CERT"] = str(self.pki.ca_cert)
        if self.pki is not None and self.mutual:
            settings["CLICKHOUSE_CLIENT_CERT"] = str(self.pki.client_cert)
            settings["CLICKHOUSE_CLIENT_KEY"] = str(self.pki.client_key)
        return settings

    def _tls_arguments(self) -> list[str]:
        if self.pki is None:
            return []
        args = ["--tls-cert", str(self.pki.server_cert), "--tls-key", str(self.pki.server_key)]
        return [*args, "--tls-client-ca", str(self.pki.ca_cert)] if self.mutual else args

    def _client(self) -> Any:
        if self.pki is None:
            return clickhouse_connect.get_client(host="127.0.0.1", port=self.port)
        tls: dict[str, Any] = {"secure": True, "ca_cert": str(self.pki.ca_cert)}
        if self.mutual:
            tls.update(
                client_cert=str(self.pki.client_cert),
                client_cert_key=str(self.pki.client_key),
                tls_mode="strict",
            )
        return clickhouse_connect.get_client(host="127.0.0.1", port=self.port, **tls)

    def start(self) -> None:
        with self._log.open("a") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "jupiter_local.chdb_http",
                    *("--path", str(self.data), "--port", str(self.port)),
                    *self._tls_arguments(),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until(self._answers, 60, f"the ClickHouse endpoint on port {self.port}")
        for table in self._unmerged:  # a restart forgets SYSTEM STOP MERGES
            self.create_without_merges(table)

    def _answers(self) -> bool:
        assert self.process is not None and self.process.poll() is None, (
            f"the ClickHouse endpoint died:\n{self._log.read_text(errors='replace')[-3000:]}"
        )
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def kill(self) -> None:
        """Crash the server: SIGKILL, no shutdown."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(30)
        self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(30)
            self.process = None

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        client = self._client()
        try:
            return [tuple(row) for row in client.query(sql).result_rows]
        finally:
            client.close()

    def create_without_merges(self, table: TableSpec) -> None:
        """Create ``table`` as the jobs would and stop ClickHouse merging it: a duplicate row
        then stays visible to plain queries instead of being merged away in the background.
        Merges stay stopped when the server is started again."""
        if table not in self._unmerged:
            self._unmerged.append(table)
        client = self._client()
        try:
            ensure_table(client, table, "default")
            client.command(f"SYSTEM STOP MERGES {table.qualified('default')}")
        finally:
            client.close()

    def count(self, table: str) -> int:
        """Rows in ``table`` as a plain query sees them (0 while it does not exist)."""
        exists = self.query(f"EXISTS TABLE {table}")[0][0]
        return int(self.query(f"SELECT count() FROM {table}")[0][0]) if exists else 0


class PacedProducer(threading.Thread):
    """Produces ``records`` at about ``rate`` records a second in the background, as live
    vehicles would; ``finish()`` waits for the last one and returns them with their Kafka
    coordinates."""

    def __init__(
        self, bootstrap: str, topic: str, records: Sequence[tuple[bytes | None, bytes]], rate: float
    ) -> None:
        super().__init__(daemon=True)
        self._args = (bootstrap, topic, records, rate)
        self._produced: list[Produced] = []
        self._error: BaseException | None = None
        self._stopping = threading.Event()
        self.start()

    def run(self) -> None:
        bootstrap, topic, records, rate = self._args
        producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
        step = max(1, int(rate / 10))
        started = time.monotonic()
        try:
            for first in range(0, len(records), step):
                due = started + first / rate
                # pacing, not synchronisation
                if self._stopping.wait(max(0.0, due - time.monotonic())):
                    return
                chunk = records[first : first + step]
                self._produced += produce(bootstrap, topic, chunk, producer)
        except BaseException as exc:  # handed to finish()
            self._error = exc

    @property
    def sent(self) -> int:
        """Records produced so far."""
        return len(self._produced)

    def finish(self, timeout: float = 300, stop: bool = False) -> list[Produced]:
        """The records produced, once the last is (``stop``: once the current chunk is)."""
        if stop:
            self._stopping.set()
        self.join(timeout)
        assert not self.is_alive(), "the producer did not finish"
        if self._error is not None:
            raise self._error
        return self._produced
