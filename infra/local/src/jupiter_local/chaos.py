"""The chaos suite in one command: ``pytest -m chaos`` with a profile, then a table per scenario.

The scenarios are the tests under ``tests/chaos`` (real broker, PyFlink, ClickHouse): repeated
kills of each job, a quiet resume, a ClickHouse outage, fuzzed input, poison pills, secrets in
logs. ``CHAOS_PROFILE`` tells them how hard to push (``jupiter_local/chaos_profile.py``: ``short``, as
CI runs them, or ``full`` with ``--full``); each appends its figures to ``CHAOS_REPORT``. This
prints one Markdown table per scenario (a column per job or case), one of the tests, then a
line ``CHAOS_JSON {...}`` (also written to ``--json``), and exits 1 on any lost or duplicate
row, any crash or mishandled record on input, any secret found, a recovery slower than its
target, or a failed test. Arguments it does not know go to pytest (``-k events``, ``-x``).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from jupiter_local.bench_report import format_table
from jupiter_local.chaos_profile import PROFILE_VARIABLE, PROFILES, REPORT_VARIABLE, Profile
from jupiter_local.measure import git_commit, machine_info
from jupiter_local.paths import REPO

CHAOS_TESTS: Final = "tests/chaos"
SCENARIOS: Final = {
    "kills": ["tests/chaos/test_crashes.py::test_repeated_kills_leave_no_gap_and_no_duplicate"],
    "quiet-resume": [
        "tests/chaos/test_crashes.py::"
        "test_a_killed_job_resumed_on_a_quiet_stream_lands_everything_within_the_interval"
    ],
    "outage": ["tests/chaos/test_crashes.py::test_clickhouse_outage_restart_loop_and_stop"],
    "fuzz": ["tests/chaos/test_fuzz.py"],
    "poison": ["tests/chaos/test_poison_pill.py"],
    "secrets": ["tests/chaos/test_no_secrets.py"],
}
MUST_BE_ZERO: Final = (
    "lost",
    "duplicates",
    "unexpected",
    "restarts",
    "task_failures",
    "not_dead_lettered",
    "dead_letter_duplicates",
    "wrongly_dead_lettered",
    "wrong_reason",
    "wrong_payload",
    "oversized_dead_letters",
    "secrets_found",
)
LABELS: Final = {
    "records": "records produced",
    "kills_in_start_up": "kills in start-up",
    "kills_processing": "kills while processing",
    "kills_mid_checkpoint": "kills mid-checkpoint",
    "resumes_ok": "resumes OK",
    "rows_expected": "rows expected",
    "rows_landed": "rows landed (plain count)",
    "lost": "rows lost",
    "duplicates": "rows twice",
    "unexpected": "rows unexpected",
    "fuzzed_refused": "fuzzed, refused by the parser",
    "fuzzed_5mib": "fuzzed of 5 MiB",
    "refused": "records refused",
    "dead_lettered": "refused and dead-lettered",
    "not_dead_lettered": "refused, not dead-lettered",
    "dead_letter_duplicates": "dead-lettered twice",
    "wrongly_dead_lettered": "valid, dead-lettered",
    "wrong_reason": "wrong reason or field",
    "wrong_payload": "wrong payload",
    "task_failures_in_outage": "task failures in the outage",
    "recovery_seconds": "caught up after return (s)",
    "recovery_target_seconds": "target (s)",
}
NOT_FIGURES: Final = ("scenario", "job", "case", "test", "profile")


def describe(profile: Profile) -> str:
    kills = "at random moments" if profile.random_kills else "after inserts and a checkpoint"
    return (
        f"{profile.name} profile: {profile.kills_per_job} kills per job {kills}, a"
        f" {profile.outage_seconds:.0f} s ClickHouse outage, {profile.fuzz_records:,} fuzzed"
        f" records ({profile.fuzz_huge} of 5 MiB)"
    )


def read_report(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def read_junit(path: Path) -> list[dict[str, Any]]:
    """Each test pytest ran: name, outcome (passed, failed, skipped) and seconds."""
    if not path.exists():
        return []
    tests = []
    # pytest's own report of the run this command started: not untrusted input
    for case in ET.parse(path).iter("testcase"):  # noqa: S314
        outcome = "passed"
        if case.find("failure") is not None or case.find("error") is not None:
            outcome = "failed"
        elif case.find("skipped") is not None:
            outcome = "skipped"
        name = f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name', '')}"
        tests.append({"test": name, "outcome": outcome, "seconds": float(case.get("time", 0))})
    return tests


def column(record: Mapping[str, Any]) -> str:
    label = f"{record['job']}-job"
    return f"{label} ({record['case']})" if record.get("case") else label


def cell(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.1f}"
    return str(value)


def scenario_table(records: Sequence[Mapping[str, Any]]) -> str:
    """A Markdown table: a row per figure, a column per record (job, or job and case)."""
    figures: list[str] = []
    for record in records:
        figures += [key for key in record if key not in NOT_FIGURES and key not in figures]
    rows = [
        [LABELS.get(key, key.replace("_", " ")), *(cell(r.get(key, "")) for r in records)]
        for key in figures
    ]
    return format_table(["figure", *(column(r) for r in records)], rows)


def problems(
    records: Sequence[Mapping[str, Any]], tests: Sequence[Mapping[str, Any]], pytest_code: int
) -> list[str]:
    """Why the run fails, one line each; empty when it passes."""
    found = []
    for record in records:
        where = f"{record['scenario']}, {column(record)}"
        found += [f"{where}: {key} = {record[key]}" for key in MUST_BE_ZERO if record.get(key)]
        if record.get("resumes_ok", 0) < record.get("resumes", 0):
            found.append(f"{where}: {record['resumes_ok']} of {record['resumes']} resumes OK")
        recovery, target = record.get("recovery_seconds"), record.get("recovery_target_seconds")
        if recovery is not None and target is not None and recovery > target:
            found.append(f"{where}: caught up {recovery} s after the return, target {target} s")
    found += [f"test failed: {t['test']}" for t in tests if t["outcome"] == "failed"]
    if not tests:
        found.append("no test ran")
    if pytest_code != 0 and not any(t["outcome"] == "failed" for t in tests):
        found.append(f"pytest exited {pytest_code}")
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m jupiter_local.chaos", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--full", action="store_true", help="the full profile (default: short)")
    parser.add_argument(
        "--scenario", action="append", choices=list(SCENARIOS), help="repeatable; default: all"
    )
    parser.add_argument("--json", type=Path, default=None, metavar="PATH")
    parser.add_argument("--work-dir", type=Path, default=REPO / ".jupiter" / "chaos")
    args, pytest_args = parser.parse_known_args(argv)
    profile = PROFILES["full" if args.full else "short"]
    work: Path = args.work_dir / profile.name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    report_path, junit = work / "report.jsonl", work / "junit.xml"
    selected = [node for name in args.scenario or [] for node in SCENARIOS[name]] or [CHAOS_TESTS]
    command = [
        *(sys.executable, "-m", "pytest", "-m", "chaos", "-p", "no:cacheprovider"),
        *(f"--junitxml={junit}", f"--basetemp={work / 'tmp'}"),
        *(["--timeout=3600"] if profile.name == "full" else []),  # 20 kills take a while
        *selected,
        *pytest_args,
    ]
    env = {**os.environ, PROFILE_VARIABLE: profile.name, REPORT_VARIABLE: str(report_path)}
    timestamp = datetime.now(UTC).isoformat(timespec="seconds")
    machine = machine_info()
    print(f"chaos, {describe(profile)}\n$ {shlex.join(command)}", flush=True)
    started = time.monotonic()
    code = subprocess.run(command, cwd=REPO, env=env, check=False).returncode
    seconds = round(time.monotonic() - started)

    records, tests = read_report(report_path), read_junit(junit)
    shown = shlex.join(["hatch", "run", "chaos", *(sys.argv[1:] if argv is None else argv)])
    print(f"\n{shown}\n{describe(profile)}; {seconds:,} s")
    for name in SCENARIOS:
        of_scenario = [r for r in records if r["scenario"] == name]
        if of_scenario:
            print(f"\n### {name}\n\n{scenario_table(of_scenario)}")
    rows = [[t["test"], t["outcome"], f"{t['seconds']:,.0f}"] for t in tests]
    print(f"\n### tests\n\n{format_table(['test', 'outcome', 'seconds'], rows)}\n")
    failures = problems(records, tests, code)
    record = {
        "chaos": profile.name,
        "ok": not failures,
        "failures": failures,
        "timestamp": timestamp,
        "command": shown,
        "profile": asdict(profile),
        "seconds": seconds,
        "scenarios": {
            name: [r for r in records if r["scenario"] == name]
            for name in SCENARIOS
            if any(r["scenario"] == name for r in records)
        },
        "tests": tests,
        "pytest_exit_code": code,
        "machine": {**machine, "load_average_after": [round(x, 2) for x in os.getloadavg()]},
        "git_commit": git_commit(),
    }
    line = json.dumps(record)
    json_path: Path = args.json or work / "chaos.json"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(line + "\n")
    for failure in failures:
        print(f"FAILED: {failure}")
    print(f"{'chaos FAILED' if failures else 'chaos passed'}; logs and report in {work}")
    print(f"CHAOS_JSON {line}", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
