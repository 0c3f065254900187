"""Benchmark: movements-job throughput (messages/s) for a bounded run of a given size.

Runs on the real pieces: the Kafka broker at ``KAFKA_BOOTSTRAP`` (else the local one), real
PyFlink and the embedded ClickHouse engine (chDB). Produces a seeded synthetic stream (no
faults) to a fresh 4-partition topic, then runs movements-job bounded twice, each with its own
consumer group and a fresh store: first on an *empty* 4-partition topic, which measures the
fixed cost (JVM and Flink start-up, teardown), then on the full topic. Reports

* ``messages_per_second`` = messages / (full run - empty run): the steady processing rate;
* ``messages_per_second_incl_startup`` = messages / full run: what a user waits for;

plus the producer rate, the peak resident memory of the job's process tree (JVM and Python
workers, sampled once a second) and the machine. The landed row count is checked against the
generated stream first: on a mismatch it exits 1 and reports no figures. It asserts nothing
about time; the last line printed is the JSON record, prefixed ``BENCH_JSON``, also written to
``--json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Final

from confluent_kafka.admin import AdminClient
from localrun import REPO, count_records, ensure_broker, ensure_topics, job_env, query, run_bounded

from jupiter_common.producer import produce
from jupiter_common.settings import Settings
from jupiter_common.synthetic import GeneratorConfig, generate
from jupiter_common.tables import SESSION_MOVEMENTS

BENCHMARK: Final = "movements_throughput"
PARTITIONS: Final = 4
DEFAULT_BATCH_SIZE: Final = int(Settings.model_fields["sink_batch_size"].default)
PROGRESS_EVERY_S: Final = 10.0
JSON_KEYS: Final = (
    "benchmark",
    "timestamp",
    "messages",
    "gps_pings",
    "rows_landed",
    "produce_seconds",
    "empty_run_seconds",
    "full_run_seconds",
    "messages_per_second",
    "messages_per_second_incl_startup",
    "peak_rss_mb",
    "parallelism",
    "batch_size",
    "machine",
    "git_commit",
)


# --------------------------------------------------------------------------- pure pieces


def sessions_for(messages: int, pings: int, cancel_ratio: float) -> int:
    """Sessions whose generated stream holds about ``messages`` messages.

    A completed session emits ``pings + 3`` messages on average (started, en_route pings,
    arrived, completed); a cancelled one ``started``, on average ``((pings - 1) // 2) / 2``
    en_route pings and ``cancelled``.
    """
    cancelled = max(0, (pings - 1) // 2) / 2 + 2
    per_session = (1 - cancel_ratio) * (pings + 3) + cancel_ratio * cancelled
    return max(1, round(messages / per_session))


def throughput(
    messages: int, full_run_seconds: float, empty_run_seconds: float
) -> tuple[float | None, float | None]:
    """(messages/s net of the fixed cost, messages/s including it). The net rate is ``None``
    when the full run took no longer than the empty one (a run too small to measure)."""
    net = full_run_seconds - empty_run_seconds
    return (
        messages / net if net > 0 else None,
        messages / full_run_seconds if full_run_seconds > 0 else None,
    )


def bench_record(
    *,
    timestamp: str,
    messages: int,
    gps_pings: int,
    rows_landed: int,
    produce_seconds: float,
    empty_run_seconds: float,
    full_run_seconds: float,
    peak_rss_mb: float | None,
    parallelism: int,
    batch_size: int,
    machine: Mapping[str, object],
    git_commit: str,
) -> dict[str, Any]:
    """The JSON record of one benchmark run (keys in :data:`JSON_KEYS` order)."""
    net, gross = throughput(messages, full_run_seconds, empty_run_seconds)
    return {
        "benchmark": BENCHMARK,
        "timestamp": timestamp,
        "messages": messages,
        "gps_pings": gps_pings,
        "rows_landed": rows_landed,
        "produce_seconds": round(produce_seconds, 3),
        "empty_run_seconds": round(empty_run_seconds, 3),
        "full_run_seconds": round(full_run_seconds, 3),
        "messages_per_second": None if net is None else round(net, 1),
        "messages_per_second_incl_startup": None if gross is None else round(gross, 1),
        "peak_rss_mb": None if peak_rss_mb is None else round(peak_rss_mb, 1),
        "parallelism": parallelism,
        "batch_size": batch_size,
        "machine": dict(machine),
        "git_commit": git_commit,
    }


def descendants(parents: Mapping[int, int], root: int) -> set[int]:
    """Every process below ``root`` in a ``{pid: parent pid}`` map (``root`` excluded)."""
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    found: set[int] = set()
    todo = list(children.get(root, ()))
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, ()))
    return found


def parse_ppid(stat: str) -> int:
    """Parent pid from the text of ``/proc/<pid>/stat`` (the command may hold spaces and
    parentheses, so fields are counted after its last ``)``)."""
    return int(stat[stat.rindex(")") + 2 :].split()[1])


def parse_vmrss_kb(status: str) -> int:
    """``VmRSS`` in kB from the text of ``/proc/<pid>/status`` (0 if absent: a zombie)."""
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def parse_cpu_model(cpuinfo: str) -> str:
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Processor", "cpu model"):
            return value.strip()
    return ""


# --------------------------------------------------------------------------- the machine


def _read(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return ""


def machine_info() -> dict[str, object]:
    meminfo = _read("/proc/meminfo")
    mem_kb = next(
        (int(line.split()[1]) for line in meminfo.splitlines() if line.startswith("MemTotal:")), 0
    )
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count() or 0,
        "cpu_model": parse_cpu_model(_read("/proc/cpuinfo")),
        "mem_total_mb": mem_kb // 1024,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "apache_flink": _version("apache-flink"),
        "chdb": _version("chdb"),
    }


def git_commit() -> str:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=False
        )
    except OSError:
        return ""
    return result.stdout.strip() if result.returncode == 0 else ""


# --------------------------------------------------------------------------- memory sampling


def _process_parents() -> dict[int, int]:
    parents: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            stat = _read(f"/proc/{entry.name}/stat")
            if stat:
                parents[int(entry.name)] = parse_ppid(stat)
    return parents


class TreeRss:
    """Peak of the summed ``VmRSS`` of the processes started below ``root`` after creation
    (processes already there, such as a broker this process launched, are left out). Shared
    pages count once per process, so the sum is an upper bound on what the tree occupies."""

    def __init__(self, root: int | None = None) -> None:
        self.root = os.getpid() if root is None else root
        self.ignored = descendants(_process_parents(), self.root)
        self.peak_kb = 0
        self.last_kb = 0

    def sample(self) -> int:
        """Sum the tree's RSS now (kB), update the peak and return the sum."""
        pids = descendants(_process_parents(), self.root) - self.ignored
        self.last_kb = sum(parse_vmrss_kb(_read(f"/proc/{pid}/status")) for pid in pids)
        self.peak_kb = max(self.peak_kb, self.last_kb)
        return self.last_kb

    @property
    def peak_mb(self) -> float | None:
        return self.peak_kb / 1024 if self.peak_kb else None


