"""The pure pieces of ``hatch run chaos`` (jupiter_local/chaos.py) and of the chaos suite's
profile and report (jupiter_local/chaos_profile.py): tables, the verdict, the report file, the JUnit
reading. No Kafka, no jobs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from jupiter_local import chaos, chaos_profile
from jupiter_local.paths import REPO


def kills(**overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "scenario": "kills",
        "job": "events",
        "test": "tests/chaos/test_crashes.py::test_repeated_kills[events]",
        "profile": "short",
        "kills": 2,
        "resumes": 2,
        "resumes_ok": 2,
        "rows_expected": 3899,
        "rows_landed": 3899,
        "lost": 0,
        "duplicates": 0,
        "unexpected": 0,
    }
    return record | overrides


PASSED = [{"test": "test_crashes::test_repeated_kills[events]", "outcome": "passed", "seconds": 9}]


def test_rows_figures_count_lost_duplicated_and_unexpected_rows() -> None:
    expected = [(1,), (2,), (3,), (3,)]
    landed = [(1,), (1,), (3,), (4,)]
    assert chaos_profile.rows_figures(expected, landed) == {
        "rows_expected": 4,
        "rows_landed": 4,
        "lost": 2,  # (2,) and one (3,)
        "duplicates": 1,  # a second (1,)
        "unexpected": 1,  # (4,)
    }
    assert chaos_profile.rows_figures(expected, list(reversed(expected)))["lost"] == 0


def test_the_profile_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHAOS_PROFILE", raising=False)
    assert chaos_profile.profile().name == "short"
    monkeypatch.setenv("CHAOS_PROFILE", "full")
    full = chaos_profile.profile()
    assert (full.kills_per_job, full.outage_seconds, full.fuzz_records) == (20, 60, 10_000)
    assert full.random_kills and full.fuzz_huge > 0
    monkeypatch.setenv("CHAOS_PROFILE", "long")
    with pytest.raises(ValueError, match="CHAOS_PROFILE='long'"):
        chaos_profile.profile()


def test_report_appends_a_line_per_scenario_only_when_asked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("CHAOS_REPORT", raising=False)
    chaos_profile.report("kills", "base", lost=0)  # no file: nothing happens
    path = tmp_path / "report.jsonl"
    monkeypatch.setenv("CHAOS_REPORT", str(path))
    monkeypatch.setenv("PYTEST_CURRENT_TEST", "tests/chaos/test_x.py::test_y (call)")
    chaos_profile.report("kills", "base", lost=0)
    chaos_profile.report("fuzz", "events", restarts=1)
    records = chaos.read_report(path)
    assert [(r["scenario"], r["job"], r["test"]) for r in records] == [
        ("kills", "base", "tests/chaos/test_x.py::test_y"),
        ("fuzz", "events", "tests/chaos/test_x.py::test_y"),
    ]
    assert records[1]["restarts"] == 1 and records[1]["profile"] == "short"


def test_a_clean_run_passes_and_every_kind_of_fault_fails_it() -> None:
    assert chaos.problems([kills()], PASSED, 0) == []
    assert chaos.problems([kills(duplicates=3)], PASSED, 0) == ["kills, events-job: duplicates = 3"]
    assert chaos.problems([kills(lost=1, resumes_ok=1)], PASSED, 0) == [
        "kills, events-job: lost = 1",
        "kills, events-job: 1 of 2 resumes OK",
    ]
    fuzz = {"scenario": "fuzz", "job": "base", "restarts": 1, "not_dead_lettered": 2}
    assert chaos.problems([fuzz], PASSED, 0) == [
        "fuzz, base-job: restarts = 1",
        "fuzz, base-job: not_dead_lettered = 2",
    ]
    secrets = {"scenario": "secrets", "job": "movements", "case": "files", "secrets_found": 1}
    assert chaos.problems([secrets], PASSED, 0) == [
        "secrets, movements-job (files): secrets_found = 1"
    ]
    outage = {"scenario": "outage", "job": "movements", "recovery_target_seconds": 30}
    fast, slow = outage | {"recovery_seconds": 29.0}, outage | {"recovery_seconds": 31.5}
    assert chaos.problems([fast], PASSED, 0) == []
    assert chaos.problems([slow], PASSED, 0) == [
        "outage, movements-job: caught up 31.5 s after the return, target 30 s"
    ]


def test_a_failed_test_or_no_test_fails_the_run() -> None:
    failed = [{"test": "test_fuzz::test_fuzz", "outcome": "failed", "seconds": 3}]
    assert chaos.problems([], failed, 1) == ["test failed: test_fuzz::test_fuzz"]
    assert chaos.problems([], [], 5) == ["no test ran", "pytest exited 5"]
    assert chaos.problems([kills()], PASSED, 2) == ["pytest exited 2"]


def test_a_scenario_table_has_a_row_per_figure_and_a_column_per_job() -> None:
    table = chaos.scenario_table([kills(), kills(job="base", rows_expected=3000, seconds=1.25)])
    lines = table.splitlines()
    assert lines[0].split("|")[1:-1] == [
        " figure                    ",
        " events-job ",
        " base-job ",
    ]
    assert "| rows expected             |      3,899 |    3,000 |" in lines
    assert "| seconds                   |            |      1.2 |" in lines
    assert not any(line.startswith(("| scenario", "| test", "| profile")) for line in lines)


def test_junit_outcomes_are_read(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    path.write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="tests.chaos.test_fuzz" name="test_a" time="12.5"/>'
        '<testcase classname="tests.chaos.test_fuzz" name="test_b" time="1">'
        '<failure message="boom"/></testcase>'
        '<testcase classname="tests.chaos.test_fuzz" name="test_c" time="0">'
        '<skipped message="no"/></testcase>'
        "</testsuite></testsuites>"
    )
    assert chaos.read_junit(path) == [
        {"test": "test_fuzz::test_a", "outcome": "passed", "seconds": 12.5},
        {"test": "test_fuzz::test_b", "outcome": "failed", "seconds": 1.0},
        {"test": "test_fuzz::test_c", "outcome": "skipped", "seconds": 0.0},
    ]
    assert chaos.read_junit(tmp_path / "missing.xml") == []


def test_every_scenario_names_tests_that_exist() -> None:
    repo = REPO
    for name, nodes in chaos.SCENARIOS.items():
        for node in nodes:
            path, _, function = node.partition("::")
            source = (repo / path).read_text()
            assert not function or f"def {function}(" in source, (name, node)
    assert json.dumps(chaos.SCENARIOS)  # printable in the JSON record
