"""Static checks of the images (infra/images): one Dockerfile for every job (build argument JOB),
pinned bases, the Python minor version the project is tested on, what each stage installs, the
build context, and the entrypoint (run against a stand-in for the official Flink entrypoint)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import pytest
from deploy_support import (
    CHECKPOINT_DIR,
    DOCKERFILE,
    IMAGES,
    PYTHON_DRIVER,
    REPO,
    VENV_PYTHON,
    Instruction,
    dockerfile_env,
    dockerfile_from_images,
    dockerfile_stages,
    image_is_pinned,
    interpolate,
    parse_dockerfile,
    pinned_flink_version,
    pip_installs,
    read,
    run_instructions,
)

from jupiter_common import registry
from jupiter_common.flink.environment import SILENCE_ENVIRONMENT_DUMP
from jupiter_common.registry import Job
from jupiter_common.settings import Settings, load_settings


@pytest.mark.parametrize(
    ("ref", "pinned"),
    [
        ("flink:2.2.1-scala_2.12-java17", True),
        ("apache/kafka:4.1.1", True),
        ("registry.example.com:5000/team/jupiter-base-job:0.1.0", True),
        ("clickhouse/clickhouse-server:25.8@sha256:" + "a" * 64, True),
        ("ghcr.io/astral-sh/uv:0.13.8", True),
        ("flink", False),
        ("flink:latest", False),
        ("flink:stable", False),
        ("registry.example.com:5000/jupiter-base-job", False),
        ("flink@sha256:" + "a" * 64, False),
        ("flink:2.2@sha256:short", False),
    ],
)
def test_image_pin_rule(ref: str, pinned: bool) -> None:
    assert image_is_pinned(ref) is pinned


def test_one_dockerfile_builds_every_job() -> None:
    assert sorted(p.name for p in IMAGES.glob("Dockerfile*")) == [
        "Dockerfile",
        "Dockerfile.dockerignore",
    ]
    stages = dockerfile_stages(read(DOCKERFILE))
    assert list(stages) == ["uv", "base", "job"], "the job stage, last, is the default target"
    flink = pinned_flink_version()
    images = dockerfile_from_images(read(DOCKERFILE))
    assert images[1] == f"flink:{flink}-scala_2.12-java17"
    assert all(image_is_pinned(image) for image in images), images


def python_minor_of_the_image() -> str:
    args = [i.args for i in dockerfile_stages(read(DOCKERFILE))["base"] if i.keyword == "ARG"]
    (version,) = [a.partition("=")[2] for a in args if a.startswith("PYTHON_VERSION=")]
    return version


def test_the_image_runs_the_python_minor_version_the_tests_run_on() -> None:
    """Test what you ship: the image's Python is the minor version of requires-python, of the
    hatch environment, and of this test run."""
    minor = python_minor_of_the_image()
    root = tomllib.loads(read(REPO / "pyproject.toml"))
    assert root["project"]["requires-python"] == f">={minor},<3.{int(minor.split('.')[1]) + 1}"
    assert root["tool"]["hatch"]["envs"]["default"]["python"] == minor
    assert f"{sys.version_info.major}.{sys.version_info.minor}" == minor
    # The build checks the venv's version itself, and nothing installs another Python.
    base = " ".join(run_instructions(read(DOCKERFILE)))
    assert 'uv python install "${PYTHON_VERSION}"' in base
    assert "sys.version_info[:2] == '${PYTHON_VERSION}'" in base
    assert not re.search(r"\bpython3(\.\d+)?(-venv)?\b.*apt|apt-get install[^;]*python", base)


def test_base_stage_installs_no_embedded_extra() -> None:
    base = dockerfile_stages(read(DOCKERFILE))["base"]
    installs = pip_installs("\n".join(f"RUN {i.args}" for i in base if i.keyword == "RUN"))
    assert any("apache-flink==" in i for i in installs), installs
    assert any("/opt/jupiter/src/jupiter-common" in i for i in installs), installs
    for install in installs:
        assert "embedded" not in install and "chdb" not in install.lower(), install
        assert "[" not in install, f"no extras in the image: {install}"
    flink = pinned_flink_version()
    assert any(f'"apache-flink=={flink}"' in i or f"apache-flink=={flink}" in i for i in installs)


def test_base_stage_has_the_kafka_connector_pinned_and_verified() -> None:
    text = read(DOCKERFILE)
    args = {
        name.strip(): default.strip()
        for name, _, default in (
            i.args.partition("=") for i in parse_dockerfile(text) if i.keyword == "ARG"
        )
    }
    pom = read(REPO / "infra" / "pom.xml")
    pom_version = re.search(r"<flink\.connector\.kafka\.version>([^<]+)<", pom)
    assert pom_version is not None
    assert args["KAFKA_CONNECTOR_VERSION"] == pom_version.group(1)
    assert re.fullmatch(r"[0-9a-f]{64}", args["KAFKA_CONNECTOR_SHA256"])
    download = [r for r in run_instructions(text) if "flink-sql-connector-kafka" in r]
    assert len(download) == 1
    assert "sha256sum -c" in download[0] and "/opt/flink/lib/" in download[0]


def test_base_stage_points_pyflink_at_the_venv_and_keeps_the_container_defaults() -> None:
    text = read(DOCKERFILE)
    assert f"-Dpython.executable={VENV_PYTHON}" in text
    assert f"-Dpython.client.executable={VENV_PYTHON}" in text
    env = dockerfile_env("\n".join(f"ENV {i.args}" for i in _stage("base", "ENV")))
    defaults = {f.alias: f.default for f in Settings.model_fields.values() if f.alias}
    for name, value in env.items():
        if name == "FLINK_CHECKPOINT_DIR":
            assert value == CHECKPOINT_DIR
        elif name in defaults:
            assert value == str(defaults[name]), name
    assert {"KAFKA_BOOTSTRAP", "CLICKHOUSE_HOST", "FLINK_PARALLELISM", "LOG_LEVEL"} <= env.keys()
    # The image's settings are valid as they stand.
    settings = load_settings("movements", environ={k: v for k, v in env.items() if k != "PATH"})
    assert settings.checkpoint_root == f"{CHECKPOINT_DIR}/movements/jupiter-movements"
    assert [i.args for i in _stage("base", "ENTRYPOINT")] == [
        '["/opt/jupiter/bin/jupiter-entrypoint.sh"]'
    ]


def _stage(stage: str, keyword: str) -> list[Instruction]:
    return [i for i in dockerfile_stages(read(DOCKERFILE))[stage] if i.keyword == keyword]


@pytest.mark.parametrize("job", registry.JOBS, ids=lambda job: job.name)
def test_job_stage_installs_exactly_its_own_package(job: Job) -> None:
    """The job stage with --build-arg JOB=<job>: the job's folder, nothing of another job."""
    stage = dockerfile_stages(read(DOCKERFILE))["job"]
    build = {"JOB": job.name}
    assert [i.args for i in stage if i.keyword == "ARG"] == ["JOB"]
    copies = [interpolate(i.args, build) for i in stage if i.keyword == "COPY"]
    assert copies == [f"{job.folder} /opt/jupiter/src/job"]
    runs = [interpolate(i.args, build) for i in stage if i.keyword == "RUN"]
    assert pip_installs("\n".join(f"RUN {run}" for run in runs)) == [
        "--no-cache-dir --disable-pip-version-check --no-deps /opt/jupiter/src/job"
    ]
    assert f'-m "{job.module}" --print-settings' in runs[0]
    env = {k: interpolate(v, build) for k, v in dockerfile_env(_env_text(stage)).items()}
    assert env == {"JUPITER_JOB_MODULE": job.module}
    assert [json.loads(i.args) for i in stage if i.keyword == "CMD"] == [["job"]]
    assert (REPO / job.folder / "src" / job.module / "__main__.py").is_file()


