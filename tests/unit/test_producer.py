"""The producer's failure contract (jupiter_local.producer): a record that cannot be delivered
raises ProducerError, one of Jupiter's typed errors (JupiterError), so callers catch it as such."""

from __future__ import annotations

import pytest
from support import free_port

from jupiter_common.errors import JupiterError
from jupiter_local.broker import KafkaLocalError
from jupiter_local.cluster import ClusterError
from jupiter_local.producer import ProducerError, produce
from jupiter_local.synthetic import GeneratorConfig, iter_records


def test_an_undeliverable_record_raises_a_jupiter_error() -> None:
    records = list(iter_records(GeneratorConfig(sessions=1, pings_per_session=1, seed=1)))[:3]
    with pytest.raises(JupiterError) as raised:  # nothing listens there: delivery times out
        produce(
            records,
            f"127.0.0.1:{free_port()}",
            "nowhere",
            flush_timeout=10,
            config={"message.timeout.ms": 1000, "log_level": 0},
        )
    assert isinstance(raised.value, ProducerError)
    assert "nowhere" in str(raised.value)


@pytest.mark.parametrize("error", [ProducerError, KafkaLocalError, ClusterError])
def test_the_local_tools_errors_are_jupiter_errors(error: type[Exception]) -> None:
    assert issubclass(error, JupiterError)
