"""Which broker the local tools use (jupiter_local/broker.py ``choose_broker``) when one already
answers, and ``broker start --port`` on a taken port. Real Kafka (the session broker); these
start no broker of their own. Starting and reusing the local one: tests/e2e/test_local_broker.py."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import free_port

from jupiter_local import broker, localrun
from jupiter_local.processes import free_ports


@pytest.fixture
def listener() -> Iterator[int]:
    """A plain TCP listener on a free port, not Kafka: it accepts and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_a_kafka_answering_at_the_bootstrap_is_used_and_nothing_starts(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    data_dir = tmp_path / "kafka"
    choice = broker.choose_broker(
        kafka_bootstrap, data_dir, port=free_port(), controller_port=free_port()
    )
    assert choice.bootstrap == kafka_bootstrap
    assert choice.handle is None
    assert choice.line == f"kafka: using the broker at {kafka_bootstrap} (KAFKA_BOOTSTRAP)"
    assert not data_dir.exists()


def test_a_users_broker_at_localhost_is_used_not_replaced_by_the_local_one(
    kafka_bootstrap: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A user's own broker named ``localhost:<port>`` (as KAFKA_BOOTSTRAP=localhost:9092 names
    one) is used as it is: a loopback name means "start the local one" only when no Kafka
    answers there."""
    bootstrap = "localhost:" + kafka_bootstrap.rpartition(":")[2]
    data_dir = tmp_path / "kafka"
    choice = broker.choose_broker(
        bootstrap, data_dir, port=free_port(), controller_port=free_port()
    )
    assert (choice.bootstrap, choice.handle) == (bootstrap, None)
    assert not data_dir.exists()
    assert localrun.ensure_broker(bootstrap) == bootstrap
    assert capsys.readouterr().out == f"kafka: using the broker at {bootstrap} (KAFKA_BOOTSTRAP)\n"


def test_the_demo_and_bench_say_in_one_line_which_broker_they_use(
    kafka_bootstrap: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert localrun.ensure_broker(kafka_bootstrap) == kafka_bootstrap
    assert capsys.readouterr().out == (
        f"kafka: using the broker at {kafka_bootstrap} (KAFKA_BOOTSTRAP)\n"
    )


def test_a_plain_tcp_listener_is_not_kafka(listener: int) -> None:
    assert not broker.kafka_answers(f"127.0.0.1:{listener}")
    assert not broker.kafka_answers(f"127.0.0.1:{free_port()}")


def test_a_remote_bootstrap_that_does_not_answer_is_an_error_not_the_local_broker(
    tmp_path: Path,
) -> None:
    with pytest.raises(broker.KafkaLocalError, match=r"no Kafka broker answers at kafka\.invalid"):
        broker.choose_broker("kafka.invalid:9092", tmp_path / "kafka")
    assert not (tmp_path / "kafka").exists()


def test_free_ports_keeps_free_preferred_ports_and_replaces_taken_ones(listener: int) -> None:
    free = free_port()
    assert free_ports(free) == [free]
    ports = free_ports(listener, listener, free)
    assert listener not in ports
    assert ports[2] == free
    assert len(set(ports)) == 3


def test_start_with_an_explicit_port_that_is_taken_fails_clearly(
    listener: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["start", "--port", str(listener), "--controller-port", str(free_port())]
    assert broker.main([*argv, "--data-dir", str(tmp_path / "kafka")]) == 1
    assert f"127.0.0.1:{listener} (--port) is already in use" in capsys.readouterr().err
