"""Static checks of the observability files (infra/observability) and their Compose services:
the dashboard is valid Grafana JSON with a row per job and the panels issue 10 asks for, every
metric its queries read is documented (tests/e2e/test_metrics_endpoint.py checks that a running
job exports each), and Prometheus and Grafana are wired to each other and to the jobs' reporter.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from dashboard import DASHBOARD, OBSERVABILITY, dashboard, dashboard_metric_names, panels, queries
from deploy_support import (
    COMPOSE,
    COMPOSE_TEST_ENV,
    K8S,
    REPO,
    compose_job,
    environment_of,
    flink_deployment,
    flink_properties,
    image_is_pinned,
    interpolate_tree,
    load_yaml,
    load_yaml_docs,
    read,
)

from jupiter_common import registry
from jupiter_common.flink import metrics
from jupiter_common.registry import Job

REPORTER_PORT = metrics.CLUSTER_PORT
"""The port of the reporter of every Flink process of a cluster (Compose, Kubernetes)."""
REPORTER = metrics.reporter_configuration(REPORTER_PORT)
PROMETHEUS = OBSERVABILITY / "prometheus" / "prometheus.yml"
PROVISIONING = OBSERVABILITY / "grafana" / "provisioning"
REQUIRED_PANELS = {
    "Messages in /s": ["jupiter_records_in"],
    "Rows written /s": ["jupiter_rows_written"],
    "Rejected /s by reason": ["jupiter_reason_records_rejected"],
    "Insert retries": ["jupiter_insert_retries"],
    "Lag (pending records)": ["pendingRecords"],
    "Event-to-queryable latency": ["event_to_queryable_ms_bucket"],
    "Last checkpoint age": ["lastCheckpointCompletedTimestamp"],
    "Checkpoint duration and size": ["lastCheckpointDuration"],
}


def services() -> dict[str, Any]:
    doc = interpolate_tree(load_yaml(COMPOSE / "services.yaml"), COMPOSE_TEST_ENV)
    found: dict[str, Any] = doc["services"]
    return found


def compose_configs() -> dict[str, Path]:
    doc = load_yaml(COMPOSE / "services.yaml")
    return {name: (COMPOSE / spec["file"]).resolve() for name, spec in doc["configs"].items()}


def test_the_dashboard_is_grafana_json_with_unique_ids_and_a_layout_on_the_grid() -> None:
    board = dashboard()
    assert board["uid"] and board["title"] and board["schemaVersion"] >= 36
    ids = [panel["id"] for panel in panels(board)]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    for panel in panels(board):
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] != "row":
            assert panel["targets"], f"{panel['title']}: no query"
            assert panel["datasource"]["uid"] == datasource()["uid"], panel["title"]


def test_the_dashboard_has_a_row_per_job_and_every_query_is_the_rows_job() -> None:
    board = dashboard()
    variables = {v["name"]: v for v in board["templating"]["list"]}
    job = variables["job"]
    assert job["multi"] and job["includeAll"]
    assert "job_name" in job["definition"] and "flink_jobmanager_job_uptime" in job["definition"]
    rows = [panel for panel in board["panels"] if panel["type"] == "row"]
    assert [row.get("repeat") for row in rows] == ["job"], "one row, repeated for every job"
    for expr in queries(board):
        assert 'job_name="$job"' in expr, expr
        assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}"), expr


def test_the_dashboard_shows_what_operators_asked_for() -> None:
    by_title = {panel["title"]: panel for panel in panels() if panel["type"] != "row"}
    for title, metrics_shown in REQUIRED_PANELS.items():
        assert title in by_title, f"no panel {title!r}"
        exprs = " ".join(target["expr"] for target in by_title[title]["targets"])
        for name in metrics_shown:
            assert name in exprs, f"{title}: {name} not queried"
    latency = " ".join(t["expr"] for t in by_title["Event-to-queryable latency"]["targets"])
    assert "histogram_quantile(0.5," in latency and "histogram_quantile(0.99," in latency
    assert "sum by (le)" in latency
    assert "sum by (reason)" in by_title["Rejected /s by reason"]["targets"][0]["expr"]


def test_every_metric_the_dashboard_reads_is_documented() -> None:
    page = read(REPO / "docs" / "observability.md")
    documented = set(re.findall(r"`((?:flink_|jupiter_)[A-Za-z0-9_]+)`", page))
    prefix = "flink_taskmanager_job_task_operator_"
    names = dashboard_metric_names()
    assert names, "the dashboard reads no metric"
    missing = [n for n in names if n not in documented and n.removeprefix(prefix) not in documented]
    assert sorted(missing) == []


def test_the_histogram_the_dashboard_reads_is_the_one_the_functions_register() -> None:
    expected = f"{metrics.METRIC_PREFIX}table_le_{metrics.LATENCY_METRIC}_bucket"
    assert expected in dashboard_metric_names()


def datasource() -> dict[str, Any]:
    doc = load_yaml(PROVISIONING / "datasources.yaml")
    assert doc["apiVersion"] == 1
    (source,) = doc["datasources"]
    found: dict[str, Any] = source
    return found


def test_prometheus_scrapes_every_flink_process_by_the_network_alias() -> None:
    doc = load_yaml(PROMETHEUS)
    (job,) = doc["scrape_configs"]
    (discovery,) = job["dns_sd_configs"]
    assert discovery["type"] == "A" and discovery["port"] == REPORTER_PORT
    assert discovery["names"] == ["jupiter-flink"]
    for interval in (doc["global"]["scrape_interval"], doc["global"]["evaluation_interval"]):
        assert re.fullmatch(r"\d+[smh]", interval)


def test_compose_runs_pinned_prometheus_and_grafana_with_the_provisioned_files() -> None:
    found = services()
    prometheus, grafana = found["prometheus"], found["grafana"]
    assert image_is_pinned(prometheus["image"]) and image_is_pinned(grafana["image"])
    configs = compose_configs()
    for name, path in configs.items():
        assert path.is_file(), f"config {name}: {path} missing"
    targets = {c["target"]: configs[c["source"]] for c in prometheus["configs"]}
    assert targets == {"/etc/prometheus/prometheus.yml": PROMETHEUS.resolve()}
    mounted = {c["target"]: configs[c["source"]] for c in grafana["configs"]}
    provider = load_yaml(PROVISIONING / "dashboards.yaml")["providers"][0]
    dashboard_path = f"{provider['options']['path']}/{DASHBOARD.name}"
    assert mounted == {
        "/etc/grafana/provisioning/datasources/jupiter.yaml": PROVISIONING.resolve()
        / "datasources.yaml",
        "/etc/grafana/provisioning/dashboards/jupiter.yaml": PROVISIONING.resolve()
        / "dashboards.yaml",
        dashboard_path: DASHBOARD.resolve(),
    }
    environment = grafana["environment"]
    assert environment["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"] == dashboard_path
    assert datasource()["url"] == "http://prometheus:9090"
    assert grafana["depends_on"]["prometheus"]["condition"] == "service_healthy"


@pytest.mark.parametrize("path", sorted(OBSERVABILITY.rglob("*.y*ml")), ids=lambda p: p.name)
def test_every_observability_yaml_file_parses_to_a_mapping(path: Path) -> None:
    assert isinstance(load_yaml(path), dict)


@pytest.mark.parametrize("job", registry.JOBS, ids=lambda job: job.name)
def test_every_flink_process_in_compose_runs_the_reporter_under_the_scraped_alias(job: Job) -> None:
    found = compose_job(job.name)["services"]
    for role in ("jobmanager", "taskmanager"):
        service = interpolate_tree(found[f"{job.name}-{role}"], COMPOSE_TEST_ENV)
        properties = flink_properties(environment_of(service)["FLINK_PROPERTIES"])
        assert {key: properties.get(key) for key in REPORTER} == REPORTER, role
        assert service["networks"]["jupiter"]["aliases"] == ["jupiter-flink"], role


@pytest.mark.parametrize("job", registry.JOBS, ids=lambda job: job.name)
def test_every_flink_pod_on_kubernetes_runs_the_reporter_and_says_where(job: Job) -> None:
    deployment = flink_deployment(job.name)
    configuration = deployment["spec"]["flinkConfiguration"]
    assert {key: configuration.get(key) for key in REPORTER} == REPORTER
    template = deployment["spec"]["podTemplate"]
    annotations = template["metadata"]["annotations"]
    assert annotations == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(REPORTER_PORT),
        "prometheus.io/path": "/metrics",
    }
    (container,) = template["spec"]["containers"]
    port = {"name": "metrics", "containerPort": REPORTER_PORT, "protocol": "TCP"}
    assert port in container["ports"]
    selector = pod_monitor()["spec"]["selector"]["matchLabels"]
    assert template["metadata"]["labels"].items() >= selector.items()


def pod_monitor() -> dict[str, Any]:
    folder = K8S / "monitoring"
    assert load_yaml(folder / "kustomization.yaml")["resources"] == ["podmonitor.yaml"]
    (doc,) = load_yaml_docs(read(folder / "podmonitor.yaml"))
    assert (doc["apiVersion"], doc["kind"]) == ("monitoring.coreos.com/v1", "PodMonitor")
    (endpoint,) = doc["spec"]["podMetricsEndpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("metrics", "/metrics")
    found: dict[str, Any] = doc
    return found


def test_the_pod_monitor_is_opt_in() -> None:
    """Applying a PodMonitor fails where the Prometheus Operator's CRDs are missing, so the
    default kustomization leaves infra/k8s/monitoring out."""
    assert "monitoring" not in load_yaml(K8S / "kustomization.yaml")["resources"]
    pod_monitor()


def test_the_local_cluster_runs_the_reporter_in_each_process() -> None:
    from jupiter_local import cluster

    config = yaml.safe_load(cluster._config_yaml(cluster.Cluster(), 2))
    assert config["metrics.reporter.prom.factory.class"] == metrics.REPORTER_FACTORY
    assert config["metrics.reporter.prom.port"] == cluster.METRICS_PORTS
    first, _, last = cluster.METRICS_PORTS.partition("-")
    assert int(last) > int(first), "a range: the JobManager and the TaskManager each take one"
