"""Environment variables of the job containers, across images, Compose and Kubernetes: each is a
Jupiter setting or an allowlisted one (a typo fails), no secret is ever an environment variable
(files only), and the ClickHouse TLS files reach every Flink process."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import pytest
import yaml
from deploy_support import (
    COMPOSE,
    COMPOSE_TEST_ENV,
    COMPOSE_TLS_VOLUME,
    DOCKERFILE,
    K8S,
    REPO,
    TLS_MOUNT,
    TLS_VARIABLES,
    compose_job,
    compose_job_file,
    config_map,
    dockerfile_env,
    environment_of,
    flink_deployment,
    interpolate_tree,
    k8s_containers,
    load_yaml_docs,
    read,
)
from tls_certs import make_pki

from jupiter_common import registry
from jupiter_common.settings import (
    SECRET_VARIABLES,
    Settings,
    load_settings,
    secret_file_variable_names,
)

TEMPLATE = COMPOSE / "job-cluster.yaml"
K8S_BASE = K8S / "job" / "flink-deployment.yaml"
LAST_JOB = registry.JOBS[-1].name

# Variables set in a Jupiter job container that are not Jupiter settings, each with its reason.
# Everything else set in a job container must be in Settings.variable_names(), so that a typo
# (KAFKA_BOOTSRAP) fails here instead of being silently ignored by the job.
NON_JUPITER_VARIABLES: dict[str, str] = {
    "FLINK_PROPERTIES": "official Flink image entrypoint: `key: value` lines for conf/config.yaml",
    "JUPITER_JOB_MODULE": "job images: the Python module the image's `job` command runs",
    "JUPITER_TASKMANAGERS": "infra/images/jupiter-entrypoint.sh: TaskManagers, for the slot count",
    "PYTHONUNBUFFERED": "Python: unbuffered output, so logs reach `docker logs` at once",
    "PATH": "base image: the venv's bin directory first",
}

# Containers that are given a secret as an environment variable all the same, with the reason.
PLAIN_SECRET_EXCEPTIONS: dict[str, str] = {
    "services.yaml:clickhouse": "the ClickHouse server image reads the password it sets up for the"
    " jobs' user from CLICKHOUSE_PASSWORD only; it is no Flink process and logs no environment",
}


def known_variables() -> frozenset[str]:
    return Settings.variable_names() | secret_file_variable_names()


def unknown_variables(names: Iterable[str]) -> list[str]:
    """Names that are neither Jupiter settings nor allowlisted non-Jupiter variables."""
    known = known_variables() | NON_JUPITER_VARIABLES.keys()
    return sorted({name for name in names if name not in known})


def without_secret_files(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` without the ``*_FILE`` variables, whose files exist in the pods only."""
    return {k: v for k, v in env.items() if k not in secret_file_variable_names()}


# The variables set for Jupiter job containers, from each kind of file (text in, so a doctored
# copy can be checked too).


def compose_job_variables(text: str) -> set[str]:
    doc = yaml.safe_load(text)
    return {name for service in doc["services"].values() for name in environment_of(service)}


def dockerfile_variables(text: str) -> set[str]:
    return set(dockerfile_env(text))


def k8s_variables(text: str) -> set[str]:
    """The variables a manifest sets: the ConfigMap's keys (every job container loads it) and
    the containers' own env. The Secret's keys are file names, not variables."""
    names: set[str] = set()
    for doc in load_yaml_docs(text):
        if doc.get("kind") == "ConfigMap":
            names.update(doc.get("data") or {})
        for container in k8s_containers(doc.get("spec", {})):
            names.update(item["name"] for item in container.get("env") or [])
    return names


def plain_secrets_in_compose(text: str, label: str) -> list[str]:
    """``file:service: VARIABLE`` for every secret a compose file gives a service as an
    environment variable."""
    doc = yaml.safe_load(text)
    return [
        f"{label}:{name}: {variable}"
        for name, service in doc["services"].items()
        for variable in environment_of(service)
        if variable in SECRET_VARIABLES and f"{label}:{name}" not in PLAIN_SECRET_EXCEPTIONS
    ]


