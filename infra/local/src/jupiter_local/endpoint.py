"""The local ClickHouse HTTP endpoint (:mod:`jupiter_local.chdb_http`) as a background process
that outlives the command that started it (``hatch run cluster start`` returns, the endpoint
serves until ``cluster stop``). Its pid file in ``home`` says whether it runs."""

from __future__ import annotations

import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from jupiter_common.errors import JupiterError
from jupiter_local.processes import process_alive, terminate, wait_for

PID_FILE = "clickhouse-http.pid"
LOG_FILE = "clickhouse-http.log"


class EndpointError(JupiterError):
    """The endpoint did not answer in time, or did not stop."""


def ping(port: int) -> bool:
    """The endpoint on 127.0.0.1:``port`` answers ``/ping``."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as r:
            return bool(r.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def start_endpoint(home: Path, port: int, timeout: float = 60) -> None:
    """Serve the store ``home/clickhouse`` on ``port`` unless the endpoint of ``home`` already
    runs; returns once it answers (its output goes to ``home/clickhouse-http.log``)."""
    pid_file = home / PID_FILE
    if pid_file.exists() and process_alive(int(pid_file.read_text())):
        return
    home.mkdir(parents=True, exist_ok=True)
    with (home / LOG_FILE).open("a") as log:
        subprocess.Popen(  # runs on after this command returns, until stop_endpoint
            [
                sys.executable,
                *("-m", "jupiter_local.chdb_http", "--path", str(home / "clickhouse")),
                *("--port", str(port), "--pid-file", str(pid_file)),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    if not wait_for(lambda: ping(port), timeout, poll=0.5):
        raise EndpointError(f"the local ClickHouse endpoint did not answer on port {port}")


def stop_endpoint(home: Path, timeout: float = 30) -> None:
    """Stop the endpoint of ``home`` if it runs (SIGTERM, then SIGKILL)."""
    pid_file = home / PID_FILE
    if not pid_file.exists():
        return
    pid = int(pid_file.read_text())
    if process_alive(pid) and not terminate(pid, timeout):
        raise EndpointError(f"the ClickHouse endpoint (pid {pid}) survived SIGKILL")
    pid_file.unlink(missing_ok=True)
