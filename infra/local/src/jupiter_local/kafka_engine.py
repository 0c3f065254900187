"""The benchmark's baseline: ClickHouse's own Kafka table engine inside chDB.

A fresh chDB store gets ``session_movements`` from its own DDL (``SESSION_MOVEMENTS``), a
``Kafka`` table on the topic with a fresh consumer group (1 consumer, JSONEachRow, blocks of up
to 65,536 messages) and a materialized view from the Kafka table to ``session_movements`` that
keeps the messages with a position, as movements-job does. The view consumes while the chDB
session stays open; this process polls ``count()`` every 50 ms until the expected rows are in,
checks ``count() FINAL`` and prints one line ``ENGINE_JSON {...}`` with the CLOCK_MONOTONIC
times of the first landed block and of the last expected row (comparable with the parent's
``time.monotonic()``), the rows of the first block, and its own CPU time at the first block.

In chDB, ``CREATE TABLE ... ENGINE = Kafka`` raises ``Code: 49 ... Shutdown was called`` yet
attaches the table; that exception is expected and ignored. The engine parses with
ClickHouse's lenient JSON and date parsing and writes no dead letters: it does less than the job.

:func:`run_engine` runs this file as a child process and measures it like a job.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from jupiter_common.settings import Settings
from jupiter_common.tables import SESSION_MOVEMENTS
from jupiter_local.measure import TreeUsage, own_cpu_seconds

MAX_BLOCK: Final = 65_536
FLUSH_MS: Final[int] = Settings.model_fields["sink_flush_interval_ms"].default
"""The engine flushes a block as often as a job's Python step does by default."""
POLL_S: Final = 0.05
TABLE: Final = SESSION_MOVEMENTS.name


def _kafka_ddl(bootstrap: str, topic: str, group: str) -> str:
    return f"""
        CREATE TABLE kafka_sessions (
            session_id UUID, vehicle_id UUID, order_id UUID, status String, timestamp String,
            current_lat Nullable(Float64), current_lon Nullable(Float64)
        ) ENGINE = Kafka SETTINGS
            kafka_broker_list = '{bootstrap}', kafka_topic_list = '{topic}',
            kafka_group_name = '{group}', kafka_format = 'JSONEachRow',
            kafka_num_consumers = 1, kafka_max_block_size = {MAX_BLOCK},
            kafka_flush_interval_ms = {FLUSH_MS}"""


MV_DDL: Final = f"""
    CREATE MATERIALIZED VIEW kafka_to_movements TO {TABLE} AS SELECT
        session_id, vehicle_id, order_id,
        parseDateTime64BestEffort(timestamp, 3, 'UTC') AS timestamp, status,
        assumeNotNull(current_lat) AS lat, assumeNotNull(current_lon) AS lon,
        _partition AS source_partition, _offset AS source_offset
    FROM kafka_sessions WHERE current_lat IS NOT NULL AND current_lon IS NOT NULL"""  # noqa: S608


def _consume(args: argparse.Namespace) -> dict[str, Any]:
    from chdb import session as chdb_session  # only the child needs chDB

    session_class: Any = chdb_session.Session  # untyped
    db = session_class(str(args.store))

    def count(final: str = "") -> int:
        sql = f"SELECT count() FROM {TABLE} {final}"  # noqa: S608 (constants only)
        return int(db.query(sql, "CSV").bytes().strip() or 0)

    try:
        db.query(SESSION_MOVEMENTS.ddl("default"))
        try:
            db.query(_kafka_ddl(args.bootstrap, args.topic, args.group))
        except Exception as exc:
            if "Shutdown was called" not in str(exc):
                raise
        db.query(MV_DDL)
        first: tuple[float, int, float] | None = None
        deadline = time.monotonic() + args.timeout
        while (rows := count()) < args.expect and time.monotonic() < deadline:
            if rows and first is None:
                first = (time.monotonic(), rows, own_cpu_seconds())
            time.sleep(POLL_S)
        done = time.monotonic()
        if rows and first is None:  # everything came in one block
            first = (done, rows, own_cpu_seconds())
        db.query("DROP TABLE kafka_to_movements")  # stop consuming before FINAL
        return {
            "rows": rows,
            "rows_final": count("FINAL"),
            "first_block_at": None if first is None else first[0],
            "first_block_rows": 0 if first is None else first[1],
            "cpu_seconds_at_first_block": None if first is None else first[2],
            "last_row_at": done if rows >= args.expect else None,
        }
    finally:
        db.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m jupiter_local.kafka_engine", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--expect", type=int, required=True, help="rows to wait for")
    parser.add_argument("--timeout", type=float, default=1200)
    result = _consume(parser.parse_args(argv))
    print(f"ENGINE_JSON {json.dumps(result)}", flush=True)
    return 0


# --------------------------------------------------------------------------- the parent side


@dataclass(frozen=True)
class EngineRun:
    seconds: float | None
    """From starting this file's process to the last expected row (None: never)."""
    first_block_seconds: float | None
    """From starting the process to the first landed block."""
    first_block_rows: int
    rows: int
    rows_final: int
    peak_rss_mb: float | None
    cpu_seconds: float
    cpu_seconds_at_first_block: float | None


def run_engine(
    bootstrap: str, topic: str, group: str, work: Path, expect: int, timeout: float = 1200
) -> EngineRun:
    """Run the engine on ``topic`` into a fresh store under ``work``, measured like a job."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    command = [
        sys.executable,
        "-m",
        "jupiter_local.kafka_engine",
        "--bootstrap",
        bootstrap,
        "--topic",
        topic,
    ]
    command += ["--group", group, "--store", str(work / "clickhouse"), "--expect", str(expect)]
    command += ["--timeout", str(timeout)]
    with TreeUsage() as usage:
        started = time.monotonic()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    (work / "engine.log").write_text(done.stdout + done.stderr)
    lines = [line for line in done.stdout.splitlines() if line.startswith("ENGINE_JSON ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"the Kafka engine run failed (exit {done.returncode}):\n{done.stderr}")
    result = json.loads(lines[-1].removeprefix("ENGINE_JSON "))

    def since_start(key: str) -> float | None:
        return None if result[key] is None else float(result[key]) - started

    return EngineRun(
        seconds=since_start("last_row_at"),
        first_block_seconds=since_start("first_block_at"),
        first_block_rows=int(result["first_block_rows"]),
        rows=int(result["rows"]),
        rows_final=int(result["rows_final"]),
        peak_rss_mb=usage.peak_mb,
        cpu_seconds=usage.cpu_seconds,
        cpu_seconds_at_first_block=result["cpu_seconds_at_first_block"],
    )


if __name__ == "__main__":
    sys.exit(main())
