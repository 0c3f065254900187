"""Static checks of the deployment files: images (infra/images), Docker Compose (infra/compose) and
Kubernetes (infra/k8s).

Nothing here needs a Docker engine or a cluster (there was neither where these files were
written): the files are parsed and checked against the Compose Specification schema and against
what the code expects (module names, settings, checkpoint layout, versions). redeploy.sh and the
image entrypoint run against stand-ins for `docker` and the official Flink entrypoint.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from tls_certs import make_pki

from jupiter_common.flink.environment import SILENCE_ENVIRONMENT_DUMP
from jupiter_common.settings import (
    JOB_NAMES,
    SECRET_FILE_SUFFIX,
    SECRET_VARIABLES,
    Settings,
    load_settings,
    secret_file_variable_names,
)

REPO = Path(__file__).resolve().parents[2]
IMAGES = REPO / "infra" / "images"
COMPOSE = REPO / "infra" / "compose"
K8S = REPO / "infra" / "k8s"

VENV_PYTHON = "/opt/jupiter/venv/bin/python"
PYTHON_DRIVER = "org.apache.flink.client.python.PythonDriver"
CHECKPOINT_DIR = "file:///opt/flink/checkpoints"
CHECKPOINT_MOUNT = "/opt/flink/checkpoints"
REST_PORTS = {"base": "8081", "events": "8082", "movements": "8083"}

# Variables set in a Jupiter job container that are not Jupiter settings, each with its reason.
# Everything else set in a job container must be in Settings.variable_names(), so that a typo
# (KAFKA_BOOTSRAP) fails here instead of being silently ignored by the job.
NON_JUPITER_VARIABLES: dict[str, str] = {
    "FLINK_PROPERTIES": "official Flink image entrypoint: `key: value` lines for conf/config.yaml",
    "JUPITER_JOB_MODULE": "job images: the Python module the image runs (python -m ...)",
    "JUPITER_TASKMANAGERS": "infra/images/jupiter-entrypoint.sh: TaskManagers, for the slot count",
    "PYTHONUNBUFFERED": "Python: unbuffered output, so logs reach `docker logs` at once",
    "PATH": "base image: the venv's bin directory first",
}

# Compose interpolation when checking: defaults everywhere, plus the required variables.
COMPOSE_TEST_ENV = {"CLICKHOUSE_PASSWORD": "test-only-password"}

# Secrets reach the job containers as files only: Flink's Python runner logs the whole environment
# of its Python workers (and so of the TaskManager), so no container of a job gets a secret as an
# environment variable. Where the files are:
K8S_SECRETS_MOUNT = "/etc/jupiter/secrets"
COMPOSE_SECRETS_MOUNT = "/run/secrets"
# The ClickHouse TLS files (CA bundle, client certificate and key): in every Flink process, since
# the TaskManagers' Python workers open ClickHouse clients as the driver does.
TLS_MOUNT = "/etc/jupiter/clickhouse-tls"
TLS_VARIABLES = ("CLICKHOUSE_CA_CERT", "CLICKHOUSE_CLIENT_CERT", "CLICKHOUSE_CLIENT_KEY")
COMPOSE_TLS_VOLUME = f"${{CLICKHOUSE_TLS_DIR:-./clickhouse-tls}}:{TLS_MOUNT}:ro"
# Containers that are given a secret as an environment variable all the same, with the reason.
PLAIN_SECRET_EXCEPTIONS: dict[str, str] = {
    "services.yaml:clickhouse": "the ClickHouse server image reads the password it sets up for the"
    " jobs' user from CLICKHOUSE_PASSWORD only; it is no Flink process and logs no environment",
}

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


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(read(path))


def load_yaml_docs(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc is not None]


def compose_job_file(job: str) -> Path:
    return COMPOSE / f"{job}-job.yaml"


def k8s_job_file(job: str) -> Path:
    return K8S / f"{job}-job.yaml"


def job_dockerfile(job: str) -> Path:
    return IMAGES / f"Dockerfile.{job}-job"


def project_version(pyproject: Path) -> str:
    return str(tomllib.loads(read(pyproject))["project"]["version"])


def pinned_flink_version() -> str:
    """The apache-flink version jupiter-common pins: images and manifests must match it."""
    deps = tomllib.loads(read(REPO / "libs" / "jupiter-common" / "pyproject.toml"))["project"]
    found = [d for d in deps["dependencies"] if d.startswith("apache-flink==")]
    assert len(found) == 1, found
    return str(found[0].removeprefix("apache-flink=="))


def known_variables() -> frozenset[str]:
    return Settings.variable_names() | secret_file_variable_names()


def unknown_variables(names: Iterable[str]) -> list[str]:
    """Names that are neither Jupiter settings nor allowlisted non-Jupiter variables."""
    known = known_variables() | NON_JUPITER_VARIABLES.keys()
    return sorted({name for name in names if name not in known})


_INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[^}]*)\}|(?P<named>[A-Za-z_][A-Za-z0-9_]*))"
)
_EXPRESSION = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>.*))?", re.S)


class MissingVariableError(ValueError):
    pass


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Docker Compose's interpolation: $$, ${VAR}, ${VAR:-default}, ${VAR-default},
    ${VAR:?error}, ${VAR?error}. A bare ${VAR} without a default is refused: every variable in
    these files must have a default or say that it is required."""

    def replace(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        expression = match.group("braced") or match.group("named") or ""
        parsed = _EXPRESSION.fullmatch(expression)
        if parsed is None:
            raise ValueError(f"cannot interpolate ${{{expression}}}")
        name, op, arg = parsed.group("name"), parsed.group("op"), parsed.group("arg") or ""
        current = env.get(name)
        if op == ":-":
            return current if current else arg
        if op == "-":
            return current if current is not None else arg
        if op in (":?", "?") and (current is None or (op == ":?" and not current)):
            raise MissingVariableError(f"{name}: {arg}")
        if op is None and current is None:
            raise MissingVariableError(f"${{{name}}} has no default")
        return current or ""

    return _INTERPOLATION.sub(replace, value)


def interpolate_tree(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [interpolate_tree(item, env) for item in node]
    if isinstance(node, dict):
        return {key: interpolate_tree(value, env) for key, value in node.items()}
    return node


def variable_references(text: str) -> set[str]:
    """Names of the variables a compose file interpolates."""
    names = set()
    for match in _INTERPOLATION.finditer(text):
        expression = match.group("braced") or match.group("named")
        if expression:
            parsed = _EXPRESSION.fullmatch(expression)
            assert parsed is not None, expression
            names.add(parsed.group("name"))
    return names


def environment_of(service: Mapping[str, Any]) -> dict[str, str]:
    """A service's environment as a mapping (Compose allows a mapping or a list of K=V)."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = [item.split("=", 1) for item in env]
        assert all(len(pair) == 2 for pair in pairs), env
        return {key: value for key, value in pairs}
    assert isinstance(env, dict), env
    return {str(key): "" if value is None else str(value) for key, value in env.items()}


def flink_properties(text: str) -> dict[str, str]:
    """FLINK_PROPERTIES as the official entrypoint reads it: one `key: value` per line, split at
    the first colon, surrounding blanks dropped."""
    result = {}
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        key, sep, value = line.partition(":")
        assert sep, f"FLINK_PROPERTIES line without a colon: {line!r}"
        assert key == key.strip() and " " not in key, f"bad key in {line!r}"
        result[key] = value.strip()
    return result


def image_is_pinned(ref: str) -> bool:
    """An explicit version tag that is not `latest` (a digest may follow)."""
    name, _, digest = ref.partition("@")
    if digest and re.fullmatch(r"sha256:[0-9a-f]{64}", digest) is None:
        return False
    last = name.rsplit("/", 1)[-1]
    if ":" not in last:
        return False
    tag = last.rsplit(":", 1)[1]
    return (
        tag != "latest"
        and re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", tag) is not None
        and any(char.isdigit() for char in tag)
    )


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped."""
    instructions: list[Instruction] = []
    pending: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending.append(line[:-1].strip())
            continue
        pending.append(line)
        joined = " ".join(pending)
        pending = []
        keyword, _, args = joined.partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip()))
    assert not pending, "Dockerfile ends inside a continuation"
    return instructions


