"""The benchmark's streaming modes (see bench.py): each job runs streaming (not bounded) into a
fresh embedded store, with its own topic, consumer group and checkpoints, and is stopped with
SIGTERM at the end (it drains and takes a savepoint).

* ``latency``: produce ``WARMUP_MESSAGES`` messages and wait until a checkpoint covers them
  (the job is up and reading), then produce ``--rate`` messages/s for ``--seconds`` with a
  paced producer; every message's ``timestamp`` is the wall-clock time it is sent at
  (``stamp_when_pulled``). Wait until a checkpoint covers every record, stop the job, and read
  ``ingested_at - timestamp`` (``started_at`` for sessions_base; ``ingested_at`` is set by
  ClickHouse at insert) of the rows whose timestamp is at least ``--warmup`` seconds after the
  paced production began: the event-to-queryable latency, p50/p99/max.
* ``checkpoint_size``: for ``--live-sessions`` sessions that never end within the stream (no
  ``arrived``/``completed``/``cancelled``), with about 3 and about 30 messages per session,
  run events-job and base-job streaming until a checkpoint covers every record, then wait for
  the next checkpoint (taken on a quiet stream, so the sink has nothing buffered) and report
  its size on disk: the files under ``chk-N`` plus the job's ``shared`` folder (empty with the
  hashmap state backend). The savepoint taken at the stop is reported too.
"""

from __future__ import annotations

import argparse
import shutil
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlparse

from jupiter_common.tables import SESSION_EVENTS, SESSION_MOVEMENTS, SESSIONS_BASE
from jupiter_local import bench_report as report
from jupiter_local.localrun import (
    StreamingRun,
    delete_topics,
    disk_usage,
    ensure_topics,
    expected_rows,
    job_env,
    latest_checkpoint,
    newest_checkpoint,
    query,
    wait_checkpointed,
)
from jupiter_local.measure import TreeUsage
from jupiter_local.producer import produce
from jupiter_local.synthetic import (
    GeneratorConfig,
    SyntheticRecord,
    generate,
    iter_records,
    stamp_when_pulled,
)

PARTITIONS: Final = 4
WARMUP_MESSAGES: Final = 200
START_TIMEOUT_S: Final = 300.0
STATE_TIMEOUT_S: Final = 4 * 3600.0
STATE_JOBS: Final = ("events", "base")
MESSAGES_PER_SESSION: Final = (3, 30)
ENDINGS: Final = (b'"status":"arrived"', b'"status":"completed"', b'"status":"cancelled"')
# (table, the column holding the message's timestamp); names are constants, never input.
LATENCY_COLUMNS: Final = {
    "movements": (SESSION_MOVEMENTS.name, "timestamp"),
    "base": (SESSIONS_BASE.name, "started_at"),
    "events": (SESSION_EVENTS.name, "timestamp"),
}


def _start(
    job: str, bootstrap: str, topic: str, work: Path, group: str, settings: dict[str, str]
) -> tuple[StreamingRun, Path]:
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    store = work / "clickhouse"
    env = job_env(bootstrap, topic, store, work, KAFKA_CONSUMER_GROUP=group, **settings)
    print(f"running {job}-job streaming on {topic} ...", flush=True)
    return StreamingRun(job, env, work / "job.log"), store


def _latency_of(
    job: str, store: Path, window_start_ms: int, warmup_ms: int, stop_ms: int
) -> dict[str, Any]:
    """Latency figures from the store; the SQL holds only constants and integers."""
    table, column = LATENCY_COLUMNS[job]
    ms = f"toUnixTimestamp64Milli({column})"
    since, stop = int(window_start_ms + warmup_ms), int(stop_ms)
    latencies = query(
        store,
        f"SELECT toUnixTimestamp64Milli(ingested_at) - {ms} FROM {table} WHERE {ms} >= {since}",  # noqa: S608
    )
    landed = query(store, f"SELECT count() FROM {table} FINAL")  # noqa: S608
    at_stop = query(
        store,
        f"SELECT count() FROM {table} WHERE toUnixTimestamp64Milli(ingested_at) >= {stop}",  # noqa: S608
    )
    return {
        **report.latency_summary([int(r[0]) for r in latencies]),
        "rows_landed": int(landed[0][0]),
        "rows_landed_at_stop": int(at_stop[0][0]),
    }


