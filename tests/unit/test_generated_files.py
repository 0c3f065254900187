"""The files generated from the job registry are what `hatch run generate` writes, and a job is
declared once: a toy fourth job, added to a copy of the registry, reaches every derived place.

The generator runs on a copy of the repository's hand-written files in a temporary directory, so
these tests never touch the working tree.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_support import REPO, apply_json_patch, load_yaml, load_yaml_docs, read, resolve_extends

from jupiter_common import migrate, registry
from jupiter_common.errors import SettingsError
from jupiter_common.registry import Job, get_job
from jupiter_common.settings import load_settings
from jupiter_common.tables import SESSION_MOVEMENTS
from jupiter_local import cluster, demo, generate, localrun

TOY = Job(
    name="toy",
    table=dataclasses.replace(SESSION_MOVEMENTS, name="session_toys"),
    spec="jupiter_toy.job:JOB",
    sample_columns=("session_id", "status"),
    rest_port=8090,
)
WITH_TOY = (*registry.JOBS, TOY)


def copy_of_the_repository(tmp_path: Path) -> Path:
    """The files the generator reads and writes, and each job's pyproject.toml."""
    repo = tmp_path / "repo"
    for name in ("pyproject.toml", ".pre-commit-config.yaml"):
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / name, repo / name)
    for folder in ("infra/compose", "infra/k8s"):
        shutil.copytree(REPO / folder, repo / folder)
    for job in registry.JOBS:
        (repo / job.folder).mkdir(parents=True)
        shutil.copy(REPO / job.folder / "pyproject.toml", repo / job.folder / "pyproject.toml")
    return repo


def add_toy_package(repo: Path) -> None:
    """What `docs/adding-a-job.md` asks for first: the job's package (here its pyproject.toml)."""
    (repo / TOY.folder).mkdir(parents=True)
    (repo / TOY.folder / "pyproject.toml").write_text(
        '[project]\nname = "jupiter-toy-job"\nversion = "0.3.0"\n', encoding="utf-8"
    )


def test_the_generated_files_are_up_to_date() -> None:
    stale = generate.stale(registry.jobs(), REPO)
    assert stale == [], f"stale generated files, run `{generate.COMMAND}`: {stale}"


def test_generate_check_names_the_stale_files_and_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = copy_of_the_repository(tmp_path)
    monkeypatch.setattr(generate, "REPO", repo)
    assert generate.main(["--check"]) == 0
    compose = repo / "infra/compose/events-job.yaml"
    compose.write_text(read(compose).replace("8082", "9082"), encoding="utf-8")
    assert generate.main(["--check"]) == 1
    err = capsys.readouterr().err
    assert "infra/compose/events-job.yaml" in err and "hatch run generate" in err
    assert generate.main([]) == 0
    assert generate.main(["--check"]) == 0
    assert read(compose) == read(REPO / "infra/compose/events-job.yaml")


def test_deleting_a_registry_entry_makes_the_check_fail() -> None:
    last = registry.JOBS[-1]
    stale = generate.stale(registry.JOBS[:-1], REPO)
    assert set(stale) == {
        f"infra/compose/{last.name}-job.yaml (delete)",
        f"infra/k8s/jobs/{last.name}/kustomization.yaml (delete)",
        "infra/k8s/jobs/kustomization.yaml",
        "infra/compose/.env.example",
        "pyproject.toml",
        ".pre-commit-config.yaml",
    }


def test_a_hand_written_file_without_its_block_is_refused(tmp_path: Path) -> None:
    repo = copy_of_the_repository(tmp_path)
    text = read(repo / "pyproject.toml")
    (repo / "pyproject.toml").write_text(text.replace(generate.END, "# end"), encoding="utf-8")
    with pytest.raises(generate.GenerateError, match=r"pyproject\.toml: no block"):
        generate.stale(registry.JOBS, repo)