def dockerfile_env(text: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction in parse_dockerfile(text):
        if instruction.keyword != "ENV":
            continue
        tokens = shlex.split(instruction.args)
        if all("=" in token for token in tokens):
            for token in tokens:
                name, _, value = token.partition("=")
                env[name] = value
        else:
            env[tokens[0]] = " ".join(tokens[1:])
    return env


def dockerfile_from_images(text: str) -> list[str]:
    """The images of the FROM lines, with ${ARG}s declared before them resolved."""
    args: dict[str, str] = {}
    images = []
    for instruction in parse_dockerfile(text):
        if instruction.keyword == "ARG":
            name, _, default = instruction.args.partition("=")
            args[name.strip()] = default.strip()
        elif instruction.keyword == "FROM":
            words = [w for w in instruction.args.split() if not w.startswith("--")]
            images.append(interpolate(words[0], args))
    return images


def run_instructions(text: str) -> list[str]:
    return [i.args for i in parse_dockerfile(text) if i.keyword == "RUN"]


def pip_installs(text: str) -> list[str]:
    """The arguments of every `pip install` in the RUN instructions."""
    found = []
    for run in run_instructions(text):
        lexer = shlex.shlex(run, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words = list(lexer)
        for index, word in enumerate(words[:-1]):
            if word.endswith("/pip") and words[index + 1] == "install":
                rest = []
                for arg in words[index + 2 :]:
                    if arg in (";", "&&", "||", "|"):
                        break
                    rest.append(arg)
                found.append(" ".join(rest))
    return found


def k8s_containers(node: Any) -> Iterator[dict[str, Any]]:
    """Every container of every pod spec (or pod template) inside a manifest."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("containers", "initContainers") and isinstance(value, list):
                yield from value
            else:
                yield from k8s_containers(value)
    elif isinstance(node, list):
        for item in node:
            yield from k8s_containers(item)


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

    for job in JOB_NAMES:
        add(compose_job_variables(read(compose_job_file(job))), compose_job_file(job))
        add(dockerfile_variables(read(job_dockerfile(job))), job_dockerfile(job))
        add(k8s_variables(read(k8s_job_file(job))), k8s_job_file(job))
    add(dockerfile_variables(read(IMAGES / "Dockerfile.base")), IMAGES / "Dockerfile.base")
    add(k8s_variables(read(K8S / "config.yaml")), K8S / "config.yaml")
    return found


def compose_spec_schema() -> dict[str, Any]:
    """The Compose Specification JSON schema, as vendored by check-jsonschema."""
    resource = files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json")
    schema: dict[str, Any] = json.loads(resource.read_text(encoding="utf-8"))
    return schema


def compose_files() -> list[Path]:
    return [COMPOSE / "services.yaml", *(compose_job_file(job) for job in JOB_NAMES)]


def yaml_files() -> list[Path]:
    return sorted([*COMPOSE.glob("*.yaml"), *K8S.glob("*.yaml")])


def k8s_manifests() -> list[dict[str, Any]]:
    return [
        doc
        for path in sorted(K8S.glob("*.yaml"))
        if path.name not in ("kustomization.yaml", "kustomizeconfig.yaml")
        for doc in load_yaml_docs(read(path))
    ]


def flink_deployment(job: str) -> dict[str, Any]:
    docs = [d for d in load_yaml_docs(read(k8s_job_file(job))) if d["kind"] == "FlinkDeployment"]
    assert len(docs) == 1
    return docs[0]


def config_map() -> dict[str, str]:
    docs = [d for d in load_yaml_docs(read(K8S / "config.yaml")) if d["kind"] == "ConfigMap"]
    assert len(docs) == 1
    data: dict[str, str] = docs[0]["data"]
    return data


# --------------------------------------------------------------------------------------------
# Every file parses
# --------------------------------------------------------------------------------------------


def test_the_deployment_files_exist() -> None:
    expected = [
        IMAGES / "Dockerfile.base",
        IMAGES / "jupiter-entrypoint.sh",
        COMPOSE / "services.yaml",
        COMPOSE / "redeploy.sh",
        COMPOSE / ".env.example",
        K8S / "config.yaml",
        K8S / "kustomization.yaml",
        *(job_dockerfile(job) for job in JOB_NAMES),
        *(compose_job_file(job) for job in JOB_NAMES),
        *(k8s_job_file(job) for job in JOB_NAMES),
    ]
    assert [p for p in expected if not p.is_file()] == []


@pytest.mark.parametrize("path", yaml_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_yaml_file_parses(path: Path) -> None:
    docs = load_yaml_docs(read(path))
    assert docs, f"{path} is empty"
    assert all(isinstance(doc, dict) for doc in docs)


# --------------------------------------------------------------------------------------------
# Images are pinned
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "pinned"),
    [
        ("flink:2.2.1-scala_2.12-java17", True),
        ("apache/kafka:4.1.1", True),
        ("registry.example.com:5000/team/jupiter-base-job:0.1.0", True),
        ("clickhouse/clickhouse-server:25.8@sha256:" + "a" * 64, True),
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


def all_image_refs() -> dict[str, str]:
    """Image reference -> where it is used."""
    refs: dict[str, str] = {}
    for path in compose_files():
        doc = interpolate_tree(load_yaml(path), COMPOSE_TEST_ENV)
        for name, service in doc["services"].items():
            refs[service["image"]] = f"{path.name}:{name}"
    for doc in k8s_manifests():
        if doc["kind"] == "FlinkDeployment":
            refs[doc["spec"]["image"]] = f"k8s {doc['metadata']['name']}"
    for image in load_yaml(K8S / "kustomization.yaml").get("images", []):
        refs[f"{image['newName']}:{image['newTag']}"] = "kustomization.yaml"
    for dockerfile in sorted(IMAGES.glob("Dockerfile.*")):
        if dockerfile.suffix == ".dockerignore":
            continue
        for ref in dockerfile_from_images(read(dockerfile)):
            refs[ref] = dockerfile.name
    return refs


def test_every_image_is_pinned() -> None:
    refs = all_image_refs()
    flink = pinned_flink_version()
    expected = {
        f"flink:{flink}-scala_2.12-java17",
        "jupiter-base:0.1.0",
        *(f"jupiter-{job}-job:0.1.0" for job in JOB_NAMES),
    }
    assert expected <= refs.keys()
    assert any(ref.startswith("apache/kafka:") for ref in refs)
    assert any(ref.startswith("clickhouse/clickhouse-server:") for ref in refs)
    assert {ref: where for ref, where in refs.items() if not image_is_pinned(ref)} == {}


def test_images_match_the_versions_of_the_code() -> None:
    flink = pinned_flink_version()
    base_from = dockerfile_from_images(read(IMAGES / "Dockerfile.base"))
    assert base_from == [f"flink:{flink}-scala_2.12-java17"]
    common = project_version(REPO / "libs" / "jupiter-common" / "pyproject.toml")
    for job in JOB_NAMES:
        version = project_version(REPO / "jobs" / f"{job}-job" / "pyproject.toml")
        assert dockerfile_from_images(read(job_dockerfile(job))) == [f"jupiter-base:{common}"]
        compose = interpolate_tree(load_yaml(compose_job_file(job)), COMPOSE_TEST_ENV)
        assert {s["image"] for s in compose["services"].values()} == {
            f"jupiter-{job}-job:{version}"
        }
        assert flink_deployment(job)["spec"]["image"] == f"jupiter-{job}-job:{version}"
    kustomize_images = {
        i["name"]: i["newTag"] for i in load_yaml(K8S / "kustomization.yaml")["images"]
    }
    assert kustomize_images == {
        f"jupiter-{job}-job": project_version(REPO / "jobs" / f"{job}-job" / "pyproject.toml")
        for job in JOB_NAMES
    }


# --------------------------------------------------------------------------------------------
# Environment variables of job containers are known to the code
# --------------------------------------------------------------------------------------------


def test_every_job_container_variable_is_a_setting_or_allowlisted() -> None:
    found = all_job_container_variables()
    unknown = unknown_variables(found)
    assert unknown == [], {name: sorted(found[name]) for name in unknown}
    # Not vacuous: the usual settings are found in each kind of file.
    for name, where in [
        ("KAFKA_BOOTSTRAP", "infra/compose/movements-job.yaml"),
        ("KAFKA_BOOTSTRAP", "infra/images/Dockerfile.base"),
        ("KAFKA_BOOTSTRAP", "infra/k8s/config.yaml"),
        ("FLINK_PARALLELISM", "infra/k8s/movements-job.yaml"),
        ("JUPITER_JOB_MODULE", "infra/images/Dockerfile.movements-job"),
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
        (
            compose_job_file("movements"),
            compose_job_variables,
            "      KAFKA_BOOTSTRAP: ",
            "      KAFKA_BOOTSRAP: ",
        ),
        (IMAGES / "Dockerfile.base", dockerfile_variables, "KAFKA_BOOTSTRAP=", "KAFKA_BOOTSRAP="),
        (K8S / "config.yaml", k8s_variables, "  KAFKA_BOOTSTRAP: ", "  KAFKA_BOOTSRAP: "),
        (
            k8s_job_file("movements"),
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
    for path in compose_files():
        found += plain_secrets_in_compose(read(path), path.name)
    for path in sorted(K8S.glob("*.yaml")):
        found += plain_secrets_in_k8s(read(path), path.name)
    for path in sorted(IMAGES.glob("Dockerfile.*")):
        if path.suffix != ".dockerignore":
            found += plain_secrets_in_dockerfile(read(path), path.name)
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
            compose_job_file("movements"),
            plain_secrets_in_compose,
            "      CLICKHOUSE_PASSWORD_FILE: /run/secrets/clickhouse_password\n",
            "      CLICKHOUSE_PASSWORD: ${CLICKHOUSE_PASSWORD:-}\n",
        ),
        (
            compose_job_file("movements"),
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
            k8s_job_file("movements"),
            plain_secrets_in_k8s,
            "                name: jupiter-config\n",
            "                name: jupiter-config\n            - secretRef:\n"
            "                name: jupiter-secrets\n",
        ),
        (
            k8s_job_file("movements"),
            plain_secrets_in_k8s,
            '              value: "2"\n',
            '              value: "2"\n            - name: CH_PW\n              valueFrom:\n'
            "                secretKeyRef: {name: jupiter-secrets, key: CLICKHOUSE_PASSWORD}\n",
        ),
        (
            IMAGES / "Dockerfile.base",
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


def test_the_secret_is_mounted_as_files_on_the_jobmanager_only() -> None:
    config = config_map()
    files = {k: v for k, v in config.items() if k in secret_file_variable_names()}
    assert files, "the ConfigMap says where the secret files are"
    assert {str(Path(path).parent) for path in files.values()} == {K8S_SECRETS_MOUNT}
    for job in JOB_NAMES:
        spec = flink_deployment(job)["spec"]
        common = spec["podTemplate"]["spec"]
        jm = spec["jobManager"]["podTemplate"]["spec"]
        assert "podTemplate" not in spec["taskManager"]
        # Nothing of the Secret in the pod template both pods get.
        assert "jupiter-secrets" not in json.dumps(common)
        assert "jupiter-secrets" not in json.dumps(spec["taskManager"])
        # The JobManager's template repeats the common entries first, in the same order, so the
        # operator's merge (by position by default, by name when configured) gives one result.
        (jm_container,) = jm["containers"]
        (container,) = common["containers"]
        assert jm_container["name"] == container["name"] == "flink-main-container"
        mounts, volumes = jm_container["volumeMounts"], jm["volumes"]
        assert mounts[: len(container["volumeMounts"])] == container["volumeMounts"]
        assert volumes[: len(common["volumes"])] == common["volumes"]
        secret_mounts = mounts[len(container["volumeMounts"]) :]
        secret_volumes = volumes[len(common["volumes"]) :]
        assert secret_mounts == [
            {"name": "secrets", "mountPath": K8S_SECRETS_MOUNT, "readOnly": True}
        ]
        assert secret_volumes == [
            {"name": "secrets", "secret": {"secretName": "jupiter-secrets", "defaultMode": 0o440}}
        ]
        assert set(jm_container) == {"name", "volumeMounts"}, "env and envFrom stay common"
    # Compose: the secret is a file of the JobManager, where CLICKHOUSE_PASSWORD_FILE points.
    for job in JOB_NAMES:
        doc = load_yaml(compose_job_file(job))
        for name, service in doc["services"].items():
            env = environment_of(service)
            given = service.get("secrets", [])
            assert given == (["clickhouse_password"] if name.endswith("jobmanager") else []), name
            assert {env[k] for k in env if k in secret_file_variable_names()} == {
                f"{COMPOSE_SECRETS_MOUNT}/{secret}" for secret in given
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
    for job in JOB_NAMES:
        spec = flink_deployment(job)["spec"]
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
    for job in JOB_NAMES:
        raw = load_yaml(compose_job_file(job))["services"]
        for service in raw.values():
            assert COMPOSE_TLS_VOLUME in service["volumes"]
        jm = environment_of(raw[f"{job}-jobmanager"])
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
            job, environ={k: v for k, v in env.items() if k != "FLINK_PROPERTIES"}
        )
        assert settings.clickhouse_secure and settings.clickhouse_verify
        assert settings.clickhouse_client_cert == str(files["tls.crt"])
    assert "/infra/compose/clickhouse-tls/" in read(REPO / ".gitignore").splitlines()


def test_the_image_silences_the_environment_dump_in_every_log_configuration() -> None:
    text = read(IMAGES / "Dockerfile.base")
    (run,) = [r for r in run_instructions(text) if "log4j" in r]
    assert "for conf in /opt/flink/conf/log4j*.properties" in run
    for line in SILENCE_ENVIRONMENT_DUMP.splitlines():
        assert f"'{line}'" in run
    assert '>> "$conf"' in run


# --------------------------------------------------------------------------------------------
# Dockerfiles
# --------------------------------------------------------------------------------------------


def test_base_image_installs_no_embedded_extra() -> None:
    text = read(IMAGES / "Dockerfile.base")
    installs = pip_installs(text)
    assert any("apache-flink==" in i for i in installs), installs
    assert any("/opt/jupiter/src/jupiter-common" in i for i in installs), installs
    for install in installs:
        assert "embedded" not in install and "chdb" not in install.lower(), install
        assert "[" not in install, f"no extras in the image: {install}"
    flink = pinned_flink_version()
    assert any(f'"apache-flink=={flink}"' in i or f"apache-flink=={flink}" in i for i in installs)


def test_base_image_has_the_kafka_connector_pinned_and_verified() -> None:
    text = read(IMAGES / "Dockerfile.base")
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


def test_base_image_points_pyflink_at_the_venv_and_keeps_the_container_defaults() -> None:
    text = read(IMAGES / "Dockerfile.base")
    assert f"-Dpython.executable={VENV_PYTHON}" in text
    assert f"-Dpython.client.executable={VENV_PYTHON}" in text
    env = dockerfile_env(text)
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
    entrypoint = [i.args for i in parse_dockerfile(text) if i.keyword == "ENTRYPOINT"]
    assert entrypoint == ['["/opt/jupiter/bin/jupiter-entrypoint.sh"]']


@pytest.mark.parametrize("job", JOB_NAMES)
def test_job_image_installs_exactly_its_own_package(job: str) -> None:
    text = read(job_dockerfile(job))
    module = f"jupiter_{job}"
    assert pip_installs(text) == [
        f"--no-cache-dir --disable-pip-version-check --no-deps /opt/jupiter/src/{job}-job"
    ]
    copies = [i.args for i in parse_dockerfile(text) if i.keyword == "COPY"]
    assert copies == [f"jobs/{job}-job /opt/jupiter/src/{job}-job"]
    assert dockerfile_env(text) == {"JUPITER_JOB_MODULE": module}
    cmd = json.loads(next(i.args for i in parse_dockerfile(text) if i.keyword == "CMD"))
    assert cmd[:3] == ["standalone-job", "--job-classname", PYTHON_DRIVER]
    assert cmd[cmd.index("-pym") + 1] == module
    assert cmd[cmd.index("-pyclientexec") + 1] == VENV_PYTHON
    assert (REPO / "jobs" / f"{job}-job" / "src" / module / "__main__.py").is_file()
    others = [other for other in JOB_NAMES if other != job]
    instructions = " ".join(i.args for i in parse_dockerfile(text))
    assert not [other for other in others if f"jupiter_{other}" in instructions]


@pytest.mark.parametrize("dockerfile", ["base", *(f"{job}-job" for job in JOB_NAMES)])
def test_build_context_keeps_what_the_dockerfile_copies(dockerfile: str) -> None:
    ignore = IMAGES / f"Dockerfile.{dockerfile}.dockerignore"
    patterns = [
        line.strip() for line in read(ignore).splitlines() if line.strip() and line[0] != "#"
    ]
    assert patterns[0] == "*", "allowlist: exclude everything, then re-include"
    included = [p[1:] for p in patterns if p.startswith("!")]
    for copy in (i for i in parse_dockerfile(read(IMAGES / f"Dockerfile.{dockerfile}"))):
        if copy.keyword != "COPY":
            continue
        source = copy.args.split()[0]
        assert (REPO / source).exists(), source
        assert any(p == source or p.startswith(source + "/") for p in included), source


def renamed(text: str, job: str) -> str:
    """A movements file made into ``job``'s, the way the job files are kept in step."""
    return text.replace("movements", job).replace("MOVEMENTS", job.upper())


@pytest.mark.parametrize("job", ["base", "events"])
def test_job_dockerfiles_differ_only_in_the_job(job: str) -> None:
    assert read(job_dockerfile(job)) == renamed(read(job_dockerfile("movements")), job)


# --------------------------------------------------------------------------------------------
# The image entrypoint: slots per TaskManager
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
    script = fake_entrypoint(tmp_path)
    environ = {k: v for k, v in os.environ.items() if k not in ("FLINK_PARALLELISM",)}
    environ.pop("TASK_MANAGER_NUMBER_OF_TASK_SLOTS", None)
    result = subprocess.run(
        [str(script), command],
        env={**environ, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    assert expected in result.stdout.splitlines()[-1]


def test_entrypoint_refuses_a_non_number(tmp_path: Path) -> None:
    script = fake_entrypoint(tmp_path)
    result = subprocess.run(
        [str(script), "taskmanager"],
        env={**os.environ, "FLINK_PARALLELISM": "a[$(touch pwned)]"},
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "FLINK_PARALLELISM" in result.stderr
    assert not (tmp_path / "pwned").exists()


# --------------------------------------------------------------------------------------------
# Docker Compose
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", compose_files(), ids=lambda p: p.name)
def test_compose_file_matches_the_compose_specification(path: Path) -> None:
    schema = compose_spec_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    raw = load_yaml(path)
    for doc in (raw, interpolate_tree(raw, COMPOSE_TEST_ENV)):
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(doc)]
        assert errors == []


@pytest.mark.parametrize("path", compose_files(), ids=lambda p: p.name)
def test_compose_file_structure(path: Path) -> None:
    doc = interpolate_tree(load_yaml(path), COMPOSE_TEST_ENV)
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
                continue  # the one host directory: TLS files (see test_clickhouse_tls_files_...)
            source = volume.split(":", 1)[0]
            assert not source.startswith((".", "/")), f"{name}: named volumes only ({volume})"
            assert source in declared_volumes, f"{name}: volume {source} is not declared"
        assert set(service["networks"]) <= declared_networks, name
    assert declared_networks == {"jupiter"}
    assert doc["networks"]["jupiter"]["name"] == "jupiter"


def test_services_file_creates_the_shared_network_and_services() -> None:
    doc = interpolate_tree(load_yaml(COMPOSE / "services.yaml"), COMPOSE_TEST_ENV)
    assert doc["networks"]["jupiter"].get("external") is not True
    services = doc["services"]
    assert set(services) == {"kafka", "clickhouse", "create-topics"}
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


@pytest.mark.parametrize("job", JOB_NAMES)
def test_compose_job_file_is_an_application_cluster_of_one_job(job: str, tmp_path: Path) -> None:
    doc = interpolate_tree(load_yaml(compose_job_file(job)), COMPOSE_TEST_ENV)
    prefix = job.upper()
    assert doc["name"] == f"jupiter-{job}"
    assert doc["networks"]["jupiter"] == {"name": "jupiter", "external": True}
    jm_name, tm_name = f"{job}-jobmanager", f"{job}-taskmanager"
    assert set(doc["services"]) == {jm_name, tm_name}
    jm, tm = doc["services"][jm_name], doc["services"][tm_name]

    command = jm["command"]
    assert command[:3] == ["standalone-job", "--job-classname", PYTHON_DRIVER]
    assert command[command.index("-pym") + 1] == f"jupiter_{job}"
    assert command[command.index("-pyclientexec") + 1] == VENV_PYTHON
    assert command[command.index("-pyexec") + 1] == VENV_PYTHON
    assert tm["command"] == ["taskmanager"]

    raw = load_yaml(compose_job_file(job))["services"]
    raw_jm, raw_tm = environment_of(raw[jm_name]), environment_of(raw[tm_name])
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
    assert load_yaml(compose_job_file(job))["secrets"] == {
        "clickhouse_password": {"environment": "CLICKHOUSE_PASSWORD"}
    }
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

    assert jm["ports"] == [f"127.0.0.1:{REST_PORTS[job]}:8081"]
    assert "localhost:8081" in " ".join(jm["healthcheck"]["test"])
    assert tm["depends_on"] == {jm_name: {"condition": "service_started"}}

    # The JobManager's environment is a valid configuration of this job, with the secret file
    # Compose makes from CLICKHOUSE_PASSWORD.
    secret = tmp_path / "clickhouse_password"
    secret.write_text(COMPOSE_TEST_ENV["CLICKHOUSE_PASSWORD"])
    jm_env["CLICKHOUSE_PASSWORD_FILE"] = str(secret)
    settings = load_settings(
        job, environ={k: v for k, v in jm_env.items() if k != "FLINK_PROPERTIES"}
    )
    assert settings.job_name == f"jupiter-{job}"
    assert settings.checkpoint_root == f"{CHECKPOINT_DIR}/{job}/jupiter-{job}"
    assert (
        settings.clickhouse_password.get_secret_value() == COMPOSE_TEST_ENV["CLICKHOUSE_PASSWORD"]
    )
    assert not settings.embedded


@pytest.mark.parametrize("job", ["base", "events"])
def test_compose_job_files_differ_only_in_the_job(job: str) -> None:
    movements = read(compose_job_file("movements"))
    port = f":-{REST_PORTS['movements']}}}"
    assert movements.count(port) == 1
    expected = renamed(movements, job).replace(port, f":-{REST_PORTS[job]}}}")
    assert read(compose_job_file(job)) == expected


def test_env_example_documents_every_compose_variable() -> None:
    example = read(COMPOSE / ".env.example")
    documented = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]*)=", example, re.M))
    referenced = set()
    for path in compose_files():
        for name in variable_references(read(path)):
            # Per-job variables are documented once, for movements.
            referenced.add(re.sub(r"^(BASE|EVENTS)_", "MOVEMENTS_", name))
    assert sorted(referenced - documented) == []
    assert "CLICKHOUSE_PASSWORD=change-me" in example


# --------------------------------------------------------------------------------------------
# redeploy.sh, against a stand-in for `docker`
# --------------------------------------------------------------------------------------------

FAKE_DOCKER = r'''
"""Stand-in for `docker compose -f FILE (exec -T SERVICE curl ... URL | up ...)`: a Flink
JobManager REST API with one running job, and `up`, which starts a new job restored from the
savepoint. Every call is appended to calls.jsonl."""
import json, os, sys
from pathlib import Path

here = Path(os.environ["FAKE_DOCKER_DIR"])
state_file = here / "state.json"
state = json.loads(state_file.read_text()) if state_file.exists() else {"phase": "running"}
args = sys.argv[1:]
assert args[:2] == ["compose", "-f"], args
rest = args[3:]
call = {"compose_file": args[2], "args": rest}
OLD, NEW, TRIGGER = "a" * 32, "b" * 32, "trigger-1"
SAVEPOINT = "file:/opt/flink/checkpoints/movements/jupiter-movements/savepoints/savepoint-aaaaaa-1"

def answer(body):
    print(json.dumps(body))

if rest[0] == "up":
    call["env"] = {k: v for k, v in os.environ.items() if k.startswith("MOVEMENTS_")}
    state["phase"] = "redeployed"
elif rest[0] == "exec":
    if os.environ.get("FAKE_DOCKER_DOWN") and state["phase"] != "redeployed":
        sys.exit(1)
    curl = rest[3:]
    url = curl[-1]
    path = url.removeprefix("http://localhost:8081")
    call["path"] = path
    if "-d" in curl:
        call["body"] = json.loads(curl[curl.index("-d") + 1])
        call["method"] = curl[curl.index("-X") + 1]
    phase = state["phase"]
    if path == "/overview":
        answer({"taskmanagers": 1})
    elif path == "/jobs/overview":
        jobs = {
            "running": [] if os.environ.get("FAKE_NO_JOB") else [
                {"jid": OLD, "name": "jupiter-movements", "state": "RUNNING"}
            ],
            "stopped": [{"jid": OLD, "name": "jupiter-movements", "state": "FINISHED"}],
            "redeployed": [{"jid": NEW, "name": "jupiter-movements", "state": "RUNNING"}],
        }[phase]
        answer({"jobs": jobs})
    elif path == f"/jobs/{OLD}/stop":
        answer({"request-id": TRIGGER})
        if not os.environ.get("FAKE_SAVEPOINT_FAILS"):
            state["phase"] = "stopped"
    elif path == f"/jobs/{OLD}/savepoints/{TRIGGER}":
        if os.environ.get("FAKE_SAVEPOINT_FAILS"):
            answer({"status": {"id": "COMPLETED"},
                    "operation": {"failure-cause": {"class": "x", "stack-trace": "boom\nat x"}}})
        else:
            answer({"status": {"id": "COMPLETED"}, "operation": {"location": SAVEPOINT}})
    elif path == f"/jobs/{NEW}/checkpoints":
        answer({"latest": {"restored": {"external_path": SAVEPOINT, "is_savepoint": True}}})
    else:
        sys.exit(22)
else:
    sys.exit(f"unexpected: {args}")
with (here / "calls.jsonl").open("a") as calls:
    calls.write(json.dumps(call) + "\n")
state_file.write_text(json.dumps(state))
'''


def run_redeploy(
    tmp_path: Path, *args: str, env: Mapping[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    docker = bin_dir / "docker"
    docker.write_text(f"#!{sys.executable}\n{FAKE_DOCKER}")
    docker.chmod(docker.stat().st_mode | stat.S_IEXEC)
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MOVEMENTS_", "BASE_", "EVENTS_", "FAKE_"))
    }
    environ.update(
        PATH=f"{bin_dir}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{environ['PATH']}",
        FAKE_DOCKER_DIR=str(tmp_path),
        **(env or {}),
    )
    result = subprocess.run(
        ["bash", str(COMPOSE / "redeploy.sh"), *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    calls_file = tmp_path / "calls.jsonl"
    calls = (
        [json.loads(line) for line in read(calls_file).splitlines()] if calls_file.exists() else []
    )
    return result, calls


def test_redeploy_stops_with_a_savepoint_then_recreates_with_the_new_scale(tmp_path: Path) -> None:
    result, calls = run_redeploy(
        tmp_path, "movements", "--parallelism", "3", "--taskmanagers", "2", "--timeout", "20"
    )
    assert result.returncode == 0, result.stderr
    assert {call["compose_file"] for call in calls} == {str(compose_job_file("movements"))}
    stops = [call for call in calls if call.get("path", "").endswith("/stop")]
    assert len(stops) == 1
    # The savepoint goes where the job looks for it on its next start (restore.py's layout).
    root = load_settings("movements", environ={"FLINK_CHECKPOINT_DIR": CHECKPOINT_DIR})
    assert stops[0]["method"] == "POST"
    assert stops[0]["body"] == {
        "drain": True,
        "targetDirectory": f"{root.checkpoint_root}/savepoints",
    }
    ups = [call for call in calls if call["args"][0] == "up"]
    assert ups == [
        {
            "compose_file": str(compose_job_file("movements")),
            "args": [
                "up",
                "-d",
                "--force-recreate",
                "movements-jobmanager",
                "movements-taskmanager",
            ],
            "env": {"MOVEMENTS_PARALLELISM": "3", "MOVEMENTS_TASKMANAGERS": "2"},
        }
    ]
    assert calls.index(ups[0]) > calls.index(stops[0])
    assert "resumed from the savepoint" in result.stdout


def test_redeploy_keeps_the_job_running_when_the_savepoint_fails(tmp_path: Path) -> None:
    result, calls = run_redeploy(
        tmp_path, "movements", "--timeout", "20", env={"FAKE_SAVEPOINT_FAILS": "1"}
    )
    assert result.returncode == 1
    assert "savepoint failed" in result.stderr and "boom" in result.stderr
    assert not [call for call in calls if call["args"][0] == "up"]


def test_redeploy_refuses_when_no_jobmanager_answers(tmp_path: Path) -> None:
    result, calls = run_redeploy(tmp_path, "movements", env={"FAKE_DOCKER_DOWN": "1"})
    assert result.returncode == 1
    assert "--no-savepoint" in result.stderr
    assert not [call for call in calls if call["args"][0] == "up"]


@pytest.mark.parametrize(
    ("env", "args"),
    [({"FAKE_NO_JOB": "1"}, []), ({"FAKE_DOCKER_DOWN": "1"}, ["--no-savepoint"])],
    ids=["no-running-job", "no-savepoint"],
)
def test_redeploy_without_a_job_to_stop_just_recreates(
    tmp_path: Path, env: dict[str, str], args: list[str]
) -> None:
    result, calls = run_redeploy(tmp_path, "movements", *args, env=env)
    assert result.returncode == 0, result.stderr
    assert not [call for call in calls if call.get("path", "").endswith("/stop")]
    assert [call["args"][0] for call in calls].count("up") == 1
    assert "restored from:" in result.stdout


@pytest.mark.parametrize(
    "args", [[], ["nope"], ["movements", "--parallelism", "0"], ["movements", "--parallelism"]]
)
def test_redeploy_rejects_bad_arguments(tmp_path: Path, args: list[str]) -> None:
    result, calls = run_redeploy(tmp_path, *args)
    assert result.returncode in (1, 2)
    assert calls == []


@pytest.mark.parametrize(
    "script", [COMPOSE / "redeploy.sh", IMAGES / "jupiter-entrypoint.sh"], ids=lambda p: p.name
)
def test_shell_scripts_are_shellcheck_clean(script: Path) -> None:
    text = read(script)
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    assert os.access(script, os.X_OK), f"{script} is not executable"
    subprocess.run(["bash", "-n", str(script)], check=True)
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (it comes with the hatch environment)")
    result = subprocess.run([shellcheck, str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


# --------------------------------------------------------------------------------------------
# Kubernetes
# --------------------------------------------------------------------------------------------


def test_k8s_manifests_have_the_required_fields() -> None:
    manifests = k8s_manifests()
    kinds = sorted(doc["kind"] for doc in manifests)
    assert kinds == sorted(
        ["ConfigMap", "Secret", *["FlinkDeployment", "PersistentVolumeClaim"] * len(JOB_NAMES)]
    )
    for doc in manifests:
        assert doc["apiVersion"] and doc["kind"] and doc["metadata"]["name"], doc
        assert "spec" in doc or doc["kind"] in ("ConfigMap", "Secret"), doc["kind"]


@pytest.mark.parametrize("job", JOB_NAMES)
def test_flink_deployment(job: str) -> None:
    doc = flink_deployment(job)
    flink = pinned_flink_version()
    assert doc["apiVersion"] == "flink.apache.org/v1beta1"
    assert doc["metadata"]["name"] == f"jupiter-{job}"
    spec = doc["spec"]
    assert image_is_pinned(spec["image"])
    assert spec["flinkVersion"] == "v" + "_".join(flink.split(".")[:2])
    job_spec = spec["job"]
    assert job_spec["jarURI"] == f"local:///opt/flink/opt/flink-python-{flink}.jar"
    assert job_spec["entryClass"] == PYTHON_DRIVER
    assert job_spec["args"] == ["-pyclientexec", VENV_PYTHON, "-pym", f"jupiter_{job}"]
    assert isinstance(job_spec["parallelism"], int) and job_spec["parallelism"] >= 1
    assert job_spec["upgradeMode"] in ("savepoint", "last-state", "stateless")
    assert job_spec["upgradeMode"] == "savepoint"
    for role in ("jobManager", "taskManager"):
        assert {"memory", "cpu"} <= spec[role]["resource"].keys(), role

    conf = spec["flinkConfiguration"]
    assert all(isinstance(value, str) for value in conf.values()), "values are strings"
    settings = load_settings(job, environ=without_secret_files(config_map()))
    assert conf["execution.checkpointing.dir"] == settings.checkpoint_root
    assert conf["execution.checkpointing.savepoint-dir"] == f"{settings.checkpoint_root}/savepoints"
    assert conf["state.backend.type"] == "hashmap"
    assert conf["python.executable"] == conf["python.client.executable"] == VENV_PYTHON
    assert int(conf["taskmanager.numberOfTaskSlots"]) >= 1
    assert conf["high-availability.storageDir"].startswith(f"{CHECKPOINT_DIR}/{job}/")

    containers = list(k8s_containers(spec["podTemplate"]))
    assert [c["name"] for c in containers] == ["flink-main-container"]
    container = containers[0]
    assert container["envFrom"] == [{"configMapRef": {"name": "jupiter-config"}}]
    env = {item["name"]: item["value"] for item in container["env"]}
    assert env == {"FLINK_PARALLELISM": str(job_spec["parallelism"])}
    assert container["volumeMounts"] == [
        {"name": "checkpoints", "mountPath": CHECKPOINT_MOUNT},
        {"name": "clickhouse-tls", "mountPath": TLS_MOUNT, "readOnly": True},
    ]
    claim = spec["podTemplate"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"]
    pvcs = [
        d
        for d in load_yaml_docs(read(k8s_job_file(job)))
        if d["kind"] == "PersistentVolumeClaim" and d["metadata"]["name"] == claim
    ]
    assert len(pvcs) == 1
    assert pvcs[0]["spec"]["accessModes"] == ["ReadWriteMany"]


def without_secret_files(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` without the ``*_FILE`` variables, whose files exist in the pods only."""
    return {k: v for k, v in env.items() if k not in secret_file_variable_names()}


def test_config_map_and_secret(tmp_path: Path) -> None:
    data = config_map()
    assert all(isinstance(value, str) for value in data.values())
    # The operator restores the job (upgradeMode savepoint, HA): the job must not pick its own.
    assert data["FLINK_RESUME"] == "none"
    assert "FLINK_RESTORE_PATH" not in data
    assert data["FLINK_CHECKPOINT_DIR"] == CHECKPOINT_DIR
    secrets = [d for d in load_yaml_docs(read(K8S / "config.yaml")) if d["kind"] == "Secret"]
    assert [s["metadata"]["name"] for s in secrets] == ["jupiter-secrets"]
    assert secrets[0]["stringData"] == {"CLICKHOUSE_PASSWORD": "CHANGE_ME"}, "a placeholder only"
    assert "data" not in secrets[0]
    # Each key of the Secret is a file of the mount, read through <KEY>_FILE.
    files = {k: v for k, v in data.items() if k in secret_file_variable_names()}
    assert files == {
        f"{key}{SECRET_FILE_SUFFIX}": f"{K8S_SECRETS_MOUNT}/{key}"
        for key in secrets[0]["stringData"]
    }
    # Valid values; the job reads the password from the file the Secret becomes.
    pod = tmp_path / K8S_SECRETS_MOUNT.lstrip("/")
    pod.mkdir(parents=True)
    for key, value in secrets[0]["stringData"].items():
        (pod / key).write_text(value)
    mounted = {k: str(tmp_path) + v if k in files else v for k, v in data.items()}
    for job in JOB_NAMES:
        assert load_settings(job, environ=mounted).clickhouse_password.get_secret_value() == (
            "CHANGE_ME"
        )


def test_kustomization_lists_every_manifest() -> None:
    kustomization = load_yaml(K8S / "kustomization.yaml")
    manifests = sorted(
        p.name
        for p in K8S.glob("*.yaml")
        if p.name not in ("kustomization.yaml", "kustomizeconfig.yaml")
    )
    assert sorted(kustomization["resources"]) == manifests
    assert kustomization["configurations"] == ["kustomizeconfig.yaml"]
    replaced = {r["source"]["name"] for r in kustomization["replacements"]}
    assert replaced == {f"jupiter-{job}" for job in JOB_NAMES}


@pytest.mark.parametrize("job", ["base", "events"])
def test_k8s_job_manifests_differ_only_in_the_job_and_its_scale(job: str) -> None:
    def unscaled(text: str) -> str:
        text = re.sub(r"numberOfTaskSlots: \"\d+\"", 'numberOfTaskSlots: "<n>"', text)
        text = re.sub(r"value: \"\d+\"", 'value: "<n>"', text)
        return re.sub(r"parallelism: \d+", "parallelism: <n>", text)

    movements = renamed(read(k8s_job_file("movements")), job)
    assert unscaled(read(k8s_job_file(job))) == unscaled(movements)


def test_kustomize_renders_the_parallelism_into_the_jobs() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    result = subprocess.run(
        [kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    rendered = load_yaml_docs(result.stdout)
    deployments = [d for d in rendered if d["kind"] == "FlinkDeployment"]
    assert len(deployments) == len(JOB_NAMES)
    for doc in deployments:
        container = next(k8s_containers(doc["spec"]["podTemplate"]))
        env = {item["name"]: item["value"] for item in container["env"]}
        assert env["FLINK_PARALLELISM"] == str(doc["spec"]["job"]["parallelism"])
        assert image_is_pinned(doc["spec"]["image"])