def plain_secrets_in_k8s(text: str, label: str) -> list[str]:
    """Every way a manifest could put a secret into a container's environment: a ConfigMap key
    named like a secret, ``envFrom`` a Secret, ``env`` from a Secret key or named like a secret."""
    found: list[str] = []
    for doc in load_yaml_docs(text):
        if doc.get("kind") == "ConfigMap":
            found += [
                f"{label}: ConfigMap {k}" for k in doc.get("data") or {} if k in SECRET_VARIABLES
            ]
        for container in k8s_containers(doc.get("spec", {})):
            for source in container.get("envFrom") or []:
                if "secretRef" in source:
                    found.append(f"{label}: envFrom {source['secretRef']}")
            for item in container.get("env") or []:
                if item["name"] in SECRET_VARIABLES or "secretKeyRef" in (
                    item.get("valueFrom") or {}
                ):
                    found.append(f"{label}: env {item['name']}")
    return found


def plain_secrets_in_dockerfile(text: str, label: str) -> list[str]:
    return [f"{label}: ENV {name}" for name in dockerfile_env(text) if name in SECRET_VARIABLES]


def all_job_container_variables() -> dict[str, set[str]]:
    """Variable name -> the files that set it for a job container."""
    found: dict[str, set[str]] = {}

    def add(names: Iterable[str], path: Path) -> None:
        for name in names:
            found.setdefault(name, set()).add(str(path.relative_to(REPO)))

    for job in registry.JOBS:
        add(compose_job_variables(read(compose_job_file(job.name))), compose_job_file(job.name))
    add(compose_job_variables(read(TEMPLATE)), TEMPLATE)
    add(dockerfile_variables(read(DOCKERFILE)), DOCKERFILE)
    add(k8s_variables(read(K8S_BASE)), K8S_BASE)
    add(k8s_variables(read(K8S / "config.yaml")), K8S / "config.yaml")
    return found


def test_every_job_container_variable_is_a_setting_or_allowlisted() -> None:
    found = all_job_container_variables()
    unknown = unknown_variables(found)
    assert unknown == [], {name: sorted(found[name]) for name in unknown}
    # Not vacuous: the usual settings are found in each kind of file.
    for name, where in [
        ("KAFKA_BOOTSTRAP", "infra/compose/job-cluster.yaml"),
        ("FLINK_PARALLELISM", f"infra/compose/{LAST_JOB}-job.yaml"),
        ("KAFKA_BOOTSTRAP", "infra/images/Dockerfile"),
        ("KAFKA_BOOTSTRAP", "infra/k8s/config.yaml"),
        ("FLINK_PARALLELISM", "infra/k8s/job/flink-deployment.yaml"),
        ("JUPITER_JOB_MODULE", "infra/images/Dockerfile"),
    ]:
        assert where in found.get(name, set()), (name, where)


def test_the_allowlist_is_needed_and_explained() -> None:
    found = all_job_container_variables()
    assert not NON_JUPITER_VARIABLES.keys() & known_variables()
    assert [name for name in NON_JUPITER_VARIABLES if name not in found] == []
    assert all(len(reason) > 20 for reason in NON_JUPITER_VARIABLES.values())


@pytest.mark.parametrize(
    ("path", "collect", "original", "typo"),
    [
        (TEMPLATE, compose_job_variables, "      KAFKA_BOOTSTRAP: ", "      KAFKA_BOOTSRAP: "),
        (DOCKERFILE, dockerfile_variables, "KAFKA_BOOTSTRAP=", "KAFKA_BOOTSRAP="),
        (K8S / "config.yaml", k8s_variables, "  KAFKA_BOOTSTRAP: ", "  KAFKA_BOOTSRAP: "),
        (
            K8S_BASE,
            k8s_variables,
            "- name: FLINK_PARALLELISM",
            "- name: FLINK_PARALELLISM",
        ),
    ],
    ids=["compose", "dockerfile", "configmap", "flinkdeployment"],
)
def test_the_variable_check_catches_a_typo(
    path: Path, collect: Callable[[str], set[str]], original: str, typo: str
) -> None:
    text = read(path)
    assert original in text
    assert unknown_variables(collect(text)) == []
    doctored = text.replace(original, typo, 1)
    assert unknown_variables(collect(doctored)) == [typo.strip(" -:=").removeprefix("name: ")]