def _env_text(stage: list[Instruction]) -> str:
    return "\n".join(f"ENV {i.args}" for i in stage if i.keyword == "ENV")


def test_the_image_silences_the_environment_dump_in_every_log_configuration() -> None:
    (run,) = [r for r in run_instructions(read(DOCKERFILE)) if "log4j" in r]
    assert "for conf in /opt/flink/conf/log4j*.properties" in run
    for line in SILENCE_ENVIRONMENT_DUMP.splitlines():
        assert f"'{line}'" in run
    assert '>> "$conf"' in run


def test_build_context_keeps_what_the_dockerfile_copies() -> None:
    ignore = IMAGES / "Dockerfile.dockerignore"
    patterns = [
        line.strip() for line in read(ignore).splitlines() if line.strip() and line[0] != "#"
    ]
    assert patterns[0] == "*", "allowlist: exclude everything, then re-include"
    included = [p[1:] for p in patterns if p.startswith("!")]
    sources = [
        interpolate(i.args.split()[0], {"JOB": job.name})
        for i in parse_dockerfile(read(DOCKERFILE))
        if i.keyword == "COPY" and not i.args.startswith("--from=")
        for job in registry.JOBS
    ]
    assert len(sources) == 3 * len(registry.JOBS)
    for source in sources:
        assert (REPO / source).exists(), source
        # The source itself, or what it holds (a pattern one level below it).
        assert any(
            fnmatch(source, pattern) or fnmatch(source, pattern.rpartition("/")[0])
            for pattern in included
        ), source


