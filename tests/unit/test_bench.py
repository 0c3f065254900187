"""The pure pieces of the benchmark (jupiter_local.bench*, measure, localrun): sizing,
rates and ratios, latency percentiles, tables, the JSON record, the rows a stream must land,
/proc parsing and the process-tree sampler. No Kafka, no timed assertion."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import oracle
import pytest
from support import Produced

from jupiter_local import bench, bench_live, localrun, measure
from jupiter_local import bench_report as report
from jupiter_local.synthetic import GeneratorConfig, generate, iter_records

MACHINE = {"nproc": 2, "cpu_model": "Test CPU", "python": "3.11.9"}


def job_result(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "messages": 10_000,
        "rows_expected": 9_800,
        "rows_landed": 9_800,
        "empty_run_seconds": 8.0,
        "full_run_seconds": 12.0,
        "first_block_seconds": 6.0,
        "first_block_rows": 980,
        "last_row_seconds": 10.5,
        "empty_cpu_seconds": 20.0,
        "cpu_seconds": 30.0,
        "peak_rss_mb": 1234.56,
    }
    values.update(overrides)
    result: dict[str, Any] = report.throughput_result(**values)
    return result


def engine_run(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "messages": 10_000,
        "rows_expected": 9_800,
        "rows_landed": 9_800,
        "seconds": 4.0,
        "first_block_seconds": 2.0,
        "first_block_rows": 4_900,
        "cpu_seconds": 3.0,
        "cpu_seconds_at_first_block": 1.0,
        "peak_rss_mb": 400.0,
    }
    values.update(overrides)
    result: dict[str, Any] = report.engine_run_result(**values)
    return result


# --------------------------------------------------------------------------- rates and ratios


def test_throughput_nets_out_the_fixed_cost() -> None:
    assert report.throughput(10_000, 12.0, 8.0) == (2_500.0, 10_000 / 12.0)


@pytest.mark.parametrize("full", [8.0, 7.5])
def test_throughput_of_a_run_no_longer_than_the_empty_one_is_unknown(full: float) -> None:
    net, gross = report.throughput(100, full, 8.0)
    assert net is None
    assert gross == 100 / full


def test_throughput_of_a_zero_length_run_is_unknown() -> None:
    assert report.throughput(100, 0.0, 0.0) == (None, None)


def test_steady_rate_counts_only_what_came_after_the_first_block() -> None:
    # Half the rows in the first block at 2 s, all at 4 s: 5,000 messages in 2 s.
    assert report.steady_throughput(10_000, 9_800, 4_900, 4.0, 2.0) == (2_500.0, 2_500.0)


def test_steady_rates_when_everything_came_in_one_block_or_never() -> None:
    assert report.steady_throughput(10_000, 9_800, 9_800, 3.0, 3.0) == (None, 10_000 / 3.0)
    assert report.steady_throughput(10_000, 0, 0, None, None) == (None, None)


def test_job_result_figures() -> None:
    r = job_result()
    assert r["messages_per_second"] == 2_500.0
    assert r["messages_per_second_incl_startup"] == round(10_000 / 12.0, 1)
    assert r["messages_per_second_steady"] == 2_000.0  # 9,000 messages from 6 s to 10.5 s
    assert r["peak_rss_mb"] == 1234.6
    assert r["cpu_seconds_per_1k_messages"] == 3.0
    assert r["cpu_seconds_per_1k_messages_net"] == 1.0


def test_engine_run_result_figures() -> None:
    r = engine_run()
    assert r["messages_per_second"] == 2_500.0
    assert r["messages_per_second_incl_startup"] == 2_500.0
    assert r["cpu_seconds_per_1k_messages"] == 0.3
    assert r["cpu_seconds_per_1k_messages_net"] == 0.4  # 2 CPU s for the 5,000 later messages


def test_engine_summary_is_the_mean_of_its_runs() -> None:
    first, second = engine_run(), engine_run(seconds=6.0, peak_rss_mb=500.0, rows_landed=9_799)
    summary = report.engine_summary([first, second])
    assert second["messages_per_second"] == round(10_000 * 4_899 / 9_799 / 4, 1)
    assert summary["messages_per_second"] == round((2_500 + second["messages_per_second"]) / 2, 1)
    assert summary["messages_per_second_incl_startup"] == round((2_500 + 10_000 / 6) / 2, 1)
    assert summary["peak_rss_mb"] == 500.0
    assert summary["rows_landed"] == 9_799
    assert summary["runs"] == [first, second]
    assert summary["messages_per_second_steady"] == summary["messages_per_second"]
    assert (summary["ratio_net"], summary["ratio_incl"], summary["ratio_steady"]) == (1, 1, 1)


def test_ratios_are_net_over_net_incl_over_incl_and_steady_over_net() -> None:
    engine = report.engine_summary([engine_run()])
    assert report.ratios(job_result(), engine) == {
        "ratio_net": 1.0,
        "ratio_incl": round(10_000 / 12.0 / 2_500.0, 3),
        "ratio_steady": 0.8,
    }


def test_ratios_without_an_engine_or_a_rate_are_unknown() -> None:
    assert report.ratios(job_result(), None) == {
        "ratio_net": None,
        "ratio_incl": None,
        "ratio_steady": None,
    }
    no_net = job_result(full_run_seconds=8.0)
    engine = report.engine_summary([engine_run()])
    assert report.ratios(no_net, engine)["ratio_net"] is None


# --------------------------------------------------------------------------- latency


def test_percentile_is_the_nearest_rank() -> None:
    values = list(range(1, 101))
    assert report.percentile(values, 50) == 50
    assert report.percentile(values, 99) == 99
    assert report.percentile(values, 100) == 100
    assert report.percentile([7], 99) == 7
    assert report.percentile([1, 2, 3], 50) == 2
    assert report.percentile([], 50) is None


def test_latency_summary_sorts_and_counts() -> None:
    assert report.latency_summary([300, 100, 200, 5_000]) == {
        "rows": 4,
        "p50_ms": 200,
        "p99_ms": 5_000,
        "max_ms": 5_000,
    }
    assert report.latency_summary([]) == {"rows": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}


# --------------------------------------------------------------------------- tables and record


def test_format_table_is_an_aligned_markdown_table() -> None:
    table = report.format_table(("job", "msg/s"), [["a", "1"], ["longer", "12,345"]])
    assert table.splitlines() == [
        "| job    |  msg/s |",
        "|--------|-------:|",
        "| a      |      1 |",
        "| longer | 12,345 |",
    ]


def test_throughput_rows() -> None:
    engine = report.engine_summary([engine_run()])
    job = {**job_result(), **report.ratios(job_result(), engine)}
    rows = report.throughput_rows({"movements": job, "engine": engine})
    assert rows[0] == [
        "movements-job",
        "2,500",
        "833",
        "2,000",
        "1.00",
        "0.33",
        "0.80",
        "1,235 MB",
        "1.000 / 3.000",
        "9,800 of 9,800",
    ]
    assert rows[1][0] == "Kafka engine (chDB)"
    assert len(report.format_table(report.THROUGHPUT_HEADER, rows).splitlines()) == 4


def test_latency_and_checkpoint_rows() -> None:
    latency = {
        "produce_rate": 9_998.2,
        "rows_expected": 500,
        "rows_landed": 500,
        "peak_rss_mb": None,
        "cpu_seconds_per_1k_messages": 0.0512,
        **report.latency_summary([10, 20, 30]),
    }
    assert report.latency_rows({"base": latency}) == [
        ["base-job", "9,998", "3", "20", "30", "30", "n/a", "0.051", "500 of 500"]
    ]
    state = {
        "messages_per_session": 3.04,
        "sessions": 100_000,
        "messages": 304_000,
        "checkpoint": "chk-7",
        "checkpoint_bytes": 3 * 2**20,
        "bytes_per_session": 31.5,
        "savepoint_bytes": None,
    }
    assert report.checkpoint_rows({"events": {"3": state}}) == [
        ["events-job", "3.0", "100,000", "304,000", "chk-7", "3.0 MiB", "32", "n/a"]
    ]


def test_record_has_exactly_the_documented_keys_in_order() -> None:
    record = report.bench_record(
        "throughput",
        timestamp="2025-07-19T12:00:00+00:00",
        command="hatch run bench",
        stream={"messages": 10_000},
        results={"movements": job_result()},
        machine=MACHINE,
        git_commit="abc123",
    )
    assert tuple(record) == report.RECORD_KEYS
    assert record["benchmark"] == "throughput"
    assert record["machine"] == MACHINE
    assert record["machine"] is not MACHINE
    assert json.loads(json.dumps(record)) == record


def test_a_result_without_measurable_figures_holds_nulls() -> None:
    r = job_result(full_run_seconds=8.0, peak_rss_mb=None)
    assert r["messages_per_second"] is None
    assert r["peak_rss_mb"] is None
    assert json.loads(json.dumps(r)) == r


# --------------------------------------------------------------------------- streams


@pytest.mark.parametrize(("messages", "pings"), [(50_000, 50), (200_000, 50), (20_000, 10)])
def test_sessions_for_sizes_the_stream_near_the_requested_messages(
    messages: int, pings: int
) -> None:
    config = GeneratorConfig(
        sessions=report.sessions_for(messages, pings, 0.1), pings_per_session=pings, seed=1
    )
    produced = len(generate(config).records)
    assert abs(produced - messages) / messages < 0.03


def test_sessions_for_is_at_least_one() -> None:
    assert report.sessions_for(1, 50, 0.1) == 1


def test_expected_rows_agree_with_the_oracle_on_a_faulty_stream() -> None:
    stream = generate(
        GeneratorConfig(
            sessions=80, pings_per_session=6, seed=3, duplicate_ratio=0.05, reorder_ratio=0.05,
            malformed_count=12,
        )
    )  # fmt: skip
    produced = [Produced(r.key, r.value, 0, i) for i, r in enumerate(stream.records)]
    assert localrun.expected_rows(stream.records) == {
        "base": len(oracle.expected_headers(produced)),
        "events": len(oracle.expected_events(produced)),
        "movements": len(oracle.expected_movements(produced)),
    }


def test_never_ending_sessions_keep_everything_but_their_end() -> None:
    config = GeneratorConfig(sessions=50, pings_per_session=2, cancel_ratio=0.0, seed=4)
    every = list(iter_records(config))
    live = list(bench_live.never_ending(iter_records(config)))
    statuses = {json.loads(r.value)["status"] for r in live}
    assert statuses == {"started", "en_route"}
    assert len(every) - len(live) == 2 * 50  # arrived + completed
    assert {r.session_id for r in live} == {r.session_id for r in every}


@pytest.mark.parametrize(
    "argv",
    [
        ["--jobs", "movements,nope"],
        ["--jobs", "movements,movements"],
        ["--checkpoint-size", "--jobs", "movements"],
        ["--rate", "1000"],
        ["--rate", "1000", "--seconds", "5"],  # not longer than the warm-up
    ],
)
def test_bench_refuses_bad_arguments_before_touching_anything(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        bench.main(argv)


# --------------------------------------------------------------------------- /proc


def test_descendants_walks_the_whole_tree_below_the_root() -> None:
    parents = {10: 1, 11: 10, 12: 11, 13: 11, 20: 1, 21: 99}
    assert measure.descendants(parents, 10) == {11, 12, 13}
    assert measure.descendants(parents, 1) == {10, 11, 12, 13, 20}
    assert measure.descendants(parents, 42) == set()


def test_proc_parsing() -> None:
    stat = "1234 (java (a) b) S 77 1234 1234 0 -1 4194560 100 0 0 0 350 40 12 3 20 0 30"
    assert measure.parse_ppid(stat) == 77
    assert measure.parse_own_cpu_ticks(stat) == 390
    assert measure.parse_children_cpu_ticks(stat) == 15
    assert measure.parse_vmrss_kb("Name:\tjava\nVmPeak:\t  9 kB\nVmRSS:\t  51200 kB\n") == 51200
    assert measure.parse_vmrss_kb("Name:\tzombie\nState:\tZ (zombie)\n") == 0
    cpuinfo = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\n"
    assert measure.parse_cpu_model(cpuinfo) == "AMD EPYC 7B13"
    assert measure.parse_cpu_model("") == ""


def test_ppid_of_this_process_from_proc() -> None:
    stat = Path(f"/proc/{os.getpid()}/stat").read_text()
    assert measure.parse_ppid(stat) == os.getppid()


TREE_USAGE_SCRIPT = """
import json, subprocess, sys
from jupiter_local.measure import TreeUsage, _process_parents
before = subprocess.Popen(["sleep", "30"])
burn = "sum(range(3 * 10**7))"
with TreeUsage(interval=0.05) as usage:
    ignored = before.pid in usage.ignored
    # The shell starts a CPU-burning grandchild in the background and exits at once: the
    # grandchild is an orphan, re-parented to this process, and still counted and reaped.
    subprocess.run(["sh", "-c", f'{sys.executable} -c "{burn}" &'], check=True)
