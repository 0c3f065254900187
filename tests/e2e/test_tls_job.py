"""movements-job writes through ClickHouse's HTTPS interface with a private CA and a client
certificate (mutual TLS): the local endpoint serves the real engine over TLS and refuses any
connection without a certificate its CA signed, so every row that lands came through the job's
TLS clients, the driver's and the TaskManager's Python workers' alike."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from oracle import MOVEMENTS_SQL, expected_movements, plain
from support import SEED, ClickHouseEndpoint, job_environment, produce, run_job, unique
from tls_certs import make_pki

pytestmark = pytest.mark.e2e

T0 = datetime(2025, 7, 19, 12, 0, tzinfo=UTC)


def the_stream() -> list[tuple[bytes | None, bytes]]:
    """Three sessions of six pings each, interleaved, plus a record that is not JSON."""
    stream: list[tuple[bytes | None, bytes]] = []
    for ping in range(6):
        for session in range(3):
            moment = T0 + timedelta(seconds=10 * ping + session)
            body = {
                **SEED,
                "session_id": f"5f1b1f0e-8f3a-4c1e-9d3a-0b7f6e2d1a0{session}",
                "status": "started" if ping == 0 else "en_route",
                "timestamp": moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
                "current_lat": 40.75 + ping / 1000,
                "current_lon": -73.98 - session / 1000,
            }
            stream.append((str(body["session_id"]).encode(), json.dumps(body).encode()))
    stream.insert(7, (None, b"{not json"))
    return stream


def test_movements_job_lands_exact_rows_over_mutual_tls(
    kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    pki = make_pki(tmp_path / "pki")
    clickhouse = ClickHouseEndpoint(
        tmp_path / "clickhouse", tmp_path / "clickhouse.log", pki, mutual=True
    )
    try:
        topic = new_topic("sessions", partitions=2)
        produced = produce(kafka_bootstrap, topic, the_stream())
        env = job_environment(
            kafka_bootstrap,
            topic,
            tmp_path / "no-embedded-store",
            tmp_path / "checkpoints",
            DEAD_LETTER_TOPIC=new_topic("dead-letter", partitions=1),
            KAFKA_CONSUMER_GROUP=unique("movements-tls"),
            SINK_BATCH_SIZE="5",
            **clickhouse.settings,
        )
        assert env["CLICKHOUSE_SECURE"] == "true" and env["CLICKHOUSE_CLIENT_KEY"]

        run_job("jupiter_movements", env, timeout=180)

        expected = expected_movements(produced)
        assert len(expected) == 18
        assert clickhouse.query(MOVEMENTS_SQL) == expected
        assert clickhouse.query(plain(MOVEMENTS_SQL)) == expected  # no duplicate either
        assert not (tmp_path / "no-embedded-store").exists()
        # Every connection presented the client certificate: the server refused none.
        assert "TLS handshake" not in (tmp_path / "clickhouse.log").read_text()
    finally:
        clickhouse.stop()
