"""README command 1: the whole pipeline end to end on the embedded defaults.

Uses the Kafka broker at ``KAFKA_BOOTSTRAP`` (else the local one), produces a seeded synthetic
stream with duplicates, reordering and malformed records to a fresh topic, runs each job
bounded into the embedded ClickHouse store, one after another (one chDB directory admits one
process at a time), and prints per table the rows landed against the rows expected from the
generated stream, sample rows, the dead-letter count and throughput. Exits 1 on any mismatch.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from jupiter_common.registry import get_job, job_names
from jupiter_local.localrun import (
    count_records,
    ensure_broker,
    ensure_topics,
    expected_rows,
    job_env,
    latest_checkpoint,
    query,
    run_bounded,
)
from jupiter_local.paths import REPO
from jupiter_local.producer import produce
from jupiter_local.progress import Bar, progress_bar
from jupiter_local.synthetic import GeneratorConfig, generate


def checkpoint_note(checkpoints: Path, bar: Bar) -> Callable[[float], None]:
    """Shows a bounded run advancing on its progress bar: its latest completed checkpoint (a
    bounded run commits no offsets to its group, so the group's lag cannot show it)."""
    seen = [0]

    def show(elapsed: float) -> None:
        latest = latest_checkpoint(checkpoints)
        seen[0] = max(seen[0], latest)
        if latest:
            bar.update(note=f"checkpoint {latest} completed")
        else:
            bar.update(note="finishing" if seen[0] else "starting")

    return show


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m jupiter_local.demo", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--sessions", type=int, default=300)
    parser.add_argument("--pings", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--jobs", default=",".join(job_names()), help="the jobs to run (default: %(default)s)"
    )
    parser.add_argument("--work-dir", type=Path, default=REPO / ".jupiter" / "demo")
    args = parser.parse_args(argv)
    jobs = [j for j in args.jobs.split(",") if j]

    bootstrap = ensure_broker(os.environ.get("KAFKA_BOOTSTRAP"))
    run_id = time.strftime("%Y%m%d-%H%M%S")
    topic, dead_letters = f"demo-sessions-{run_id}", f"demo-dead-letter-{run_id}"
    ensure_topics(bootstrap, {topic: 4, dead_letters: 1})
    work = args.work_dir
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    store = work / "clickhouse"

    config = GeneratorConfig(
        sessions=args.sessions,
        pings_per_session=args.pings,
        seed=args.seed,
        duplicate_ratio=0.01,
        reorder_ratio=0.01,
        malformed_count=12,
    )
    stream = generate(config)
    started = time.monotonic()
    with progress_bar("producing", len(stream.records)) as bar:
        produced = produce(stream, bootstrap, topic, progress=bar)
    print(
        f"produced {produced} records to {topic} on {bootstrap} in"
        f" {time.monotonic() - started:.1f} s: {json.dumps(stream.expected.as_dict())}"
    )
    expected = expected_rows(stream.records)

    failures = 0
    for job in jobs:
        group = f"jupiter-{job}-{run_id}"
        env = job_env(
            bootstrap,
            topic,
            store,
            work / job,
            KAFKA_CONSUMER_GROUP=group,
            DEAD_LETTER_TOPIC=dead_letters,
            FLINK_CHECKPOINT_INTERVAL_MS="2000",
        )
        (work / job).mkdir()
        print(f"running {job}-job (bounded) ...", flush=True)
        with progress_bar(f"{job}-job", None) as bar:
            note = checkpoint_note(work / job / "checkpoints", bar)
            run = run_bounded(job, env, work / job / "job.log", note)
        table = get_job(job).table.name
        # Table and column names below come from the job registry, never from input.
        landed = query(store, f"SELECT count() FROM {table} FINAL")[0][0]  # noqa: S608
        ok = landed == expected[job]
        failures += not ok
        print(
            f"\n{table}: {landed} rows landed, {expected[job]} expected"
            f" -> {'OK' if ok else 'MISMATCH'}; {produced / run.seconds:,.0f} records/s"
            f" ({produced} records in {run.seconds:.1f} s, job start-up included)"
        )
        for row in query(
            store,
            f"SELECT {', '.join(get_job(job).sample_columns)} FROM {table} FINAL"  # noqa: S608
            " ORDER BY session_id LIMIT 3",
        ):
            print("   ", " | ".join(str(v) for v in row))

    dead = count_records(bootstrap, dead_letters)
    want_dead = stream.expected.malformed * len(jobs)
    print(
        f"dead letters: {dead} in {dead_letters} ({stream.expected.malformed} malformed records"
        f" x {len(jobs)} jobs = {want_dead} expected) -> {'OK' if dead == want_dead else 'MISMATCH'}"
    )
    failures += dead != want_dead
    print(
        f"store: {store}  (query it: CLICKHOUSE_EMBEDDED_PATH={store} hatch run query 'SELECT ...')"
    )
    if failures:
        print(f"demo FAILED: {failures} mismatch(es)")
        return 1
    print("demo OK")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