after = [p for p, parent in _process_parents().items() if parent == __import__("os").getpid()]
before.kill()
before.wait()
print(json.dumps({"ignored": ignored, "cpu": usage.cpu_seconds, "peak": usage.peak_mb,
                  "left": [p for p in after if p != before.pid]}))
"""


def test_tree_usage_counts_the_whole_tree_orphans_included_and_reaps_it() -> None:
    # In a process of its own: TreeUsage makes its process a child subreaper for good.
    done = subprocess.run(
        [sys.executable, "-c", TREE_USAGE_SCRIPT],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(done.stdout)
    assert result["ignored"] is True
    assert result["cpu"] > 0
    assert result["peak"] is not None and result["peak"] > 0
    assert result["left"] == []


def test_newest_block_reads_part_folder_names() -> None:
    names = ["202507_1_11_3", "202507_12_12_1", "all_7_9_1_12", "detached", "tmp_insert_1_13_13_0"]
    assert measure.newest_block(names) == 12
    assert measure.newest_block(["detached", "format_version.txt"]) == -1


def test_landing_watch_sees_the_first_and_the_last_insert(tmp_path: Path) -> None:
    def part(name: str, rows: int) -> None:
        (tmp_path / name).mkdir()
        (tmp_path / name / "count.txt").write_text(str(rows))

    watch = measure.LandingWatch(tmp_path / "missing")
    watch.poll()
    assert watch.first_at is None
    watch = measure.LandingWatch(tmp_path)
    watch.poll()
    assert (watch.first_at, watch.last_at) == (None, None)
    part("202507_1_1_1", 100)
    part("202507_2_2_1", 50)
    watch.poll()
    first = watch.first_at
    assert first is not None and watch.last_at == first and watch.first_rows == 150
    part("202507_1_2_2", 150)  # a merge: no new block, no new row
    watch.poll()
    assert watch.last_at == first
    part("202507_3_3_1", 10)
    watch.poll()
    assert watch.last_at is not None and watch.last_at > first
    assert watch.first_at == first and watch.first_rows == 150


def test_machine_info_describes_this_machine() -> None:
    machine = measure.machine_info()
    assert machine["nproc"] == len(os.sched_getaffinity(0))
    assert machine["python"] == ".".join(map(str, sys.version_info[:3]))
    json.dumps(machine)
