"""Benchmark: the three jobs against ClickHouse's Kafka table engine, on one topic, in one run.

Runs on the real pieces: the Kafka broker at ``KAFKA_BOOTSTRAP`` (else the local one), real
PyFlink and the embedded ClickHouse engine (chDB); the jobs are run through their command line
only. Three modes:

* throughput (default): one seeded stream (no faults) on a fresh 4-partition topic. Each job
  runs bounded twice, each time with its own consumer group and a fresh store: on an *empty*
  topic (its fixed cost: JVM and Flink start-up, teardown), then on the full topic; the rows
  landed (``FINAL``) must equal the rows the generated stream implies. The Kafka engine
  (kafka_engine.py) consumes the same topic into ``session_movements`` before and after the
  jobs. Rates, ratios to the engine, peak RSS and CPU time of each run's process tree.
* latency (``--rate R --seconds S``, see bench_live.py): each job streaming, fed at R msg/s.
* state (``--checkpoint-size``, see bench_live.py): checkpoint size over live sessions.

It asserts nothing about time. It prints one table, then the JSON record on a last line
prefixed ``BENCH_JSON``, also written to ``--json``. A wrong row count, or a run that fails,
exits 1 without the JSON record.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from jupiter_common.registry import get_job
from jupiter_local import bench_live
from jupiter_local import bench_report as report
from jupiter_local.kafka_engine import run_engine
from jupiter_local.localrun import (
    count_records,
    delete_topics,
    ensure_broker,
    ensure_topics,
    expected_rows,
    job_env,
    query,
    run_bounded,
)
from jupiter_local.measure import LandingWatch, TreeUsage, git_commit, machine_info
from jupiter_local.paths import REPO
from jupiter_local.producer import produce
from jupiter_local.progress import Bar, progress_bar
from jupiter_local.synthetic import GeneratorConfig, generate

PARTITIONS: Final = 4
# 1M: at 200k the engine lands in 2-3 blocks within ~3 s and a job's processing time (7-14 s)
# is no larger than the noise of its empty-topic run on a shared machine; at 1M a job processes
# for 20-60 s and the engine for ~10 s after its first block, and a full run took 5-6 minutes
# on the 2-core development machine.
DEFAULT_MESSAGES: Final = 1_000_000
PROGRESS_EVERY_S: Final = 30.0


def _progress(label: str, usage: TreeUsage, bar: Bar) -> Callable[[float], None]:
    """On a terminal the run's bar shows the job tree's memory; elsewhere one line every
    PROGRESS_EVERY_S seconds."""
    last_print = [0.0]

    def show(elapsed: float) -> None:
        if bar.active:
            bar.update(note=f"RSS {usage.last_kb / 1024:,.0f} MB")
        elif elapsed - last_print[0] >= PROGRESS_EVERY_S:
            last_print[0] = elapsed
            print(f"  {label}: {elapsed:4.0f} s, RSS {usage.last_kb / 1024:,.0f} MB", flush=True)

    return show


@dataclass(frozen=True)
class BoundedRun:
    seconds: float
    usage: TreeUsage
    store: Path
    first_block_seconds: float | None
    first_block_rows: int
    last_row_seconds: float | None


def _bounded(
    job: str, label: str, bootstrap: str, topic: str, work: Path, extra: Mapping[str, str]
) -> BoundedRun:
    """Run ``job`` bounded on ``topic`` with a fresh store, watching when its rows land."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    store = work / "clickhouse"
    env = job_env(bootstrap, topic, store, work, **extra)
    table = get_job(job).table.name
    with TreeUsage() as usage, LandingWatch(store / "data" / "default" / table) as landing:
        started = time.monotonic()
        with progress_bar(f"{job}-job on {label}", None) as bar:
            run = run_bounded(job, env, work / "job.log", _progress(f"{job}-job", usage, bar))

    def since_start(at: float | None) -> float | None:
        return None if at is None else at - started

    return BoundedRun(
        run.seconds,
        usage,
        store,
        since_start(landing.first_at),
        landing.first_rows,
        since_start(landing.last_at),
    )


def _engine_run(
    bootstrap: str, topic: str, run_id: str, n: int, work: Path, messages: int, rows: int
) -> dict[str, Any]:
    print(f"running the Kafka engine on {topic} (run {n}) ...", flush=True)
    engine = run_engine(bootstrap, topic, f"bench-engine-{run_id}-{n}", work / f"engine-{n}", rows)
    result = report.engine_run_result(
        messages=messages,
        rows_expected=rows,
        rows_landed=engine.rows_final,
        seconds=engine.seconds,
        first_block_seconds=engine.first_block_seconds,
        first_block_rows=engine.first_block_rows,
        cpu_seconds=engine.cpu_seconds,
        cpu_seconds_at_first_block=engine.cpu_seconds_at_first_block,
        peak_rss_mb=engine.peak_rss_mb,
    )
    print(
        f"  engine: first block ({engine.first_block_rows:,} rows) after"
        f" {report.fmt(engine.first_block_seconds, 's', 1)}, all {engine.rows_final:,} rows after"
        f" {report.fmt(engine.seconds, 's', 1)}",
        flush=True,
    )
    return result


