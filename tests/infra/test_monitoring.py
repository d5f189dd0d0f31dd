"""The dashboard and the alert policies name only metrics and labels that exist, and come after them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from terraform_reader import TERRAFORM, TerraformConfig

from atlas.observability.metrics import catalog
from stack import REPO

DASHBOARD = REPO / "infra" / "monitoring" / "dashboard.json"
# Google's own metrics the dashboard and policies use, with the labels they filter or group on.
BUILT_IN = {
    "pubsub.googleapis.com/subscription/num_undelivered_messages": {"resource.label.subscription_id"},
    "pubsub.googleapis.com/topic/send_message_operation_count": {"resource.label.topic_id"},
}
METRIC_TYPE = re.compile(r'metric\.type="([^"]+)"')
LOCAL_METRIC = re.compile(r'metric\.type=\\?"\$\{local\.metric\["([^"]+)"\]\}\\?"')
LABEL_REF = re.compile(r"\b(metric\.label\.[a-z_]+|resource\.label\.[a-z_]+)")
TEMPLATE_VAR = re.compile(r"\$\{([a-z_]+)\}")
ATLAS_RESOURCE_LABELS = {f"resource.label.{k}" for k in ("project_id", "location", "namespace", "job", "task_id")}


def rendered_dashboard(values: dict[str, str]) -> dict[str, Any]:
    text = DASHBOARD.read_text()
    missing = set(TEMPLATE_VAR.findall(text)) - set(values)
    assert not missing, f"dashboard.json uses template variables monitoring.tf does not pass: {missing}"
    return json.loads(TEMPLATE_VAR.sub(lambda m: values[m.group(1)], text))


def data_sets(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [ds for tile in dashboard["mosaicLayout"]["tiles"] for ds in tile["widget"]["xyChart"]["dataSets"]]


def known_labels(metric_type: str) -> set[str]:
    atlas = catalog()
    if metric_type in BUILT_IN:
        return BUILT_IN[metric_type]
    name = metric_type.removeprefix(atlas.prefix)
    assert metric_type.startswith(atlas.prefix) and name in atlas.metrics, f"no metric {metric_type}"
    return {f"metric.label.{label}" for label in atlas.metrics[name].labels} | ATLAS_RESOURCE_LABELS


def check_filter(filter_text: str, group_by: list[str] | None = None) -> str:
    types = METRIC_TYPE.findall(filter_text)
    assert len(types) == 1, filter_text
    labels = known_labels(types[0])
    used = set(LABEL_REF.findall(filter_text)) | set(group_by or [])
    assert used <= labels, f"{types[0]}: labels {used - labels} do not exist"
    return types[0]


def test_dashboard_names_only_existing_metrics_and_labels_and_shows_every_atlas_metric() -> None:
    dashboard = rendered_dashboard({"environment": "dev", "topic": "atlas-tasks", "dlq_subscription": "x"})
    shown = set()
    for ds in data_sets(dashboard):
        query = ds["timeSeriesQuery"]["timeSeriesFilter"]
        shown.add(check_filter(query["filter"], query["aggregation"].get("groupByFields")))
    atlas = catalog()
    assert {atlas.metric_type(name) for name in atlas.metrics} <= shown


def test_distribution_metrics_are_charted_with_distribution_aligners() -> None:
    dashboard = rendered_dashboard({"environment": "dev", "topic": "t", "dlq_subscription": "x"})
    atlas = catalog()
    for ds in data_sets(dashboard):
        query = ds["timeSeriesQuery"]["timeSeriesFilter"]
        name = METRIC_TYPE.findall(query["filter"])[0].removeprefix(atlas.prefix)
        spec = atlas.metrics.get(name)
        if spec is not None and spec.value_type == "DISTRIBUTION":
            assert query["aggregation"]["perSeriesAligner"] == "ALIGN_DELTA", name
        if spec is not None and spec.kind == "GAUGE":
            assert query["aggregation"]["perSeriesAligner"] not in ("ALIGN_RATE", "ALIGN_DELTA"), name


def alert_conditions(terraform: TerraformConfig) -> dict[str, list[dict[str, Any]]]:
    policies = {
        name: body for (kind, name), body in terraform.resources.items() if kind == "google_monitoring_alert_policy"
    }
    return {
        name: [
            c
            for block in body["conditions"]
            for c in block.get("condition_threshold", []) + block.get("condition_absent", [])
        ]
        for name, body in policies.items()
    }


def test_alerts_cover_failures_latency_dead_letters_budget_and_a_stalled_pipeline(terraform: TerraformConfig) -> None:
    assert set(alert_conditions(terraform)) == {
        "failure_ratio",
        "latency_p95",
        "dead_letter_backlog",
        "budget_burn",
        "arriving_none_succeed",
    }


@pytest.mark.parametrize("field", ["filter", "denominator_filter"])
def test_alert_filters_name_only_existing_metrics_and_labels(terraform: TerraformConfig, field: str) -> None:
    checked = 0
    for name, conditions in alert_conditions(terraform).items():
        for condition in conditions:
            if field not in condition:
                continue
            text = condition[field]
            for metric in LOCAL_METRIC.findall(text):
                assert metric in catalog().metrics, f"{name}: local.metric[{metric!r}] is not in metrics_catalog.json"
            literal = LOCAL_METRIC.sub(lambda m: f'metric.type="{catalog().metric_type(m.group(1))}"', text)
            check_filter(literal.replace('\\"', '"'))
            checked += 1
    assert checked >= (6 if field == "filter" else 1)


def test_descriptors_come_from_the_catalogue_and_precede_what_uses_them(terraform: TerraformConfig) -> None:
    descriptor = terraform.resource("google_monitoring_metric_descriptor", "atlas")
    assert "metrics_catalog" in descriptor["for_each"]
    assert "metrics_catalog.json" in str(terraform.locals["metrics_catalog"])
    users = [("google_monitoring_dashboard", "atlas")] + [
        (kind, name)
        for (kind, name), body in terraform.resources.items()
        if kind == "google_monitoring_alert_policy" and "local.metric[" in json.dumps(body)
    ]
    for kind, name in users:
        depends = terraform.resource(kind, name).get("depends_on", [])
        assert any("google_monitoring_metric_descriptor.atlas" in str(d) for d in depends), f"{kind}.{name}"


def test_worker_may_write_metrics(terraform: TerraformConfig) -> None:
    grant = terraform.resource("google_project_iam_member", "worker_metrics")
    assert grant["role"] == '"roles/monitoring.metricWriter"' and "worker" in grant["member"]
    assert "monitoring.googleapis.com" in (Path(TERRAFORM) / "apis.tf").read_text()