# --------------------------------------------------------------------------------------------
# The image entrypoint: the `job` command, slots per TaskManager
# --------------------------------------------------------------------------------------------


def fake_entrypoint(tmp_path: Path) -> Path:
    """jupiter-entrypoint.sh, exec-ing a stand-in for the official entrypoint that prints the
    slot count it was given and its arguments."""
    official = tmp_path / "docker-entrypoint.sh"
    official.write_text(
        '#!/usr/bin/env bash\necho "slots=${TASK_MANAGER_NUMBER_OF_TASK_SLOTS:-} args=$*"\n'
    )
    official.chmod(0o755)
    script = tmp_path / "jupiter-entrypoint.sh"
    text = read(IMAGES / "jupiter-entrypoint.sh")
    assert text.count("exec /docker-entrypoint.sh") == 1
    script.write_text(text.replace("exec /docker-entrypoint.sh", f"exec {official}"))
    script.chmod(0o755)
    return script


def run_entrypoint(
    tmp_path: Path, env: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    script = fake_entrypoint(tmp_path)
    drop = ("FLINK_PARALLELISM", "TASK_MANAGER_NUMBER_OF_TASK_SLOTS", "JUPITER_JOB_MODULE")
    environ = {k: v for k, v in os.environ.items() if k not in drop}
    return subprocess.run(
        [str(script), *args],
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )


@pytest.mark.parametrize(
    ("env", "command", "expected"),
    [
        ({}, "taskmanager", "slots=1 args=taskmanager"),
        ({"FLINK_PARALLELISM": "3", "JUPITER_TASKMANAGERS": "2"}, "taskmanager", "slots=2"),
        ({"FLINK_PARALLELISM": "4", "JUPITER_TASKMANAGERS": "2"}, "taskmanager", "slots=2"),
        ({"FLINK_PARALLELISM": "5", "JUPITER_TASKMANAGERS": "2"}, "taskmanager", "slots=3"),
        ({"FLINK_PARALLELISM": "1", "JUPITER_TASKMANAGERS": "3"}, "taskmanager", "slots=1"),
        (
            {"FLINK_PARALLELISM": "8", "TASK_MANAGER_NUMBER_OF_TASK_SLOTS": "5"},
            "taskmanager",
            "slots=5",
        ),
        ({"FLINK_PARALLELISM": "8"}, "standalone-job", "slots= args=standalone-job"),
    ],
)
def test_entrypoint_gives_each_taskmanager_enough_slots(
    tmp_path: Path, env: dict[str, str], command: str, expected: str
) -> None:
    result = run_entrypoint(tmp_path, env, command)
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout.splitlines()[-1]


@pytest.mark.parametrize("job", registry.JOBS, ids=lambda job: job.name)
def test_entrypoint_job_command_runs_the_images_module(tmp_path: Path, job: Job) -> None:
    result = run_entrypoint(tmp_path, {"JUPITER_JOB_MODULE": job.module}, "job", "--x")
    assert result.returncode == 0, result.stderr
    args = result.stdout.splitlines()[-1].partition("args=")[2].split()
    assert args == [
        "standalone-job",
        "--job-classname",
        PYTHON_DRIVER,
        "-pyclientexec",
        VENV_PYTHON,
        "-pyexec",
        VENV_PYTHON,
        "-pym",
        job.module,
        "--x",
    ]


@pytest.mark.parametrize(
    ("env", "args", "variable"),
    [
        ({"FLINK_PARALLELISM": "a[$(touch pwned)]"}, ["taskmanager"], "FLINK_PARALLELISM"),
        ({}, ["job"], "JUPITER_JOB_MODULE"),
        ({"JUPITER_JOB_MODULE": "x; touch pwned"}, ["job"], "JUPITER_JOB_MODULE"),
    ],
)
def test_entrypoint_refuses_a_bad_value(
    tmp_path: Path, env: dict[str, str], args: list[str], variable: str
) -> None:
    result = run_entrypoint(tmp_path, env, *args)
    assert result.returncode == 2
    assert variable in result.stderr
    assert not (tmp_path / "pwned").exists()
