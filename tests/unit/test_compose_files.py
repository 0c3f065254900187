"""Static checks of the Docker Compose files (infra/compose): the shared services, the job
template job-cluster.yaml and the job files generated from the registry, which extend it.

Each job file is checked as Compose reads it: its services merged with the template's
(deploy_support.resolve_extends), checked against the Compose Specification schema, against
what the code expects (settings, checkpoint layout, images) and the job's registry entry.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from deploy_support import (
    CHECKPOINT_DIR,
    CHECKPOINT_MOUNT,
    COMPOSE,
    COMPOSE_SECRETS_MOUNT,
    COMPOSE_TEST_ENV,
    COMPOSE_TLS_VOLUME,
    MissingVariableError,
    compose_job,
    compose_job_file,
    compose_spec_schema,
    environment_of,
    flink_properties,
    image_is_pinned,
    interpolate,
    interpolate_tree,
    job_version,
    load_yaml,
    read,
    variable_references,
)

from jupiter_common import registry
from jupiter_common.registry import Job
from jupiter_common.settings import load_settings

SERVICE_KEYS_REQUIRED = {"image", "networks", "restart"}
HEALTHCHECK_KEYS = {
    "test",
    "interval",
    "timeout",
    "retries",
    "start_period",
    "start_interval",
    "disable",
}
COMPOSE_TOP_LEVEL = {"services", "volumes", "networks", "configs", "secrets", "name"}
TEMPLATE = COMPOSE / "job-cluster.yaml"


def compose_files() -> list[Path]:
    """The projects: the shared services and one file per job."""
    return [COMPOSE / "services.yaml", *(compose_job_file(job.name) for job in registry.JOBS)]


def resolved(path: Path) -> dict[str, Any]:
    """A project file as Compose reads it (extends resolved), variables not interpolated."""
    doc: dict[str, Any] = (
        load_yaml(path) if path.name == "services.yaml" else compose_job(path.stem[: -len("-job")])
    )
    return doc


def test_the_compose_files_are_the_services_the_template_and_the_jobs() -> None:
    names = sorted(p.name for p in COMPOSE.glob("*.yaml"))
    expected = ["job-cluster.yaml", "services.yaml", *(f"{j.name}-job.yaml" for j in registry.JOBS)]
    assert names == sorted(expected)


@pytest.mark.parametrize("path", [*compose_files(), TEMPLATE], ids=lambda p: p.name)
def test_compose_file_matches_the_compose_specification(path: Path) -> None:
    schema = compose_spec_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    docs = [load_yaml(path)]
    if path != TEMPLATE:
        docs += [resolved(path), interpolate_tree(resolved(path), COMPOSE_TEST_ENV)]
    for doc in docs:
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(doc)]
        assert errors == []


@pytest.mark.parametrize("path", compose_files(), ids=lambda p: p.name)
def test_compose_file_structure(path: Path) -> None:
    doc = interpolate_tree(resolved(path), COMPOSE_TEST_ENV)
    assert {k for k in doc if not k.startswith("x-")} <= COMPOSE_TOP_LEVEL
    assert isinstance(doc.get("name"), str), "each file is a project of its own"
    services: dict[str, Any] = doc["services"]
    declared_volumes = set(doc.get("volumes") or {})
    declared_networks = set(doc.get("networks") or {})
    for name, service in services.items():
        assert service.keys() >= SERVICE_KEYS_REQUIRED, name
        environment_of(service)  # a mapping, or a list of K=V
        for port in service.get("ports", []):
            assert isinstance(port, str), f"{name}: quote ports ({port!r})"
            assert port.startswith("127.0.0.1:"), f"{name}: publish on loopback only ({port})"
        if "healthcheck" in service:
            assert set(service["healthcheck"]) <= HEALTHCHECK_KEYS, name
            assert service["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL"), name
        depends_on = service.get("depends_on") or {}
        assert set(depends_on) <= set(services), name
        for volume in service.get("volumes", []):
            if volume == interpolate(COMPOSE_TLS_VOLUME, COMPOSE_TEST_ENV):
                continue  # the one host directory: TLS files (test_deploy_variables.py)
            source = volume.split(":", 1)[0]
            assert not source.startswith((".", "/")), f"{name}: named volumes only ({volume})"
            assert source in declared_volumes, f"{name}: volume {source} is not declared"
        assert set(service["networks"]) <= declared_networks, name
        for secret in service.get("secrets", []):
            assert secret in (doc.get("secrets") or {}), f"{name}: secret {secret} not declared"
    assert declared_networks == {"jupiter"}
    assert doc["networks"]["jupiter"]["name"] == "jupiter"


@pytest.mark.parametrize("path", sorted(COMPOSE.glob("*.yaml")), ids=lambda p: p.name)
def test_every_yaml_file_parses(path: Path) -> None:
    doc = load_yaml(path)
    assert isinstance(doc, dict) and doc, path


def test_every_image_is_pinned() -> None:
    refs = {
        service["image"]: f"{path.name}:{name}"
        for path in compose_files()
        for name, service in interpolate_tree(resolved(path), COMPOSE_TEST_ENV)["services"].items()
    }
    assert any(ref.startswith("apache/kafka:") for ref in refs)
    assert any(ref.startswith("clickhouse/clickhouse-server:") for ref in refs)
    assert {ref: where for ref, where in refs.items() if not image_is_pinned(ref)} == {}


def test_services_file_creates_the_shared_network_and_services() -> None:
    doc = interpolate_tree(load_yaml(COMPOSE / "services.yaml"), COMPOSE_TEST_ENV)
    assert doc["networks"]["jupiter"].get("external") is not True
    services = doc["services"]
    assert {"kafka", "clickhouse", "create-topics"} <= set(services)
    kafka = environment_of(services["kafka"])
    assert "broker" in kafka["KAFKA_PROCESS_ROLES"] and "controller" in kafka["KAFKA_PROCESS_ROLES"]
    assert "PLAINTEXT://kafka:9092" in kafka["KAFKA_ADVERTISED_LISTENERS"].split(",")
    assert services["kafka"]["volumes"] == ["kafka-data:/var/lib/kafka/data"]
    assert kafka["KAFKA_LOG_DIRS"] == "/var/lib/kafka/data"
    assert "/ping" in " ".join(services["clickhouse"]["healthcheck"]["test"])
    assert services["clickhouse"]["volumes"] == ["clickhouse-data:/var/lib/clickhouse"]
    topics = " ".join(services["create-topics"]["command"])
    assert "--topic sessions-topic --partitions 6" in " ".join(topics.split())
    assert "--topic sessions-dead-letter" in topics
    assert services["create-topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    with pytest.raises(MissingVariableError):
        interpolate_tree(load_yaml(COMPOSE / "services.yaml"), {})


def test_the_template_holds_no_job() -> None:
    """Everything a job's file says about its job comes from its registry entry; the template
    names none (the acceptance check: `grep -rn movements infra/compose` finds generated files)."""
    text = read(TEMPLATE).lower()
    for job in registry.JOBS:
        assert not re.search(rf"\b{job.name}\b", text), job.name
    assert set(load_yaml(TEMPLATE)["services"]) == {"jobmanager", "taskmanager"}


@pytest.mark.parametrize("job", registry.JOBS, ids=lambda job: job.name)
def test_compose_job_file_is_an_application_cluster_of_one_job(job: Job, tmp_path: Path) -> None:
    raw_doc = compose_job(job.name)
    doc = interpolate_tree(raw_doc, COMPOSE_TEST_ENV)
    prefix = job.name.upper()
    assert doc["name"] == f"jupiter-{job.name}"
    assert doc["networks"]["jupiter"] == {"name": "jupiter", "external": True}
    jm_name, tm_name = f"{job.name}-jobmanager", f"{job.name}-taskmanager"
    assert set(doc["services"]) == {jm_name, tm_name}
    jm, tm = doc["services"][jm_name], doc["services"][tm_name]

    # The image's `job` command runs the job the image was built for (test_images.py).
    assert jm["command"] == ["job"]
    assert tm["command"] == ["taskmanager"]
    assert jm["image"] == tm["image"] == f"{job.distribution}:{job_version(job)}"

    raw = raw_doc["services"]
    raw_jm, raw_tm = environment_of(raw[jm_name]), environment_of(raw[tm_name])
    assert (
        raw[jm_name]["image"] == f"{job.distribution}:${{{prefix}_IMAGE_TAG:-{job_version(job)}}}"
    )
    assert raw_jm["FLINK_PARALLELISM"] == f"${{{prefix}_PARALLELISM:-1}}"
    assert raw_tm["FLINK_PARALLELISM"] == f"${{{prefix}_PARALLELISM:-1}}"
    assert raw_tm["JUPITER_TASKMANAGERS"] == f"${{{prefix}_TASKMANAGERS:-1}}"
    assert raw[tm_name]["deploy"]["replicas"] == f"${{{prefix}_TASKMANAGERS:-1}}"
    # The password: from CLICKHOUSE_PASSWORD (environment or .env) into a secret, a file in the
    # JobManager only, never an environment variable of a job container.
    assert "CLICKHOUSE_PASSWORD" not in raw_jm and "CLICKHOUSE_PASSWORD" not in raw_tm
    password_file = f"{COMPOSE_SECRETS_MOUNT}/clickhouse_password"
    assert raw_jm["CLICKHOUSE_PASSWORD_FILE"] == password_file
    assert raw[jm_name]["secrets"] == ["clickhouse_password"]
    assert "secrets" not in raw[tm_name]
    assert raw_doc["secrets"] == {"clickhouse_password": {"environment": "CLICKHOUSE_PASSWORD"}}
    jm_properties = flink_properties(raw_jm["FLINK_PROPERTIES"])
    assert jm_properties["parallelism.default"] == f"${{{prefix}_PARALLELISM:-1}}"

    jm_env, tm_env = environment_of(jm), environment_of(tm)
    jm_properties = flink_properties(jm_env["FLINK_PROPERTIES"])
    tm_properties = flink_properties(tm_env["FLINK_PROPERTIES"])
    assert jm_properties["jobmanager.rpc.address"] == jm_name
    assert tm_properties["jobmanager.rpc.address"] == jm_name
    assert jm_properties["execution.shutdown-on-application-finish"] == "false"
    assert jm_env["FLINK_CHECKPOINT_DIR"] == CHECKPOINT_DIR
    assert jm_env["FLINK_RESUME"] == "latest"

    # Checkpoints: one volume of this project, shared by the JobManager and the TaskManagers;
    # and the ClickHouse TLS files.
    tls = interpolate(COMPOSE_TLS_VOLUME, COMPOSE_TEST_ENV)
    assert jm["volumes"] == tm["volumes"] == [f"checkpoints:{CHECKPOINT_MOUNT}", tls]
    assert set(doc["volumes"]) == {"checkpoints"}

    assert jm["ports"] == [f"127.0.0.1:{job.rest_port}:8081"]
    assert "localhost:8081" in " ".join(jm["healthcheck"]["test"])
    assert tm["depends_on"] == {jm_name: {"condition": "service_started"}}

    # The JobManager's environment is a valid configuration of this job, with the secret file
    # Compose makes from CLICKHOUSE_PASSWORD.
    secret = tmp_path / "clickhouse_password"
    secret.write_text(COMPOSE_TEST_ENV["CLICKHOUSE_PASSWORD"])
    jm_env["CLICKHOUSE_PASSWORD_FILE"] = str(secret)
    settings = load_settings(
        job.name, environ={k: v for k, v in jm_env.items() if k != "FLINK_PROPERTIES"}
    )
    assert settings.job_name == job.flink_job_name
    assert settings.checkpoint_root == f"{CHECKPOINT_DIR}/{job.name}/{job.flink_job_name}"
    assert (
        settings.clickhouse_password.get_secret_value() == COMPOSE_TEST_ENV["CLICKHOUSE_PASSWORD"]
    )
    assert not settings.embedded


def test_every_job_has_its_own_rest_port() -> None:
    ports = [compose_job(job.name)["services"][f"{job.name}-jobmanager"] for job in registry.JOBS]
    published = [interpolate(s["ports"][0], {}).split(":")[1] for s in ports]
    assert len(set(published)) == len(registry.JOBS)


def test_env_example_documents_every_compose_variable() -> None:
    example = read(COMPOSE / ".env.example")
    documented = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]*)=", example, re.M))
    referenced = {
        name for path in [*compose_files(), TEMPLATE] for name in variable_references(read(path))
    }
    assert sorted(referenced - documented) == []
    assert "CLICKHOUSE_PASSWORD=change-me" in example