def throughput(
    args: argparse.Namespace, bootstrap: str, run_id: str, work: Path
) -> tuple[dict[str, Any], dict[str, Any], bool]:
    """The throughput run: (stream, results, ok)."""
    topic, empty_topic = f"bench-sessions-{run_id}", f"bench-empty-{run_id}"
    dead_letters = f"bench-dead-letter-{run_id}"
    ensure_topics(bootstrap, {topic: PARTITIONS, empty_topic: PARTITIONS, dead_letters: 1})
    config = GeneratorConfig(
        sessions=report.sessions_for(args.messages, args.pings, GeneratorConfig().cancel_ratio),
        pings_per_session=args.pings,
        seed=args.seed,
    )
    stream = generate(config)
    messages, expected = len(stream.records), expected_rows(stream.records)
    started = time.monotonic()
    with progress_bar("producing", messages) as bar:
        produced = produce(stream, bootstrap, topic, progress=bar)
    produce_seconds = time.monotonic() - started
    print(
        f"produced {produced:,} messages ({config.sessions:,} sessions, seed {args.seed}) to"
        f" {topic} ({PARTITIONS} partitions) in {produce_seconds:.1f} s; rows expected:"
        f" {json.dumps(expected)}",
        flush=True,
    )
    stream_info = {
        "topic": topic,
        "partitions": PARTITIONS,
        "messages": messages,
        "sessions": config.sessions,
        "pings": args.pings,
        "seed": args.seed,
        "produce_seconds": round(produce_seconds, 2),
        "rows_expected": expected,
        "settings": args.settings,
    }
    if produced != messages:
        print(f"bench FAILED: {produced:,} of {messages:,} messages delivered")
        return stream_info, {}, False

    engine_rows = expected["movements"]
    engine_runs = []
    if args.engine:
        engine_runs.append(_engine_run(bootstrap, topic, run_id, 1, work, messages, engine_rows))
    jobs: dict[str, dict[str, Any]] = {}
    ok = True
    for job in args.jobs:
        extra = {**args.settings, "DEAD_LETTER_TOPIC": dead_letters}
        try:
            group = f"bench-{job}-empty-{run_id}"
            print(f"running {job}-job bounded on the empty topic ...", flush=True)
            empty = _bounded(
                job, "the empty topic", bootstrap, empty_topic, work / job / "empty",
                {**extra, "KAFKA_CONSUMER_GROUP": group},
            )  # fmt: skip
            print(f"running {job}-job bounded on {messages:,} messages ...", flush=True)
            full = _bounded(
                job, "the full topic", bootstrap, topic, work / job / "full",
                {**extra, "KAFKA_CONSUMER_GROUP": f"bench-{job}-full-{run_id}"},
            )  # fmt: skip
        except RuntimeError as exc:
            print(report.failure(job, exc))
            ok = False
            continue
        # Table names come from the job registry, never from input.
        table = get_job(job).table.name
        landed = int(query(full.store, f"SELECT count() FROM {table} FINAL")[0][0])  # noqa: S608
        print(
            f"  {job}-job: empty topic {empty.seconds:.1f} s, full topic {full.seconds:.1f} s"
            f" (rows landing from {report.fmt(full.first_block_seconds, 's', 1)} to"
            f" {report.fmt(full.last_row_seconds, 's', 1)});"
            f" {table}: {landed:,} rows landed, {expected[job]:,} expected"
            f" -> {'OK' if landed == expected[job] else 'MISMATCH'}",
            flush=True,
        )
        ok &= landed == expected[job]
        jobs[job] = {
            "table": table,
            "empty_peak_rss_mb": report.rounded(empty.usage.peak_mb),
            **report.throughput_result(
                messages=messages,
                rows_expected=expected[job],
                rows_landed=landed,
                empty_run_seconds=empty.seconds,
                full_run_seconds=full.seconds,
                first_block_seconds=full.first_block_seconds,
                first_block_rows=full.first_block_rows,
                last_row_seconds=full.last_row_seconds,
                empty_cpu_seconds=empty.usage.cpu_seconds,
                cpu_seconds=full.usage.cpu_seconds,
                peak_rss_mb=full.usage.peak_mb,
            ),
        }
    if args.engine:
        engine_runs.append(_engine_run(bootstrap, topic, run_id, 2, work, messages, engine_rows))
    results: dict[str, Any] = {}
    engine = report.engine_summary(engine_runs) if engine_runs else None
    for job, figures in jobs.items():  # ratios once both engine runs are in
        results[job] = {**figures, **report.ratios(figures, engine)}
    if engine is not None:
        results[report.ENGINE] = engine
        ok &= all(r["rows_landed"] == engine_rows for r in engine_runs)
    dead = count_records(bootstrap, dead_letters)
    ok &= dead == 0
    print(f"dead letters: {dead} (0 expected)")
    if not args.keep_topics:
        delete_topics(bootstrap, (topic, empty_topic, dead_letters))
    return stream_info, results, ok


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m jupiter_local.bench", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--messages", type=int, default=DEFAULT_MESSAGES, help="about how many messages"
    )
    parser.add_argument("--pings", type=int, default=50, help="mean en_route pings per session")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", default="movements,base,events", help="comma-separated")
    parser.add_argument("--no-engine", dest="engine", action="store_false")
    parser.add_argument("--parallelism", type=int, default=None, help="FLINK_PARALLELISM")
    parser.add_argument("--batch-size", type=int, default=None, help="SINK_BATCH_SIZE")
    parser.add_argument("--rate", type=float, default=None, help="latency mode: messages/s")
    parser.add_argument("--seconds", type=float, default=None, help="latency mode: how long")
    parser.add_argument("--warmup", type=float, default=10.0, help="latency mode (seconds)")
    parser.add_argument("--checkpoint-size", action="store_true", help="state mode")
    parser.add_argument("--live-sessions", type=int, default=100_000, help="state mode")
    parser.add_argument("--keep-topics", action="store_true")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH")
    parser.add_argument("--work-dir", type=Path, default=REPO / ".jupiter" / "bench" / "work")
    args = parser.parse_args(argv)
    args.jobs = [j for j in args.jobs.split(",") if j]
    if not args.jobs or set(args.jobs) - set(report.JOBS) or len(set(args.jobs)) < len(args.jobs):
        parser.error(f"--jobs: a subset of {','.join(report.JOBS)}")
    if args.checkpoint_size and not set(args.jobs) & set(bench_live.STATE_JOBS):
        parser.error("--checkpoint-size measures events-job and base-job: --jobs events,base")
    if (args.rate is None) != (args.seconds is None):
        parser.error("--rate and --seconds go together")
    if args.rate is not None and (args.rate <= 0 or args.seconds <= args.warmup):
        parser.error("--rate must be > 0 and --seconds longer than --warmup")
    if args.messages < 1 or args.pings < 0 or args.live_sessions < 1:
        parser.error("--messages and --live-sessions must be >= 1, --pings >= 0")
    args.settings = {
        name: str(value)
        for name, value in (
            ("FLINK_PARALLELISM", args.parallelism),
            ("SINK_BATCH_SIZE", args.batch_size),
        )
        if value is not None
    }
    mode = (
        "checkpoint_size"
        if args.checkpoint_size
        else "latency"
        if args.rate is not None
        else "throughput"
    )

    run_id = time.strftime("%Y%m%d-%H%M%S")
    json_path: Path = args.json or REPO / ".jupiter" / "bench" / f"{mode}-{run_id}.json"
    timestamp = datetime.now(UTC).isoformat(timespec="seconds")
    machine = machine_info()
    print(
        f"machine: {machine['nproc']} CPUs ({machine['cpu_model'] or 'unknown CPU'}),"
        f" {machine['mem_total_mb']:,} MB, load {machine['load_average']}, Python"
        f" {machine['python']}, apache-flink {machine['apache_flink']}, chdb {machine['chdb']}"
    )
    bootstrap = ensure_broker(os.environ.get("KAFKA_BOOTSTRAP"))
    work: Path = args.work_dir / mode
    shutil.rmtree(work, ignore_errors=True)
    if mode == "throughput":
        stream, results, ok = throughput(args, bootstrap, run_id, work)
        table = report.format_table(report.THROUGHPUT_HEADER, report.throughput_rows(results))
    elif mode == "latency":
        stream, results, ok = bench_live.latency(args, bootstrap, run_id, work)
        table = report.format_table(report.LATENCY_HEADER, report.latency_rows(results))
    else:
        stream, results, ok = bench_live.checkpoint_size(args, bootstrap, run_id, work)
        table = report.format_table(report.CHECKPOINT_HEADER, report.checkpoint_rows(results))
    command = shlex.join(["hatch", "run", "bench", *(sys.argv[1:] if argv is None else argv)])
    print(f"\n{command}\n{table}\n")
    if not ok:
        print(f"bench FAILED: wrong result or failed run; see the lines above and {work}")
        return 1
    record = report.bench_record(
        mode,
        timestamp=timestamp,
        command=command,
        stream=stream,
        results=results,
        machine={**machine, "load_average_after": [round(x, 2) for x in os.getloadavg()]},
        git_commit=git_commit(),
    )
    json_path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record)
    json_path.write_text(line + "\n")
    print(f"written to {json_path}")
    print(f"BENCH_JSON {line}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
