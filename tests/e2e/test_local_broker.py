"""The local broker the demo, the benchmark and ``broker start`` fall back to
(jupiter_local/broker.py ``choose_broker``): started on free ports when the default ones are taken
by something that is not Kafka, reused whatever its port when already running. Each test starts
a real broker JVM of its own in a temporary data dir and stops it."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import consume_all, free_port, produce, unique

from jupiter_local import broker

pytestmark = pytest.mark.e2e


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "kafka"
    yield path
    broker.stop_broker(path)


def _listener() -> socket.socket:
    """A plain TCP listener on a free port, not Kafka: it accepts and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


def test_default_ports_taken_by_something_else_start_the_local_broker_on_free_ports(
    data_dir: Path,
) -> None:
    with _listener() as kafka_port, _listener() as controller_port:
        port, ctrl = kafka_port.getsockname()[1], controller_port.getsockname()[1]
        taken = f"127.0.0.1:{port}"
        choice = broker.choose_broker(taken, data_dir, port=port, controller_port=ctrl)

        assert choice.handle is not None and not choice.handle.already_running
        assert choice.handle.data_dir == data_dir.resolve()
        assert choice.bootstrap == choice.handle.bootstrap
        assert int(choice.bootstrap.rpartition(":")[2]) not in (port, ctrl)
        assert choice.line.startswith(f"kafka: started the local broker at {choice.bootstrap} ")
        assert f"({taken} is taken by something that is not Kafka)" in choice.line
        assert choice.line.endswith(
            f"; export KAFKA_BOOTSTRAP={choice.bootstrap} to run the jobs against it"
        )
        assert "\n" not in choice.line

    topic = unique("choice")
    broker.create_topics(choice.bootstrap, {topic: 1})
    produce(choice.bootstrap, topic, [(b"k", b"v")])
    assert [(r.key, r.value) for r in consume_all(choice.bootstrap, topic)] == [(b"k", b"v")]

    assert broker.stop_broker(data_dir) == choice.handle.pid
    assert broker.broker_status(data_dir) is None


def test_the_running_local_broker_is_reused_whatever_its_port(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    running = broker.start_broker(data_dir, port=free_port(), controller_port=free_port())
    nothing_there = f"127.0.0.1:{free_port()}"

    choice = broker.choose_broker(
        nothing_there, data_dir, port=free_port(), controller_port=free_port()
    )

    assert choice.bootstrap == running.bootstrap
    assert choice.handle is not None and choice.handle.already_running
    assert choice.handle.pid == running.pid
    assert choice.line == (
        f"kafka: using the local broker at {running.bootstrap}, already running for"
        f" {data_dir.resolve()} (nothing answers at {nothing_there});"
        f" export KAFKA_BOOTSTRAP={running.bootstrap} to run the jobs against it"
    )

    # `broker start` without --port reuses it too (it would take 9092 only for a new broker)
    assert broker.main(["start", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"kafka: using the local broker at {running.bootstrap}, already running")
    assert out.count("\n") == 1
    status = broker.broker_status(data_dir)
    assert status is not None
    assert status.pid == running.pid