# --------------------------------------------------------------------------- the run


def _progress(label: str, rss: TreeRss) -> Callable[[float], None]:
    last_print = [0.0]

    def show(elapsed: float) -> None:
        rss.sample()
        if elapsed - last_print[0] >= PROGRESS_EVERY_S:
            last_print[0] = elapsed
            print(
                f"  {label}: {elapsed:5.0f} s, job process tree RSS {rss.last_kb / 1024:,.0f} MB",
                flush=True,
            )

    return show


def _run(
    label: str, bootstrap: str, topic: str, work: Path, extra: Mapping[str, str]
) -> tuple[float, TreeRss, Path]:
    """Run movements-job bounded on ``topic`` with a fresh store; (seconds, rss, store)."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    store = work / "clickhouse"
    env = job_env(bootstrap, topic, store, work, **extra)
    rss = TreeRss()
    print(f"running movements-job bounded on {label} ...", flush=True)
    run = run_bounded("movements", env, work / "job.log", _progress(label, rss))
    return run.seconds, rss, store


def _delete_topics(bootstrap: str, topics: Iterable[str]) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 4})
    for future in admin.delete_topics(list(topics), operation_timeout=30).values():
        try:
            future.result(timeout=30)
        except Exception as exc:  # cleanup only; the figures are already out
            print(f"note: could not delete a benchmark topic: {exc}")


def _mb(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f} MB"


def _rate(value: float | None) -> str:
    return "n/a (run too small)" if value is None else f"{value:,.0f} messages/s"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000, help="about how many messages")
    parser.add_argument("--pings", type=int, default=50, help="mean en_route pings per session")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--parallelism", type=int, default=1, help="FLINK_PARALLELISM")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help=f"SINK_BATCH_SIZE (default: the environment's, else {DEFAULT_BATCH_SIZE})",
    )
    parser.add_argument("--json", type=Path, default=None, metavar="PATH")
    parser.add_argument("--work-dir", type=Path, default=REPO / ".jupiter" / "bench" / "work")
    args = parser.parse_args(argv)
    if args.messages < 1 or args.pings < 0 or args.parallelism < 1:
        parser.error("--messages and --parallelism must be >= 1, --pings >= 0")
    batch_size = args.batch_size or int(os.environ.get("SINK_BATCH_SIZE") or DEFAULT_BATCH_SIZE)

    run_id = time.strftime("%Y%m%d-%H%M%S")
    json_path: Path = args.json or REPO / ".jupiter" / "bench" / f"movements-{run_id}.json"
    timestamp = datetime.now(UTC).isoformat(timespec="seconds")
    machine = machine_info()
    print(
        f"machine: {machine['nproc']} CPUs ({machine['cpu_model'] or 'unknown CPU'}),"
        f" {machine['mem_total_mb']:,} MB, Python {machine['python']},"
        f" apache-flink {machine['apache_flink']}, chdb {machine['chdb']}"
    )

    bootstrap = ensure_broker(os.environ.get("KAFKA_BOOTSTRAP"))
    topic = f"bench-sessions-{run_id}"
    empty_topic = f"bench-empty-{run_id}"
    dead_letters = f"bench-dead-letter-{run_id}"
    ensure_topics(bootstrap, {topic: PARTITIONS, empty_topic: PARTITIONS, dead_letters: 1})

    defaults = GeneratorConfig()
    config = GeneratorConfig(
        sessions=sessions_for(args.messages, args.pings, defaults.cancel_ratio),
        pings_per_session=args.pings,
        seed=args.seed,
    )
    started = time.monotonic()
    stream = generate(config)
    generate_seconds = time.monotonic() - started
    messages, gps_pings = len(stream.records), stream.expected.gps_pings
    print(
        f"generated {messages:,} messages ({config.sessions:,} sessions, {gps_pings:,} GPS"
        f" pings, seed {args.seed}) in {generate_seconds:.1f} s"
    )
    started = time.monotonic()
    produced = produce(stream, bootstrap, topic)
    produce_seconds = time.monotonic() - started
    print(
        f"produced {produced:,} messages to {topic} ({PARTITIONS} partitions) on {bootstrap}"
        f" in {produce_seconds:.1f} s: {produced / produce_seconds:,.0f} messages/s"
    )
    if produced != messages:
        print(f"bench FAILED: {produced:,} of {messages:,} messages delivered")
        return 1

    common = {
        "DEAD_LETTER_TOPIC": dead_letters,
        "FLINK_PARALLELISM": str(args.parallelism),
        "SINK_BATCH_SIZE": str(batch_size),
    }
    work: Path = args.work_dir
    try:
        empty_seconds, empty_rss, _ = _run(
            "the empty topic",
            bootstrap,
            empty_topic,
            work / "empty",
            {**common, "KAFKA_CONSUMER_GROUP": f"bench-empty-{run_id}"},
        )
        print(f"  empty run (fixed cost): {empty_seconds:.1f} s, peak RSS {_mb(empty_rss.peak_mb)}")
        full_seconds, full_rss, store = _run(
            f"{topic} ({messages:,} messages)",
            bootstrap,
            topic,
            work / "full",
            {**common, "KAFKA_CONSUMER_GROUP": f"bench-full-{run_id}"},
        )
    except RuntimeError as exc:
        print(f"bench FAILED: {exc}")
        return 1
    print(f"  full run: {full_seconds:.1f} s, peak RSS {_mb(full_rss.peak_mb)}")

    # The table name is a constant of the project, never input.
    count_sql = f"SELECT count() FROM {SESSION_MOVEMENTS.name} FINAL"  # noqa: S608
    rows_landed = int(query(store, count_sql)[0][0])
    dead = count_records(bootstrap, dead_letters)
    ok = rows_landed == gps_pings and dead == 0
    print(
        f"{SESSION_MOVEMENTS.name}: {rows_landed:,} rows landed, {gps_pings:,} expected;"
        f" {dead} dead letters, 0 expected -> {'OK' if ok else 'MISMATCH'}"
    )
    if not ok:
        print(
            f"bench FAILED: wrong result, no figures reported (topic {topic}, store {store},"
            f" job log {work / 'full' / 'job.log'})"
        )
        return 1

    record = bench_record(
        timestamp=timestamp,
        messages=messages,
        gps_pings=gps_pings,
        rows_landed=rows_landed,
        produce_seconds=produce_seconds,
        empty_run_seconds=empty_seconds,
        full_run_seconds=full_seconds,
        peak_rss_mb=full_rss.peak_mb,
        parallelism=args.parallelism,
        batch_size=batch_size,
        machine=machine,
        git_commit=git_commit(),
    )
    print(
        f"movements-job throughput: {_rate(record['messages_per_second'])} net of the"
        f" {empty_seconds:.1f} s fixed cost; {_rate(record['messages_per_second_incl_startup'])}"
        f" including it ({messages:,} messages in {full_seconds:.1f} s; parallelism"
        f" {args.parallelism}, batch size {batch_size:,}); peak RSS {_mb(full_rss.peak_mb)}"
    )
    _delete_topics(bootstrap, (topic, empty_topic, dead_letters))
    json_path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record)
    json_path.write_text(line + "\n")
    print(f"written to {json_path}")
    print(f"BENCH_JSON {line}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
