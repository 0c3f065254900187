"""Static checks of the Kubernetes files (infra/k8s): the shared config, the one kustomize base of
a job (job/) and the per-job overlays generated from the registry (jobs/).

kubectl is not needed: every overlay patch must target a resource of the base by kind and name,
and deploy_support.render_job applies the overlays' JSON patches (RFC 6902, as kustomize does),
so each job's FlinkDeployment is checked as it is deployed. Where kubectl is installed, its own
rendering must agree with that one.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_support import (
    CHECKPOINT_DIR,
    CHECKPOINT_MOUNT,
    K8S,
    K8S_SECRETS_MOUNT,
    PYTHON_DRIVER,
    TLS_MOUNT,
    VENV_PYTHON,
    apply_json_patch,
    config_map,
    flink_deployment,
    image_is_pinned,
    job_version,
    k8s_base,
    k8s_containers,
    k8s_overlay,
    load_yaml,
    load_yaml_docs,
    pinned_flink_version,
    read,
    render_job,
)

from jupiter_common import registry
from jupiter_common.registry import Job
from jupiter_common.settings import (
    SECRET_FILE_SUFFIX,
    load_settings,
    secret_file_variable_names,
)


def without_secret_files(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` without the ``*_FILE`` variables, whose files exist in the pods only."""
    return {k: v for k, v in env.items() if k not in secret_file_variable_names()}


@pytest.mark.parametrize("path", sorted(K8S.rglob("*.yaml")), ids=lambda p: str(p.relative_to(K8S)))
def test_every_yaml_file_parses(path: Path) -> None:
    docs = load_yaml_docs(read(path))
    assert docs, f"{path} is empty"
    assert all(isinstance(doc, dict) for doc in docs)


def test_the_kustomizations_list_their_files() -> None:
    top = load_yaml(K8S / "kustomization.yaml")
    assert top["resources"] == ["config.yaml", "jobs"]
    base = load_yaml(K8S / "job" / "kustomization.yaml")
    assert base["configurations"] == ["kustomizeconfig.yaml"]
    for folder in (K8S, K8S / "job", K8S / "jobs", *(K8S / "jobs" / j.name for j in registry.JOBS)):
        kustomization = load_yaml(folder / "kustomization.yaml")
        for entry in [
            *kustomization.get("resources", []),
            *kustomization.get("configurations", []),
        ]:
            assert (folder / entry).exists(), f"{folder}: {entry}"
    jobs = load_yaml(K8S / "jobs" / "kustomization.yaml")
    assert jobs["resources"] == [job.name for job in registry.JOBS]
    assert {i["name"]: i["newTag"] for i in jobs["images"]} == {
        job.distribution: job_version(job) for job in registry.JOBS
    }
    assert all(image_is_pinned(f"{i['newName']}:{i['newTag']}") for i in jobs["images"])


def test_the_base_is_one_job_with_placeholders_and_names_no_job() -> None:
    kinds = sorted((d["kind"], d["metadata"]["name"]) for d in k8s_base())
    assert kinds == [
        ("FlinkDeployment", "jupiter-job"),
        ("PersistentVolumeClaim", "jupiter-job-checkpoints"),
    ]
    text = json.dumps(k8s_base()).lower()  # the values; the comments say "base" of kustomize
    for job in registry.JOBS:
        assert not re.search(rf"\b{job.name}\b", text), job.name


@pytest.mark.parametrize("job", registry.JOBS, ids=lambda job: job.name)
def test_every_patch_targets_a_base_resource_and_changes_it(job: Job) -> None:
    base = {(d["kind"], d["metadata"]["name"]): d for d in k8s_base()}
    overlay = k8s_overlay(job.name)
    assert overlay["resources"] == ["../../job"]
    assert {p["target"]["kind"] for p in overlay["patches"]} == {k for k, _ in base}
    for patch in overlay["patches"]:
        target = (patch["target"]["kind"], patch["target"]["name"])
        assert target in base, f"{job.name}: {target} is not in the base"
        operations = yaml.safe_load(patch["patch"])
        for operation in operations:
            # replace: the path must exist in the base (kustomize fails otherwise), and the
            # value must differ from the placeholder, or the operation is not needed.
            before = apply_json_patch(base[target], [])
            after = apply_json_patch(before, [operation])
            assert after != before or job.parallelism == 1, operation


def test_a_patch_of_a_path_the_base_lacks_fails() -> None:
    base = k8s_base()[0]
    with pytest.raises((AssertionError, KeyError)):
        apply_json_patch(base, [{"op": "replace", "path": "/spec/job/paralelism", "value": 2}])
    with pytest.raises((AssertionError, IndexError)):
        apply_json_patch(base, [{"op": "replace", "path": "/spec/job/args/9", "value": "x"}])


