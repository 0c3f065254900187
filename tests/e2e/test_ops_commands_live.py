"""``hatch run status`` and ``hatch run dead-letters`` end to end: the real broker, movements-job
running streaming, the real ClickHouse engine behind its HTTP interface (so that the commands
read the store while the job writes to it). The commands run as operators run them: as
processes, with the job's settings in their environment, and the tests read what they print.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from support import (
    ClickHouseEndpoint,
    StreamingJob,
    committed_offsets,
    consume_all,
    job_environment,
    produce,
    unique,
    wait_until,
)

from jupiter_common.dead_letter import SourceRecord, dead_letter
from jupiter_common.parsing import Rejection, RejectReason
from jupiter_common.settings import load_shared_settings
from jupiter_ops.kafka import read_topic
from jupiter_ops.replay import HEADER_PREFIX

pytestmark = pytest.mark.e2e

SESSION = "5f1b1f0e-8f3a-4c1e-9d3a-0b7f6e2d1a01"
VEHICLE = "a1b2c3d4-e5f6-4a8b-9c0d-1e2f3a4b5c6d"
T0 = datetime(2025, 7, 19, 12, 0, tzinfo=UTC)


def ping(seconds: int, session: str = SESSION) -> dict[str, Any]:
    stamp = (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return {
        "session_id": session,
        "vehicle_id": VEHICLE,
        "order_id": "c1d2e3f4-a5b6-4c8d-9e0f-1a2b3c4d5e6f",
        "status": "en_route",
        "timestamp": stamp,
        "start_lat": 40.75,
        "start_lon": -73.98,
        "end_lat": 40.76,
        "end_lon": -73.99,
        "current_lat": 40.75 + seconds / 10_000,
        "current_lon": -73.98,
    }


def session(number: int) -> str:
    """Session ids keyed to both partitions of a topic."""
    return f"{SESSION[:-4]}{number:04d}"


def record(body: dict[str, Any]) -> tuple[bytes, bytes]:
    return str(body["session_id"]).encode(), json.dumps(body).encode()


def command(module: str, env: Mapping[str, str], *args: str) -> str:
    """Run an operator command; it must exit 0. Returns what it printed (stdout + stderr)."""
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"{module} {args} exited {done.returncode}:\n{done.stderr}"
    return done.stdout + done.stderr


def movements_line(env: Mapping[str, str]) -> list[str]:
    """The cells of movements-job's line in ``status``'s jobs table: job, group, lag (total,
    then per partition), table, rows in the last minute, rows in the last hour."""
    out = command("jupiter_ops.status", env, "--width", "300")
    for line in out.splitlines():
        cells = [cell.strip() for cell in re.split(r"[│|┃]", line)][1:-1]
        if len(cells) == 6 and cells[0] == "movements":
            return cells
    raise AssertionError(f"no movements line in status:\n{out}")


def movements_lag(env: Mapping[str, str]) -> int:
    return int(movements_line(env)[2].split()[0])


@pytest.fixture
def setup(
    kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path: Path
) -> tuple[dict[str, str], ClickHouseEndpoint]:
    store = ClickHouseEndpoint(tmp_path / "clickhouse", tmp_path / "clickhouse.log")
    env = job_environment(
        kafka_bootstrap,
        new_topic("sessions", partitions=2),
        tmp_path / "unused",
        tmp_path / "checkpoints",
        DEAD_LETTER_TOPIC=new_topic("dead-letter", partitions=1),
        KAFKA_CONSUMER_GROUP=unique("movements"),
        **store.settings,
    )
    return env, store


def test_status_shows_lag_of_a_stopped_job_behind_new_data_and_none_once_caught_up(
    setup: tuple[dict[str, str], ClickHouseEndpoint], tmp_path: Path
) -> None:
    env, store = setup
    bootstrap, topic, group = (
        env["KAFKA_BOOTSTRAP"],
        env["KAFKA_TOPIC"],
        env["KAFKA_CONSUMER_GROUP"],
    )
    produce(bootstrap, topic, [record(ping(i, session(i))) for i in range(20)])
    job = StreamingJob("jupiter_movements", env, tmp_path / "job-1.log")
    job.wait_caught_up(bootstrap, topic, group)
    assert movements_lag(env) == 0
    job.stop_with_savepoint()

    produce(bootstrap, topic, [record(ping(100 + i, session(i))) for i in range(30)])
    assert movements_lag(env) == 30  # stopped behind 30 new records
    out = command("jupiter_ops.status", env, "--width", "300")
    assert "session_movements" in out and "latest checkpoint" in out
    assert "savepoint-" in out  # the savepoint the stop wrote, with its age

    job = StreamingJob("jupiter_movements", env, tmp_path / "job-2.log")
    wait_until(lambda: movements_lag(env) == 0, 180, "status to show movements caught up")
    assert committed_offsets(bootstrap, topic, group) == (50, 50)
    cells = movements_line(env)
    assert cells[2] == "0  p0: 0, p1: 0" and cells[3] == "session_movements"
    assert cells[5] == "50" and 30 <= int(cells[4]) <= 50  # the first 20 may be over a minute old
    assert store.count("session_movements") == 50
    job.terminate()


def test_dead_letters_list_show_and_replay_of_a_fixed_record_lands_its_row_once(
    setup: tuple[dict[str, str], ClickHouseEndpoint], tmp_path: Path
) -> None:
    """The job dead-letters a malformed record (list and show read it). The record to replay
    is one an earlier version of the rules refused and today's accept: its dead letter is
    written with the jobs' own builder, as that version wrote it. Replayed twice, its row is
    one row for a query with FINAL, the way docs/dead-letters.md tells readers to count."""
    env, store = setup
    bootstrap, topic, group = (
        env["KAFKA_BOOTSTRAP"],
        env["KAFKA_TOPIC"],
        env["KAFKA_CONSUMER_GROUP"],
    )
    dlq = env["DEAD_LETTER_TOPIC"]
    broken = {k: v for k, v in ping(50).items() if k != "vehicle_id"}
    produced = produce(bootstrap, topic, [record(ping(i)) for i in range(3)] + [record(broken)])
    fixed = json.dumps(ping(60)).encode()
    earlier = dead_letter(
        "movements",
        fixed,
        Rejection(RejectReason.INVALID, "refused by an earlier rule", "status"),
        SourceRecord(topic, 0, 999),
    )
    produce(bootstrap, dlq, [(None, earlier.to_bytes())])

    job = StreamingJob("jupiter_movements", env, tmp_path / "job.log")
    job.wait_caught_up(bootstrap, topic, group)
    wait_until(lambda: len(consume_all(bootstrap, dlq)) == 2, 60, "the job's dead letter")

    listed = command("jupiter_ops.dead_letters", env, "list", "--job", "movements").splitlines()
    lines = [line.split("\t") for line in listed if "\t" in line]
    assert [(f[3], f[4]) for f in lines] == [("invalid", "status"), ("missing_field", "vehicle_id")]
    assert lines[1][5] == f"{topic}[{produced[3].partition}]@{produced[3].offset}"
    assert "2 dead letters" in listed[-1]
    only = command("jupiter_ops.dead_letters", env, "list", "--reason", "missing_field")
    assert only.count("\t") == 7
    shown = command("jupiter_ops.dead_letters", env, "show", lines[1][0])
    assert "reason        missing_field" in shown and f'"session_id": "{SESSION}"' in shown

    fixed_id = lines[0][0]
    dry = command("jupiter_ops.dead_letters", env, "replay", "--id", fixed_id, "--dry-run")
    assert "dry run: 1 records would be replayed" in dry
    assert len(consume_all(bootstrap, topic)) == 4

    one_row = (
        "SELECT count() FROM session_movements FINAL"
        f" WHERE session_id = '{SESSION}' AND timestamp = toDateTime64('2025-07-19 12:01:00', 3)"
    )
    for attempt in (1, 2):
        out = command("jupiter_ops.dead_letters", env, "replay", "--id", fixed_id)
        assert f"replayed 1 records to {topic}" in out
        job.wait_caught_up(bootstrap, topic, group)
        assert store.query(one_row) == [(1,)], f"after replay {attempt}"
    assert store.query(
        f"SELECT count() FROM session_movements FINAL WHERE session_id = '{SESSION}'"
    ) == [(4,)]

    replayed = [m for m in read_topic(load_shared_settings(env), topic) if m.value() == fixed]
    assert len(replayed) == 2 and {m.key() for m in replayed} == {SESSION.encode()}
    for message in replayed:
        headers = dict(message.headers() or [])
        assert {name: headers[HEADER_PREFIX + name] for name in ("topic", "offset", "reason")} == {
            "topic": topic.encode(),
            "offset": b"999",
            "reason": b"invalid",
        }
    job.terminate()