# --------------------------------------------------------------------------------------------
# No secret is an environment variable of a job container
# --------------------------------------------------------------------------------------------


def plain_secrets_everywhere() -> list[str]:
    found: list[str] = []
    for path in sorted(COMPOSE.glob("*.yaml")):
        found += plain_secrets_in_compose(read(path), path.name)
    for path in sorted(K8S.rglob("*.yaml")):
        found += plain_secrets_in_k8s(read(path), path.name)
    found += plain_secrets_in_dockerfile(read(DOCKERFILE), DOCKERFILE.name)
    return found


def test_no_secret_is_given_as_an_environment_variable() -> None:
    assert {"CLICKHOUSE_PASSWORD", "KAFKA_SASL_PASSWORD"} == SECRET_VARIABLES
    assert plain_secrets_everywhere() == []
    # The one exception is real and still needed (the ClickHouse server's own setup).
    services = yaml.safe_load(read(COMPOSE / "services.yaml"))["services"]
    for where in PLAIN_SECRET_EXCEPTIONS:
        _, service = where.split(":")
        assert SECRET_VARIABLES & environment_of(services[service]).keys(), where
        assert len(PLAIN_SECRET_EXCEPTIONS[where]) > 20


@pytest.mark.parametrize(
    ("path", "check", "original", "doctored"),
    [
        (
            TEMPLATE,
            plain_secrets_in_compose,
            "      CLICKHOUSE_PASSWORD_FILE: /run/secrets/clickhouse_password\n",
            "      CLICKHOUSE_PASSWORD: ${CLICKHOUSE_PASSWORD:-}\n",
        ),
        (
            compose_job_file(LAST_JOB),
            plain_secrets_in_compose,
            "      JUPITER_TASKMANAGERS: ",
            "      KAFKA_SASL_PASSWORD: x\n      JUPITER_TASKMANAGERS: ",
        ),
        (
            K8S / "config.yaml",
            plain_secrets_in_k8s,
            "  LOG_LEVEL: INFO\n",
            "  LOG_LEVEL: INFO\n  KAFKA_SASL_PASSWORD: x\n",
        ),
        (
            K8S_BASE,
            plain_secrets_in_k8s,
            "                name: jupiter-config\n",
            "                name: jupiter-config\n            - secretRef:\n"
            "                name: jupiter-secrets\n",
        ),
        (
            K8S_BASE,
            plain_secrets_in_k8s,
            '              value: "1"\n',
            '              value: "1"\n            - name: CH_PW\n              valueFrom:\n'
            "                secretKeyRef: {name: jupiter-secrets, key: CLICKHOUSE_PASSWORD}\n",
        ),
        (
            DOCKERFILE,
            plain_secrets_in_dockerfile,
            "    LOG_LEVEL=INFO \\\n",
            "    LOG_LEVEL=INFO \\\n    CLICKHOUSE_PASSWORD=x \\\n",
        ),
    ],
    ids=["compose", "compose-taskmanager", "configmap", "envfrom-secret", "secret-key", "image"],
)
def test_the_secret_check_catches_a_secret_variable(
    path: Path, check: Callable[[str, str], list[str]], original: str, doctored: str
) -> None:
    text = read(path)
    assert text.count(original) == 1
    assert check(text, path.name) == []
    assert len(check(text.replace(original, doctored), path.name)) == 1


def test_compose_gives_the_secret_as_a_file_of_the_jobmanager_only() -> None:
    for job in registry.JOBS:
        doc = compose_job(job.name)
        for name, service in doc["services"].items():
            env = environment_of(service)
            given = service.get("secrets", [])
            assert given == (["clickhouse_password"] if name.endswith("jobmanager") else []), name
            assert {env[k] for k in env if k in secret_file_variable_names()} == {
                f"/run/secrets/{secret}" for secret in given
            }