def test_k8s_manifests_have_the_required_fields() -> None:
    manifests = [*load_yaml_docs(read(K8S / "config.yaml"))] + [
        doc for job in registry.JOBS for doc in render_job(job.name)
    ]
    kinds = sorted(doc["kind"] for doc in manifests)
    assert kinds == sorted(
        ["ConfigMap", "Secret", *["FlinkDeployment", "PersistentVolumeClaim"] * len(registry.JOBS)]
    )
    for doc in manifests:
        assert doc["apiVersion"] and doc["kind"] and doc["metadata"]["name"], doc
        assert "spec" in doc or doc["kind"] in ("ConfigMap", "Secret"), doc["kind"]


@pytest.mark.parametrize("job", registry.JOBS, ids=lambda job: job.name)
def test_flink_deployment(job: Job) -> None:
    doc = flink_deployment(job.name)
    flink = pinned_flink_version()
    assert doc["apiVersion"] == "flink.apache.org/v1beta1"
    assert doc["metadata"]["name"] == f"jupiter-{job.name}"
    assert doc["metadata"]["labels"]["app.kubernetes.io/component"] == f"{job.name}-job"
    spec = doc["spec"]
    assert spec["image"] == f"{job.distribution}:{job_version(job)}"
    assert image_is_pinned(spec["image"])
    assert spec["flinkVersion"] == "v" + "_".join(flink.split(".")[:2])
    job_spec = spec["job"]
    assert job_spec["jarURI"] == f"local:///opt/flink/opt/flink-python-{flink}.jar"
    assert job_spec["entryClass"] == PYTHON_DRIVER
    assert job_spec["args"] == ["-pyclientexec", VENV_PYTHON, "-pym", job.module]
    assert job_spec["parallelism"] == job.parallelism
    assert job_spec["upgradeMode"] == "savepoint"
    for role in ("jobManager", "taskManager"):
        assert {"memory", "cpu"} <= spec[role]["resource"].keys(), role

    conf = spec["flinkConfiguration"]
    assert all(isinstance(value, str) for value in conf.values()), "values are strings"
    settings = load_settings(job.name, environ=without_secret_files(config_map()))
    assert conf["execution.checkpointing.dir"] == settings.checkpoint_root
    assert conf["execution.checkpointing.savepoint-dir"] == f"{settings.checkpoint_root}/savepoints"
    assert conf["state.backend.type"] == "hashmap"
    assert conf["python.executable"] == conf["python.client.executable"] == VENV_PYTHON
    assert int(conf["taskmanager.numberOfTaskSlots"]) == job.parallelism
    assert conf["high-availability.storageDir"] == f"{CHECKPOINT_DIR}/{job.name}/ha"

    containers = list(k8s_containers(spec["podTemplate"]))
    assert [c["name"] for c in containers] == ["flink-main-container"]
    container = containers[0]
    assert container["envFrom"] == [{"configMapRef": {"name": "jupiter-config"}}]
    env = {item["name"]: item["value"] for item in container["env"]}
    # The job sets its parallelism from FLINK_PARALLELISM: it must be job.parallelism.
    assert env == {"FLINK_PARALLELISM": str(job_spec["parallelism"])}
    assert container["volumeMounts"] == [
        {"name": "checkpoints", "mountPath": CHECKPOINT_MOUNT},
        {"name": "clickhouse-tls", "mountPath": TLS_MOUNT, "readOnly": True},
    ]
    claim = f"jupiter-{job.name}-checkpoints"
    for pod in (spec["podTemplate"], spec["jobManager"]["podTemplate"]):
        assert pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == claim
    pvcs = [d for d in render_job(job.name) if d["kind"] == "PersistentVolumeClaim"]
    assert [p["metadata"]["name"] for p in pvcs] == [claim]
    assert pvcs[0]["spec"]["accessModes"] == ["ReadWriteMany"]


def test_the_secret_is_mounted_as_files_on_the_jobmanager_only() -> None:
    config = config_map()
    files = {k: v for k, v in config.items() if k in secret_file_variable_names()}
    assert files, "the ConfigMap says where the secret files are"
    assert {str(Path(path).parent) for path in files.values()} == {K8S_SECRETS_MOUNT}
    for job in registry.JOBS:
        spec = flink_deployment(job.name)["spec"]
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
        assert mounts[len(container["volumeMounts"]) :] == [
            {"name": "secrets", "mountPath": K8S_SECRETS_MOUNT, "readOnly": True}
        ]
        assert volumes[len(common["volumes"]) :] == [
            {"name": "secrets", "secret": {"secretName": "jupiter-secrets", "defaultMode": 0o440}}
        ]
        assert set(jm_container) == {"name", "volumeMounts"}, "env and envFrom stay common"


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
    for job in registry.JOBS:
        settings = load_settings(job.name, environ=mounted)
        assert settings.clickhouse_password.get_secret_value() == "CHANGE_ME"


def by_identity(docs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def test_kubectl_renders_what_the_patches_say() -> None:
    """Only where kubectl is installed: the rendering above is what kustomize renders."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed (the patches are applied above without it)")
    result = subprocess.run(
        [kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    ours = [*load_yaml_docs(read(K8S / "config.yaml"))]
    ours += [doc for job in registry.JOBS for doc in render_job(job.name)]
    assert by_identity(load_yaml_docs(result.stdout)) == by_identity(ours)
