"""Helpers of the deployment files' static checks (tests/unit/test_images.py,
test_compose_files.py, test_k8s_files.py, test_deploy_variables.py, test_generated_files.py).

Nothing here needs a Docker engine or a cluster: the files are parsed, Compose's `extends` and
kustomize's JSON patches are applied here, following their specifications for what these files use.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from jupiter_common.registry import Job

REPO = Path(__file__).resolve().parents[1]
IMAGES = REPO / "infra" / "images"
DOCKERFILE = IMAGES / "Dockerfile"
COMPOSE = REPO / "infra" / "compose"
K8S = REPO / "infra" / "k8s"

VENV_PYTHON = "/opt/jupiter/venv/bin/python"
PYTHON_DRIVER = "org.apache.flink.client.python.PythonDriver"
CHECKPOINT_DIR = "file:///opt/flink/checkpoints"
CHECKPOINT_MOUNT = "/opt/flink/checkpoints"
# Compose interpolation when checking: defaults everywhere, plus the required variables.
COMPOSE_TEST_ENV = {"CLICKHOUSE_PASSWORD": "test-only-password"}
# Secrets reach the job containers as files only (see test_deploy_variables.py). Where:
K8S_SECRETS_MOUNT = "/etc/jupiter/secrets"
COMPOSE_SECRETS_MOUNT = "/run/secrets"
# The ClickHouse TLS files (CA bundle, client certificate and key): in every Flink process, since
# the TaskManagers' Python workers open ClickHouse clients as the driver does.
TLS_MOUNT = "/etc/jupiter/clickhouse-tls"
TLS_VARIABLES = ("CLICKHOUSE_CA_CERT", "CLICKHOUSE_CLIENT_CERT", "CLICKHOUSE_CLIENT_KEY")
COMPOSE_TLS_VOLUME = f"${{CLICKHOUSE_TLS_DIR:-./clickhouse-tls}}:{TLS_MOUNT}:ro"


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(read(path))


def load_yaml_docs(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc is not None]


def project_version(pyproject: Path) -> str:
    return str(tomllib.loads(read(pyproject))["project"]["version"])


def pinned_flink_version() -> str:
    """The apache-flink version jupiter-common pins: images and manifests must match it."""
    deps = tomllib.loads(read(REPO / "libs" / "jupiter-common" / "pyproject.toml"))["project"]
    found = [d for d in deps["dependencies"] if d.startswith("apache-flink==")]
    assert len(found) == 1, found
    return str(found[0].removeprefix("apache-flink=="))


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
    """The images of the FROM lines, with ${ARG}s declared before them resolved; a FROM of an
    earlier stage (``FROM base AS job``) is no image."""
    args: dict[str, str] = {}
    images: list[str] = []
    stages: set[str] = set()
    for instruction in parse_dockerfile(text):
        if instruction.keyword == "ARG" and not images:
            name, _, default = instruction.args.partition("=")
            args[name.strip()] = default.strip()
        elif instruction.keyword == "FROM":
            words = [w for w in instruction.args.split() if not w.startswith("--")]
            if len(words) == 3 and words[1].upper() == "AS":
                stages.add(words[2])
            if words[0] not in stages - {words[-1]}:
                images.append(interpolate(words[0], args))
    return images


def dockerfile_stages(text: str) -> dict[str, list[Instruction]]:
    """The instructions of each named stage (``FROM ... AS name``), FROM lines excluded."""
    stages: dict[str, list[Instruction]] = {}
    current: list[Instruction] | None = None
    for instruction in parse_dockerfile(text):
        if instruction.keyword == "FROM":
            words = instruction.args.split()
            current = stages.setdefault(words[-1] if len(words) == 3 else words[0], [])
        elif current is not None:
            current.append(instruction)
    return stages


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


# --------------------------------------------------------------------------------------------
# Compose: the job files extend the template job-cluster.yaml
# --------------------------------------------------------------------------------------------

# Sequences Compose merges (base entries first, then the extending service's new ones); any other
# sequence (command, healthcheck.test ...) is replaced, mappings are merged key by key.
_MERGED_SEQUENCES = frozenset({"ports", "secrets", "volumes", "networks", "expose", "configs"})


def merge_service(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(merged.get(key), dict) and isinstance(value, dict):
            merged[key] = merge_service(merged[key], value)
        elif key in _MERGED_SEQUENCES and isinstance(merged.get(key), list):
            merged[key] = merged[key] + [item for item in value if item not in merged[key]]
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def resolve_extends(doc: Mapping[str, Any], directory: Path) -> dict[str, Any]:
    """``doc`` with every ``extends: {file, service}`` replaced by the merged service."""
    services = {}
    for name, service in doc["services"].items():
        extends = service.get("extends")
        if extends is not None:
            base = load_yaml(directory / extends["file"])["services"][extends["service"]]
            assert "extends" not in base, "one level of extends"
            service = merge_service(base, {k: v for k, v in service.items() if k != "extends"})
        services[name] = service
    return {**doc, "services": services}


def compose_job_file(job: str) -> Path:
    return COMPOSE / f"{job}-job.yaml"


def compose_job(job: str) -> dict[str, Any]:
    """A job's Compose file as Compose sees it: extends resolved, variables not interpolated."""
    return resolve_extends(load_yaml(compose_job_file(job)), COMPOSE)


