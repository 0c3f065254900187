"""The pure pieces of the movements benchmark (infra/local/bench.py): sizing, throughput
arithmetic, the JSON record, /proc parsing and the process-tree memory sampler. No Kafka."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support import load_local_tool

from jupiter_common.synthetic import GeneratorConfig, generate

bench = load_local_tool("bench")

MACHINE = {"nproc": 2, "cpu_model": "Test CPU", "python": "3.11.9"}


def record(**overrides: object) -> dict[str, object]:
    values: dict[str, object] = {
        "timestamp": "2025-07-19T12:00:00+00:00",
        "messages": 10_000,
        "gps_pings": 9_800,
        "rows_landed": 9_800,
        "produce_seconds": 0.5,
        "empty_run_seconds": 8.0,
        "full_run_seconds": 12.0,
        "peak_rss_mb": 1234.56,
        "parallelism": 1,
        "batch_size": 20_000,
        "machine": MACHINE,
        "git_commit": "abc123",
    }
    values.update(overrides)
    result: dict[str, object] = bench.bench_record(**values)
    return result


def test_throughput_nets_out_the_fixed_cost() -> None:
    assert bench.throughput(10_000, 12.0, 8.0) == (2_500.0, 10_000 / 12.0)


@pytest.mark.parametrize("full", [8.0, 7.5])
def test_throughput_of_a_run_no_longer_than_the_empty_one_is_unknown(full: float) -> None:
    net, gross = bench.throughput(100, full, 8.0)
    assert net is None
    assert gross == 100 / full


def test_throughput_of_a_zero_length_run_is_unknown() -> None:
    assert bench.throughput(100, 0.0, 0.0) == (None, None)


def test_record_has_exactly_the_documented_keys_in_order() -> None:
    assert tuple(record()) == bench.JSON_KEYS
    assert record()["benchmark"] == "movements_throughput"


def test_record_figures() -> None:
    r = record()
    assert r["messages_per_second"] == 2_500.0
    assert r["messages_per_second_incl_startup"] == round(10_000 / 12.0, 1)
    assert r["peak_rss_mb"] == 1234.6
    assert r["machine"] == MACHINE
    assert r["machine"] is not MACHINE


def test_record_without_measurable_figures_holds_nulls() -> None:
    r = record(full_run_seconds=8.0, peak_rss_mb=None)
    assert r["messages_per_second"] is None
    assert r["peak_rss_mb"] is None
    assert json.loads(json.dumps(r)) == r


@pytest.mark.parametrize(("messages", "pings"), [(50_000, 50), (200_000, 50), (20_000, 10)])
def test_sessions_for_sizes_the_stream_near_the_requested_messages(
    messages: int, pings: int
) -> None:
    config = GeneratorConfig(
        sessions=bench.sessions_for(messages, pings, 0.1), pings_per_session=pings, seed=1
    )
    produced = len(generate(config).records)
    assert abs(produced - messages) / messages < 0.03


def test_sessions_for_is_at_least_one() -> None:
    assert bench.sessions_for(1, 50, 0.1) == 1


def test_descendants_walks_the_whole_tree_below_the_root() -> None:
    parents = {10: 1, 11: 10, 12: 11, 13: 11, 20: 1, 21: 99}
    assert bench.descendants(parents, 10) == {11, 12, 13}
    assert bench.descendants(parents, 1) == {10, 11, 12, 13, 20}
    assert bench.descendants(parents, 42) == set()


def test_proc_parsing() -> None:
    assert bench.parse_ppid("1234 (java (a) b) S 77 1234 1234 0 -1") == 77
    assert bench.parse_vmrss_kb("Name:\tjava\nVmPeak:\t  9 kB\nVmRSS:\t  51200 kB\n") == 51200
    assert bench.parse_vmrss_kb("Name:\tzombie\nState:\tZ (zombie)\n") == 0
    cpuinfo = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\n"
    assert bench.parse_cpu_model(cpuinfo) == "AMD EPYC 7B13"
    assert bench.parse_cpu_model("") == ""


def test_ppid_of_this_process_from_proc() -> None:
    stat = Path(f"/proc/{os.getpid()}/stat").read_text()
    assert bench.parse_ppid(stat) == os.getppid()


def test_tree_rss_counts_only_processes_started_after_it() -> None:
    before = subprocess.Popen(["sleep", "30"])
    try:
        rss = bench.TreeRss()
        assert before.pid in rss.ignored
        assert rss.sample() == 0 and rss.peak_mb is None
        after = subprocess.Popen(["sleep", "30"])
        try:
            assert rss.sample() > 0
            peak: float | None = rss.peak_mb
            assert peak is not None and peak > 0
        finally:
            after.kill()
            after.wait()
    finally:
        before.kill()
        before.wait()


def test_machine_info_describes_this_machine() -> None:
    machine = bench.machine_info()
    assert machine["nproc"] == len(os.sched_getaffinity(0))
    assert machine["python"] == ".".join(map(str, sys.version_info[:3]))
    json.dumps(machine)
