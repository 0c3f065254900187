"""A job in the foreground, as ``hatch run jobs/movements-job`` runs it in a terminal: its Flink
web UI answers while it runs, it prints its status line on the terminal, and with
``LOG_FORMAT=json`` its stdout is JSON objects only, its Python workers' lines among them."""

from __future__ import annotations

import json
import os
import pty
import re
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support import SEED, job_environment, produce, run_job, wait_until

pytestmark = pytest.mark.e2e

CANARY = "canary-7f3e9b1c-not-a-real-password"
UI_LINE = re.compile(r"Flink web UI: (http://127\.0\.0\.1:\d+)/")
STATUS_LINE = re.compile(
    r"jupiter-movements \d\d:\d\d:\d\d RUNNING  in [\d,-]+/s  rows ([\d,]+)  dead letters [\d,]+"
    r"  lag [\d,]+  checkpoint "
)


class OnTerminal:
    """``python -m <module>`` with a pseudo-terminal as stdout and stderr; collects what it
    writes there."""

    def __init__(self, module: str, env: dict[str, str]) -> None:
        main, child = pty.openpty()
        self.process = subprocess.Popen(
            [sys.executable, "-m", module],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=child,
            stderr=child,
            start_new_session=True,
        )
        os.close(child)
        self._main = main
        self._chunks: list[bytes] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self._main, 65536)
            except OSError:  # the child side closed
                return
            if not data:
                return
            self._chunks.append(data)

    def text(self) -> str:
        return b"".join(self._chunks).decode(errors="replace").replace("\r\n", "\n")

    def wait_for(self, pattern: re.Pattern[str], timeout: float) -> re.Match[str]:
        found: list[re.Match[str]] = []

        def seen() -> bool:
            assert self.process.poll() is None, f"the job died:\n{self.text()[-6000:]}"
            found[:] = list(pattern.finditer(self.text()))
            return bool(found)

        wait_until(seen, timeout, f"{pattern.pattern!r} on the terminal")
        return found[-1]

    def stop(self, timeout: float = 120) -> int:
        os.kill(self.process.pid, signal.SIGTERM)
        code = self.process.wait(timeout)
        self._reader.join(10)
        os.close(self._main)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(30)


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def messages(count: int) -> list[tuple[bytes, bytes]]:
    return [
        (SEED["session_id"].encode(), json.dumps({**SEED, "status": f"s{i % 3}"}).encode())
        for i in range(count)
    ]


@pytest.fixture
def on_terminal() -> Iterator[Callable[[str, dict[str, str]], OnTerminal]]:
    started: list[OnTerminal] = []

    def start(module: str, env: dict[str, str]) -> OnTerminal:
        started.append(OnTerminal(module, env))
        return started[-1]

    yield start
    for job in started:
        job.kill()


def test_a_job_on_a_terminal_serves_the_web_ui_and_prints_its_status(
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    tmp_path: Path,
    on_terminal: Callable[[str, dict[str, str]], OnTerminal],
) -> None:
    topic = new_topic()
    produce(kafka_bootstrap, topic, messages(50))
    env = job_environment(
        kafka_bootstrap,
        topic,
        tmp_path / "store",
        tmp_path / "checkpoints",
        FLINK_WEB_UI_PORT="0",
        STATUS_INTERVAL_S="1",
        FLINK_LOG_DIR=str(tmp_path / "flink-log"),
    )
    job = on_terminal("jupiter_movements", env)
    url = job.wait_for(UI_LINE, 240).group(1)

    overview = get_json(f"{url}/jobs/overview")["jobs"]
    assert [(j["name"], j["state"]) for j in overview] == [("jupiter-movements", "RUNNING")]
    with urllib.request.urlopen(f"{url}/", timeout=10) as response:  # the UI itself
        assert b"<title>Apache Flink Web Dashboard</title>" in response.read()

    def rows_written() -> bool:
        return any(m.group(1) == "50" for m in STATUS_LINE.finditer(job.text()))

    wait_until(rows_written, 180, f"a status line with 50 rows:\n{job.text()[-3000:]}")
    assert job.stop() == 0, job.text()[-6000:]


def test_json_logs_are_one_object_a_line_from_the_driver_and_the_workers(
    kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = new_topic()
    produce(kafka_bootstrap, topic, messages(20))
    env = job_environment(
        kafka_bootstrap,
        topic,
        tmp_path / "store",
        tmp_path / "checkpoints",
        LOG_FORMAT="json",
        FLINK_LOG_DIR=str(tmp_path / "flink-log"),
        CLICKHOUSE_PASSWORD=CANARY,  # unused by the embedded store, but read and logged redacted
    )
    result = run_job("jupiter_movements", env)
    lines = result.stdout.splitlines()
    entries = [json.loads(line) for line in lines]  # fails on any line that is not JSON
    assert entries, result.stderr[-3000:]
    assert all({"time", "level", "job", "logger", "message"} <= set(e) for e in entries)
    assert {e["job"] for e in entries} == {"jupiter-movements"}
    driver = [e for e in entries if e["message"].startswith("starting jupiter-movements")]
    workers = [e for e in entries if re.fullmatch(r"python worker \d+ logs JSON .*", e["message"])]
    assert driver and workers, lines[-20:]
    assert workers[0]["logger"] == "jupiter_common.logs"
    assert "Traceback" not in result.stdout.replace("\\n", "\n").split('"exception"')[0]
    (flink_log,) = (tmp_path / "flink-log").glob("*.log")
    assert all(json.loads(line) for line in flink_log.read_text().splitlines())
    for output in (result.stdout, result.stderr, flink_log.read_text()):
        assert CANARY not in output
