"""The job registry: each entry agrees with the job package it names, and a bad entry is refused
where it is declared (what derives from the registry: test_toy_job.py, test_generated_files.py)."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest

from jupiter_common import registry
from jupiter_common.registry import Job, UnknownJobError, check_registry, get_job, job_names
from jupiter_common.settings import load_settings
from jupiter_common.tables import SESSION_EVENTS

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("job", registry.JOBS, ids=lambda job: job.name)
def test_each_entry_is_its_job_package(job: Job) -> None:
    spec = job.load()
    assert (spec.name, spec.table) == (job.name, job.table)
    folder = REPO / job.folder
    assert (folder / "src" / job.module / "__main__.py").is_file()
    project = tomllib.loads((folder / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["name"] == job.distribution
    assert project["scripts"] == {job.distribution: f"{job.module}.job:main"}


@pytest.mark.parametrize("job", registry.JOBS, ids=lambda job: job.name)
def test_settings_take_their_per_job_defaults_from_the_entry(job: Job) -> None:
    settings = load_settings(job.name, environ={})
    assert settings.consumer_group == job.consumer_group == f"jupiter-{job.name}"
    assert settings.job_name == job.flink_job_name == f"jupiter-{job.name}"


def test_every_job_folder_has_an_entry() -> None:
    folders = sorted(p.name for p in (REPO / "jobs").iterdir() if (p / "pyproject.toml").exists())
    assert folders == sorted(Path(job.folder).name for job in registry.JOBS)


def test_lookup_names_the_known_jobs() -> None:
    assert get_job("events").table is SESSION_EVENTS
    with pytest.raises(UnknownJobError, match="must be one of base, events, movements"):
        get_job("trips")
    assert job_names() == ("base", "events", "movements")


def test_only_movements_may_scale() -> None:
    assert {job.name: job.parallelism for job in registry.JOBS} == {
        "base": 1,
        "events": 1,
        "movements": 2,
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": "Trips"}, "lower-case letters and digits"),
        ({"name": "trips-job"}, "lower-case letters and digits"),
        ({"spec": "jupiter_other.job:JOB"}, "is not inside jupiter_events"),
        ({"spec": "jupiter_events.job"}, "must be 'module:NAME'"),
        ({"sample_columns": ("session_id", "speed")}, r"sample columns \['speed'\] not in"),
    ],
)
def test_a_bad_entry_is_refused(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(get_job("events"), **change)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"rest_port": 8081}, "share a rest_port"),
        ({"table": get_job("base").table, "sample_columns": ()}, "land the same table"),
    ],
)
def test_entries_must_not_collide(change: dict[str, object], message: str) -> None:
    events = dataclasses.replace(get_job("events"), **change)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=message):
        check_registry((get_job("base"), events))
    with pytest.raises(ValueError, match="share a name"):
        check_registry((get_job("base"), get_job("base")))
