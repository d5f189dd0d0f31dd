# Cloud Monitoring: the custom metric descriptors, the dashboard and the alert policies (docs/metrics.md).
#
# The descriptors come from the same catalogue the code writes by (shared/atlas/observability/metrics_catalog.json), so
# a metric's kind, type and labels cannot drift between the two; the dashboard and the policies depend on
# the descriptors, so they are created after them. tests/infra/test_monitoring.py checks that the
# dashboard and the policies name only metrics and labels that exist.

locals {
  metrics_catalog = jsondecode(file("${path.module}/../shared/atlas/observability/metrics_catalog.json"))
  metric          = { for m in local.metrics_catalog.metrics : m.name => "${local.metrics_catalog.prefix}${m.name}" }
  # Every Atlas series is a generic_task resource: one per instance (task_id is the instance's id).
  atlas_resource = "resource.type=\"generic_task\""
  notification_channels = concat(
    var.notification_channels,
    [for channel in google_monitoring_notification_channel.email : channel.id],
  )
  runbooks = var.runbook_base_url
}

resource "google_monitoring_metric_descriptor" "atlas" {
  for_each     = { for m in local.metrics_catalog.metrics : m.name => m }
  project      = var.project_id
  type         = local.metric[each.key]
  metric_kind  = each.value.kind
  value_type   = each.value.value_type
  unit         = each.value.unit
  display_name = each.value.display_name
  description  = each.value.description

  dynamic "labels" {
    for_each = each.value.labels
    content {
      key         = labels.key
      value_type  = "STRING"
      description = labels.value
    }
  }

  depends_on = [google_project_service.enabled]
}

resource "google_monitoring_dashboard" "atlas" {
  project = var.project_id
  dashboard_json = templatefile("${path.module}/../infra/monitoring/dashboard.json", {
    environment      = var.environment
    topic            = var.topic_name
    dlq_subscription = local.dlq_inspect_name
  })

  depends_on = [google_monitoring_metric_descriptor.atlas]
}

resource "google_monitoring_notification_channel" "email" {
  for_each     = toset(var.alert_emails)
  project      = var.project_id
  display_name = "Atlas alerts: ${each.value}"
  type         = "email"
  labels       = { email_address = each.value }
}