def compose_spec_schema() -> dict[str, Any]:
    """The Compose Specification JSON schema, as vendored by check-jsonschema."""
    resource = files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json")
    schema: dict[str, Any] = json.loads(resource.read_text(encoding="utf-8"))
    return schema


# --------------------------------------------------------------------------------------------
# Kubernetes: one base (infra/k8s/job), one overlay of JSON patches per job (infra/k8s/jobs)
# --------------------------------------------------------------------------------------------


def _pointer(path: str) -> list[str]:
    assert path.startswith("/"), path
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def apply_json_patch(doc: Any, operations: list[dict[str, Any]]) -> Any:
    """RFC 6902 ``replace`` and ``add`` (the operations the overlays use) on a copy of ``doc``;
    a ``replace`` of a path that does not exist fails, as it does in kustomize."""
    doc = copy.deepcopy(doc)
    for operation in operations:
        assert operation["op"] in ("replace", "add"), operation
        *parents, last = _pointer(operation["path"])
        node = doc
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            index = len(node) if last == "-" else int(last)
            if operation["op"] == "add":
                node.insert(index, operation["value"])
            else:
                assert index < len(node), operation
                node[index] = operation["value"]
        else:
            assert operation["op"] == "add" or last in node, operation
            node[last] = operation["value"]
    return doc


def k8s_base() -> list[dict[str, Any]]:
    """The base's resources, as its kustomization lists them."""
    base = K8S / "job"
    return [
        doc
        for name in load_yaml(base / "kustomization.yaml")["resources"]
        for doc in load_yaml_docs(read(base / name))
    ]


def k8s_overlay(job: str) -> dict[str, Any]:
    overlay: dict[str, Any] = load_yaml(K8S / "jobs" / job / "kustomization.yaml")
    return overlay


def render_job(job: str) -> list[dict[str, Any]]:
    """A job's resources: the base with the overlay's patches applied to their targets."""
    docs = k8s_base()
    for patch in k8s_overlay(job)["patches"]:
        target = patch["target"]
        matches = [
            i
            for i, doc in enumerate(docs)
            if (doc["kind"], doc["metadata"]["name"]) == (target["kind"], target["name"])
        ]
        assert len(matches) == 1, f"{job}: the patch target {target} is not one base resource"
        docs[matches[0]] = apply_json_patch(docs[matches[0]], yaml.safe_load(patch["patch"]))
    return docs


def flink_deployment(job: str) -> dict[str, Any]:
    docs = [d for d in render_job(job) if d["kind"] == "FlinkDeployment"]
    assert len(docs) == 1
    return docs[0]


def config_map() -> dict[str, str]:
    docs = [d for d in load_yaml_docs(read(K8S / "config.yaml")) if d["kind"] == "ConfigMap"]
    assert len(docs) == 1
    data: dict[str, str] = docs[0]["data"]
    return data


def job_version(job: Job) -> str:
    return project_version(REPO / job.folder / "pyproject.toml")