def latency(
    args: argparse.Namespace, bootstrap: str, run_id: str, work: Path
) -> tuple[dict[str, Any], dict[str, Any], bool]:
    """The latency run: (stream, results, ok)."""
    paced = round(args.rate * args.seconds)
    config = GeneratorConfig(
        sessions=report.sessions_for(paced + WARMUP_MESSAGES, args.pings, 0.1),
        pings_per_session=args.pings,
        seed=args.seed,
    )
    records = generate(config).records
    warm, window = records[:WARMUP_MESSAGES], records[WARMUP_MESSAGES : WARMUP_MESSAGES + paced]
    expected = expected_rows(records[: WARMUP_MESSAGES + paced])
    stream = {
        "rate": args.rate,
        "seconds": args.seconds,
        "warmup_seconds": args.warmup,
        "warmup_messages": len(warm),
        "messages": len(warm) + len(window),
        "pings": args.pings,
        "seed": args.seed,
        "rows_expected": expected,
        "settings": args.settings,
    }
    results: dict[str, Any] = {}
    ok = True
    topics: list[str] = []
    for job in args.jobs:
        topic, group = f"bench-live-{job}-{run_id}", f"bench-live-{job}-{run_id}"
        dead_letters = f"bench-live-dead-letter-{job}-{run_id}"
        ensure_topics(bootstrap, {topic: PARTITIONS, dead_letters: 1})
        settings = {**args.settings, "DEAD_LETTER_TOPIC": dead_letters}
        topics += [topic, dead_letters]
        try:
            with TreeUsage() as usage:
                run, store = _start(job, bootstrap, topic, work / job, group, settings)
                try:
                    produce(stamp_when_pulled(warm), bootstrap, topic)
                    up = wait_checkpointed(run, bootstrap, topic, group, START_TIMEOUT_S)
                    print(f"  up and checkpointed after {up:.0f} s; {args.rate:,.0f} msg/s ...")
                    window_start_ms = int(time.time() * 1000)
                    started = time.monotonic()
                    produce(stamp_when_pulled(window), bootstrap, topic, rate=args.rate)
                    produce_seconds = time.monotonic() - started
                    catch_up = wait_checkpointed(
                        run, bootstrap, topic, group, max(START_TIMEOUT_S, 5 * args.seconds)
                    )
                    stop_ms = int(time.time() * 1000)
                finally:
                    run.stop()
        except RuntimeError as exc:
            print(report.failure(job, exc))
            ok = False
            continue
        figures = _latency_of(job, store, window_start_ms, round(args.warmup * 1000), stop_ms)
        results[job] = {
            "produce_rate": round(len(window) / produce_seconds, 1),
            "produce_seconds": round(produce_seconds, 2),
            "catch_up_seconds": round(catch_up, 1),
            "rows_expected": expected[job],
            **figures,
            "peak_rss_mb": report.rounded(usage.peak_mb),
            "cpu_seconds": round(usage.cpu_seconds, 2),
            "cpu_seconds_per_1k_messages": report.rounded(
                report.per_1k(usage.cpu_seconds, len(warm) + len(window)), 4
            ),
        }
        ok &= figures["rows_landed"] == expected[job]
        print(
            f"  {job}-job: {figures['rows_landed']:,} rows landed, {expected[job]:,} expected;"
            f" after warm-up p50 {figures['p50_ms']} ms, p99 {figures['p99_ms']} ms,"
            f" max {figures['max_ms']} ms ({figures['rows']:,} rows);"
            f" {figures['rows_landed_at_stop']:,} rows landed only at the stop",
            flush=True,
        )
    if not args.keep_topics:
        delete_topics(bootstrap, topics)
    return stream, results, ok