# More than alert_failure_ratio of the tasks that finished in 10 minutes failed.
resource "google_monitoring_alert_policy" "failure_ratio" {
  project               = var.project_id
  display_name          = "Atlas: failure ratio above ${var.alert_failure_ratio * 100}%"
  combiner              = "OR"
  notification_channels = local.notification_channels
  user_labels           = local.labels

  conditions {
    display_name = "failed / finished tasks"
    condition_threshold {
      filter             = "metric.type=\"${local.metric["tasks"]}\" ${local.atlas_resource} metric.label.status=\"failed\""
      denominator_filter = "metric.type=\"${local.metric["tasks"]}\" ${local.atlas_resource}"
      comparison         = "COMPARISON_GT"
      threshold_value    = var.alert_failure_ratio
      duration           = "300s"
      aggregations {
        alignment_period     = "600s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
      }
      denominator_aggregations {
        alignment_period     = "600s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }

  documentation {
    content   = "Tasks are failing. The failed tasks' error codes are on the dashboard (Failed tasks, by error code). Runbook: ${local.runbooks}/task-stuck-or-failed.md"
    mime_type = "text/markdown"
  }

  depends_on = [google_monitoring_metric_descriptor.atlas]
}

# p95 of publish-to-terminal latency above alert_p95_latency_s for 10 minutes.
resource "google_monitoring_alert_policy" "latency_p95" {
  project               = var.project_id
  display_name          = "Atlas: task latency p95 above ${var.alert_p95_latency_s} s"
  combiner              = "OR"
  notification_channels = local.notification_channels
  user_labels           = local.labels

  conditions {
    display_name = "task latency p95"
    condition_threshold {
      filter          = "metric.type=\"${local.metric["task/latency"]}\" ${local.atlas_resource}"
      comparison      = "COMPARISON_GT"
      threshold_value = var.alert_p95_latency_s
      duration        = "600s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_PERCENTILE_95"
      }
    }
  }

  documentation {
    content   = "Tasks take long from publish to result. Stage latency on the dashboard tells retrieval from generation; LLM errors and fallbacks tell a slow or failing provider. Runbook: ${local.runbooks}/provider-outage.md"
    mime_type = "text/markdown"
  }

  depends_on = [google_monitoring_metric_descriptor.atlas]
}

# Any message waiting on the dead-letter inspection subscription: a task Pub/Sub gave up on.
resource "google_monitoring_alert_policy" "dead_letter_backlog" {
  project               = var.project_id
  display_name          = "Atlas: dead letters waiting"
  combiner              = "OR"
  notification_channels = local.notification_channels
  user_labels           = local.labels

  conditions {
    display_name = "undelivered messages on ${local.dlq_inspect_name}"
    condition_threshold {
      filter          = "metric.type=\"pubsub.googleapis.com/subscription/num_undelivered_messages\" resource.type=\"pubsub_subscription\" resource.label.subscription_id=\"${local.dlq_inspect_name}\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.alert_dead_letter_backlog
      duration        = "300s"
      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_MAX"
        cross_series_reducer = "REDUCE_MAX"
      }
    }
  }

  documentation {
    content   = "Tasks were dead-lettered after ${var.max_delivery_attempts} deliveries. Fix the cause, then `atlas replay-dlq`. Runbook: ${local.runbooks}/dead-letter-replay.md"
    mime_type = "text/markdown"
  }
}

# The daily LLM budget: little left, or spent at twice the pace that would last the day.
resource "google_monitoring_alert_policy" "budget_burn" {
  count                 = var.daily_budget_usd == null ? 0 : 1
  project               = var.project_id
  display_name          = "Atlas: daily LLM budget burning"
  combiner              = "OR"
  notification_channels = local.notification_channels
  user_labels           = local.labels

  conditions {
    display_name = "budget remaining below ${var.alert_budget_remaining_fraction * 100}%"
    condition_threshold {
      filter          = "metric.type=\"${local.metric["budget/remaining"]}\" ${local.atlas_resource}"
      comparison      = "COMPARISON_LT"
      threshold_value = var.daily_budget_usd * var.alert_budget_remaining_fraction
      duration        = "0s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_MIN"
        cross_series_reducer = "REDUCE_MIN"
      }
    }
  }

  conditions {
    display_name = "spend rate above ${var.alert_budget_burn_rate}x the even daily pace"
    condition_threshold {
      filter          = "metric.type=\"${local.metric["llm/cost"]}\" ${local.atlas_resource}"
      comparison      = "COMPARISON_GT"
      threshold_value = var.daily_budget_usd / 86400 * var.alert_budget_burn_rate # USD per second
      duration        = "900s"
      aggregations {
        alignment_period     = "900s"
        per_series_aligner   = "ALIGN_RATE"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }

  documentation {
    content   = "The day's LLM budget (${var.daily_budget_usd} USD) is going fast. When it is spent, tasks fail with budget_exhausted (or use the cheapest entry with over_budget = cheapest). Runbook: ${local.runbooks}/budget-exhausted.md"
    mime_type = "text/markdown"
  }

  depends_on = [google_monitoring_metric_descriptor.atlas]
}

# Tasks keep arriving on the topic, and for 15 minutes none has succeeded.
resource "google_monitoring_alert_policy" "arriving_none_succeed" {
  project               = var.project_id
  display_name          = "Atlas: tasks arrive but none succeed"
  combiner              = "AND"
  notification_channels = local.notification_channels
  user_labels           = local.labels

  conditions {
    display_name = "tasks published to ${var.topic_name}"
    condition_threshold {
      filter          = "metric.type=\"pubsub.googleapis.com/topic/send_message_operation_count\" resource.type=\"pubsub_topic\" resource.label.topic_id=\"${var.topic_name}\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "900s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_RATE"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }

  conditions {
    display_name = "no task succeeded"
    condition_absent {
      # Series are written only when they change: no point for status=succeeded means no success.
      filter   = "metric.type=\"${local.metric["tasks"]}\" ${local.atlas_resource} metric.label.status=\"succeeded\""
      duration = "900s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }

  documentation {
    content   = "Work is arriving and nothing succeeds: the worker, retrieval or every LLM provider is down. Runbook: ${local.runbooks}/provider-outage.md and ${local.runbooks}/task-stuck-or-failed.md"
    mime_type = "text/markdown"
  }

  depends_on = [google_monitoring_metric_descriptor.atlas]
}
