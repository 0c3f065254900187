"""The Grafana dashboard's queries and a Prometheus scrape, for the tests that hold one against
the other: the static check of infra/observability and the e2e test of a job's endpoint."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
OBSERVABILITY = REPO / "infra" / "observability"
DASHBOARD = OBSERVABILITY / "grafana" / "dashboards" / "jupiter.json"

_METRIC = re.compile(r"\b(flink_[A-Za-z0-9_]+)")
_SAMPLE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$")
_LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')


def dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text()))


def panels(board: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
    """Every panel, those inside rows included."""
    for panel in (board or dashboard())["panels"]:
        yield panel
        yield from panel.get("panels", [])


def queries(board: dict[str, Any] | None = None) -> list[str]:
    """The PromQL of every panel's targets."""
    return [target["expr"] for panel in panels(board) for target in panel.get("targets", [])]


def dashboard_metric_names(board: dict[str, Any] | None = None) -> set[str]:
    """Every metric name the dashboard's queries read."""
    return {name for expr in queries(board) for name in _METRIC.findall(expr)}


def exported_metrics(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """A Prometheus text exposition: metric name -> (labels, value) of each sample."""
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        assert match, f"not a Prometheus sample line: {line!r}"
        name, labels, value = match.groups()
        found = dict(_LABEL.findall(labels or ""))
        samples.setdefault(name, []).append((found, float(value)))
    return samples