def test_a_toy_job_reaches_every_generated_place(tmp_path: Path) -> None:
    repo = copy_of_the_repository(tmp_path)
    with pytest.raises(generate.GenerateError, match=r"no jobs/toy-job/pyproject\.toml"):
        generate.write(WITH_TOY, repo)
    add_toy_package(repo)
    assert "infra/compose/toy-job.yaml" in generate.write(WITH_TOY, repo)
    assert generate.stale(WITH_TOY, repo) == []
    # Removing it again: the check names the toy's files, a run deletes them.
    assert "infra/compose/toy-job.yaml (delete)" in generate.stale(registry.JOBS, repo)

    pyproject = tomllib.loads(read(repo / "pyproject.toml"))
    hatch = pyproject["tool"]["hatch"]["envs"]["default"]
    assert "jobs/toy-job" in hatch["workspace"]["members"]
    assert hatch["scripts"]["jobs/toy-job"] == "python -m jupiter_toy {args}"
    assert "jupiter_toy" in pyproject["tool"]["ruff"]["lint"]["isort"]["known-first-party"]
    assert "jobs/toy-job/src" in pyproject["tool"]["mypy"]["mypy_path"]
    (mypy,) = [
        hook
        for hook in load_yaml(repo / ".pre-commit-config.yaml")["repos"][0]["hooks"]
        if hook["id"] == "mypy"
    ]
    assert "jobs/toy-job/src" in mypy["args"]
    example = read(repo / "infra/compose/.env.example")
    assert "TOY_PARALLELISM=1" in example and "# TOY_REST_PORT=8090" in example

    compose = resolve_extends(
        load_yaml(repo / "infra/compose/toy-job.yaml"), repo / "infra/compose"
    )
    assert compose["name"] == "jupiter-toy"
    jm = compose["services"]["toy-jobmanager"]
    assert jm["image"] == "jupiter-toy-job:${TOY_IMAGE_TAG:-0.3.0}"
    assert jm["ports"] == ["127.0.0.1:${TOY_REST_PORT:-8090}:8081"]
    assert jm["command"] == ["job"] and "KAFKA_BOOTSTRAP" in jm["environment"]

    jobs = load_yaml(repo / "infra/k8s/jobs/kustomization.yaml")
    assert jobs["resources"][-1] == "toy"
    assert {"name": "jupiter-toy-job", "newName": "jupiter-toy-job", "newTag": "0.3.0"} in jobs[
        "images"
    ]
    deployment = toy_flink_deployment(repo)
    assert deployment["metadata"]["name"] == "jupiter-toy"
    assert deployment["spec"]["job"]["args"][-1] == "jupiter_toy"
    assert deployment["spec"]["image"] == "jupiter-toy-job:0.3.0"
    checkpoints = deployment["spec"]["flinkConfiguration"]["execution.checkpointing.dir"]
    assert checkpoints == "file:///opt/flink/checkpoints/toy/jupiter-toy"
    kubectl = shutil.which("kubectl")
    if kubectl is not None:  # and kustomize renders the same, where it is installed
        rendered = subprocess.run(
            [kubectl, "kustomize", str(repo / "infra/k8s")],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        (ours,) = [
            d
            for d in load_yaml_docs(rendered)
            if d["kind"] == "FlinkDeployment" and d["metadata"]["name"] == "jupiter-toy"
        ]
        assert ours == deployment


def toy_flink_deployment(repo: Path) -> dict[str, Any]:
    """The toy's FlinkDeployment: the base with the toy overlay's patch applied."""
    (base,) = [
        d
        for d in load_yaml_docs(read(repo / "infra/k8s/job/flink-deployment.yaml"))
        if d["kind"] == "FlinkDeployment"
    ]
    overlay = load_yaml(repo / "infra/k8s/jobs/toy/kustomization.yaml")
    (patch,) = [p for p in overlay["patches"] if p["target"]["kind"] == "FlinkDeployment"]
    assert patch["target"]["name"] == base["metadata"]["name"]
    deployment: dict[str, Any] = apply_json_patch(base, yaml.safe_load(patch["patch"]))
    return deployment


def help_of(main: Callable[[list[str]], int], *args: str) -> None:
    """Run ``main(args + ["--help"])``: argparse prints the choices and defaults and exits."""
    with pytest.raises(SystemExit) as info:
        main([*args, "--help"])
    assert info.value.code == 0


def test_a_toy_job_reaches_every_place_that_reads_the_registry(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with pytest.raises(SettingsError, match="job: must be one of base, events, movements"):
        load_settings("toy", environ={})
    monkeypatch.setattr(registry, "JOBS", WITH_TOY)
    # Settings accept it, with its own consumer group, job name and checkpoint folder.
    settings = load_settings("toy", environ={})
    assert (settings.consumer_group, settings.job_name) == ("jupiter-toy", "jupiter-toy")
    assert settings.checkpoint_root.endswith("/toy/jupiter-toy")
    assert get_job("toy").module == "jupiter_toy"
    # The commands list it: their parsers are built from the registry when they run.
    for main, args, listed in [
        (migrate.main, [], "{base,events,movements,toy}"),
        (cluster.main, ["deploy"], "{base-job,events-job,movements-job,toy-job}"),
        (demo.main, [], "(default: base,events,movements,toy)"),
    ]:
        capsys.readouterr()
        help_of(main, *args)
        assert listed in " ".join(capsys.readouterr().out.split()), (main.__module__, listed)
    # The local runs start its module (which this toy lacks: the run fails saying so); the demo
    # and bench read its table and sample columns the same way (get_job).
    with pytest.raises(RuntimeError, match="No module named jupiter_toy"):
        localrun.run_bounded("toy", dict(os.environ), tmp_path / "toy.log")
    assert get_job("toy").table.name == "session_toys"