def never_ending(records: Iterable[SyntheticRecord]) -> Iterator[SyntheticRecord]:
    """``records`` without the messages that end a session: every session stays live."""
    return (r for r in records if not any(ending in r.value for ending in ENDINGS))


def _path(uri: str) -> Path:
    return Path(urlparse(uri).path if uri.startswith("file:") else uri)


def _state_size(
    job: str, bootstrap: str, topic: str, work: Path, group: str, settings: dict[str, str]
) -> dict[str, Any]:
    run, _ = _start(job, bootstrap, topic, work, group, settings)
    try:
        catch_up = wait_checkpointed(run, bootstrap, topic, group, STATE_TIMEOUT_S)
        covering = latest_checkpoint(work / "checkpoints")
        deadline = time.monotonic() + START_TIMEOUT_S
        while latest_checkpoint(work / "checkpoints") <= covering:  # one on a quiet stream
            run.check()
            if time.monotonic() > deadline:
                raise RuntimeError(f"{job}-job: no checkpoint after chk-{covering}")
            time.sleep(0.5)
        newest = newest_checkpoint(work / "checkpoints")
        assert newest is not None
        size = disk_usage(newest) + disk_usage(newest.parent / "shared")
    finally:
        savepoint = run.stop()
    return {
        "catch_up_seconds": round(catch_up, 1),
        "checkpoint": newest.name,
        "checkpoint_bytes": size,
        "savepoint_bytes": None if savepoint is None else disk_usage(_path(savepoint)),
    }


def checkpoint_size(
    args: argparse.Namespace, bootstrap: str, run_id: str, work: Path
) -> tuple[dict[str, Any], dict[str, Any], bool]:
    """The state run: (stream, results, ok)."""
    jobs = [job for job in STATE_JOBS if job in args.jobs]
    streams: dict[str, Any] = {}
    results: dict[str, dict[str, Any]] = {job: {} for job in jobs}
    ok = bool(jobs)
    for per_session in MESSAGES_PER_SESSION:
        topic = f"bench-state-{per_session}-{run_id}"
        dead_letters = f"{topic}-dead-letter"
        ensure_topics(bootstrap, {topic: PARTITIONS, dead_letters: 1})
        config = GeneratorConfig(
            sessions=args.live_sessions,
            pings_per_session=per_session - 1,
            cancel_ratio=0.0,
            seed=args.seed,
        )
        started = time.monotonic()
        messages = produce(never_ending(iter_records(config)), bootstrap, topic)
        print(
            f"produced {messages:,} messages of {args.live_sessions:,} live sessions to {topic}"
            f" in {time.monotonic() - started:.0f} s",
            flush=True,
        )
        streams[str(per_session)] = {"topic": topic, "messages": messages}
        for job in jobs:
            try:
                figures = _state_size(
                    job, bootstrap, topic, work / f"{job}-{per_session}",
                    f"bench-state-{job}-{per_session}-{run_id}",
                    {**args.settings, "DEAD_LETTER_TOPIC": dead_letters},
                )  # fmt: skip
            except RuntimeError as exc:
                print(report.failure(job, exc))
                ok = False
                continue
            results[job][str(per_session)] = {
                "messages_per_session": round(messages / args.live_sessions, 2),
                "sessions": args.live_sessions,
                "messages": messages,
                **figures,
                "bytes_per_session": round(figures["checkpoint_bytes"] / args.live_sessions, 1),
            }
            print(f"  {job}-job: {figures}", flush=True)
        if not args.keep_topics:
            delete_topics(bootstrap, (topic, dead_letters))
    return {"live_sessions": args.live_sessions, "streams": streams}, results, ok