def tls_files(directory: Path) -> dict[str, Path]:
    """Stand-ins for the TLS files where the containers see them (``directory`` + the path):
    settings only check that each is a PEM file of its kind, and that the key is the
    certificate's, which a real pair made by openssl satisfies."""
    pki = make_pki(directory / "pki")
    mount = directory / TLS_MOUNT.lstrip("/")
    mount.mkdir(parents=True)
    sources = {"ca.crt": pki.ca_cert, "tls.crt": pki.client_cert, "tls.key": pki.client_key}
    for name, source in sources.items():
        shutil.copy(source, mount / name)
    return {name: mount / name for name in sources}


def commented_config_map_tls() -> dict[str, str]:
    """The TLS variables the ConfigMap shows, commented out (they need the optional Secret)."""
    text = read(K8S / "config.yaml")
    return dict(re.findall(r"^  # (CLICKHOUSE_[A-Z_]+): (\S+)$", text, re.M))


def test_clickhouse_tls_files_reach_every_flink_process(tmp_path: Path) -> None:
    files = tls_files(tmp_path)
    # Kubernetes: the optional Secret jupiter-clickhouse-tls in the pod template that the
    # JobManager and the TaskManagers share (nothing of it in the JobManager's alone).
    volume = {
        "name": "clickhouse-tls",
        "secret": {"secretName": "jupiter-clickhouse-tls", "optional": True, "defaultMode": 0o440},
    }
    for job in registry.JOBS:
        spec = flink_deployment(job.name)["spec"]
        common = spec["podTemplate"]["spec"]
        (container,) = common["containers"]
        assert {"name": "clickhouse-tls", "mountPath": TLS_MOUNT, "readOnly": True} in container[
            "volumeMounts"
        ]
        assert volume in common["volumes"]
    # The ConfigMap shows the variables, pointing into the mount: with the files there and
    # CLICKHOUSE_SECURE=true they are valid settings.
    shown = commented_config_map_tls()
    assert set(shown) == set(TLS_VARIABLES) and set(shown) <= Settings.variable_names()
    assert {str(Path(path).parent) for path in shown.values()} == {TLS_MOUNT}
    assert not set(TLS_VARIABLES) & config_map().keys(), "commented out: the Secret is optional"
    enabled = {
        **without_secret_files(config_map()),
        "CLICKHOUSE_SECURE": "true",
        **{name: str(tmp_path) + path for name, path in shown.items()},
    }
    settings = load_settings("movements", environ=enabled)
    assert settings.clickhouse_client_key == str(files["tls.key"])
    assert settings.clickhouse_ca_cert == str(files["ca.crt"])

    # Compose: the TLS directory in the JobManager and every TaskManager at the same path; the
    # JobManager passes the variables through, and .env.example's values are valid settings.
    example = read(COMPOSE / ".env.example")
    documented = dict(re.findall(r"^# (CLICKHOUSE_[A-Z_]+)=(\S+)$", example, re.M))
    for job in registry.JOBS:
        raw = compose_job(job.name)["services"]
        for service in raw.values():
            assert COMPOSE_TLS_VOLUME in service["volumes"]
        jm = environment_of(raw[f"{job.name}-jobmanager"])
        for name in TLS_VARIABLES:
            assert jm[name] == f"${{{name}:-}}"
            assert documented[name].startswith(f"{TLS_MOUNT}/")
        assert jm["CLICKHOUSE_VERIFY"] == "${CLICKHOUSE_VERIFY:-true}"
        env = interpolate_tree(
            jm,
            {
                **COMPOSE_TEST_ENV,
                **documented,
                "CLICKHOUSE_SECURE": "true",
                **{name: str(tmp_path) + documented[name] for name in TLS_VARIABLES},
            },
        )
        env["CLICKHOUSE_PASSWORD_FILE"] = ""
        settings = load_settings(
            job.name, environ={k: v for k, v in env.items() if k != "FLINK_PROPERTIES"}
        )
        assert settings.clickhouse_secure and settings.clickhouse_verify
        assert settings.clickhouse_client_cert == str(files["tls.crt"])
    assert "/infra/compose/clickhouse-tls/" in read(REPO / ".gitignore").splitlines()
