"""The local ClickHouse endpoint as a background process (jupiter_local.endpoint), as
``hatch run cluster start``/``stop`` run it: started once, answering, reused, stopped."""

from __future__ import annotations

from pathlib import Path

import clickhouse_connect
from support import free_port

from jupiter_local.endpoint import PID_FILE, ping, start_endpoint, stop_endpoint
from jupiter_local.processes import process_alive


def test_the_endpoint_starts_once_answers_and_stops(tmp_path: Path) -> None:
    port = free_port()
    assert not ping(port)
    start_endpoint(tmp_path, port)
    try:
        pid = int((tmp_path / PID_FILE).read_text())
        client = clickhouse_connect.get_client(host="127.0.0.1", port=port)
        assert client.command("SELECT 40 + 2") == 42
        client.close()
        start_endpoint(tmp_path, port)  # already running: the same process serves
        assert int((tmp_path / PID_FILE).read_text()) == pid
    finally:
        stop_endpoint(tmp_path)
    assert not process_alive(pid)
    assert not ping(port)
    assert not (tmp_path / PID_FILE).exists()
    stop_endpoint(tmp_path)  # nothing running: nothing to do
