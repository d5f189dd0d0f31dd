# Tasks in, dead letters out. The same topology as infra/local/stack.py (names, ack deadline, 5 attempts),
# with our own push subscription to the worker rather than an Eventarc trigger: it is the only way to set
# the ack deadline, the retry backoff and the dead-letter topic (docs/architecture.md, decisions).

resource "google_pubsub_topic" "tasks" {
  # checkov:skip=CKV_GCP_83:Google-managed encryption; a task is a prompt, not regulated data, and a CMEK key ring would cost more than this whole environment at rest.
  name                       = var.topic_name
  message_retention_duration = "86400s" # a day of published tasks can be replayed with a seek
  depends_on                 = [google_project_service.enabled]
}

resource "google_pubsub_topic" "dlq" {
  # checkov:skip=CKV_GCP_83:Google-managed encryption, as for the task topic.
  name       = local.dlq_topic_name
  depends_on = [google_project_service.enabled]
}

# Dead letters wait here to be read (gcloud pubsub subscriptions pull ... --auto-ack, docs/deploy.md).
resource "google_pubsub_subscription" "dlq_inspect" {
  name                       = local.dlq_inspect_name
  topic                      = google_pubsub_topic.dlq.id
  ack_deadline_seconds       = 60
  message_retention_duration = "${var.dead_letter_retention_days * 86400}s"
  retain_acked_messages      = false

  expiration_policy {
    ttl = "" # never expires, even when nobody reads it for a month
  }
}

# The worker's trigger.
resource "google_pubsub_subscription" "worker" {
  name                 = local.worker_subscription
  topic                = google_pubsub_topic.tasks.id
  ack_deadline_seconds = var.ack_deadline_seconds

  push_config {
    # The path names the topic: functions-framework then gives the CloudEvent the same source as an
    # Eventarc-delivered one (//pubsub.googleapis.com/projects/P/topics/T), locally and here alike.
    push_endpoint = "${google_cloudfunctions2_function.worker.service_config[0].uri}/projects/${var.project_id}/topics/${var.topic_name}"

    oidc_token {
      service_account_email = google_service_account.push.email
      audience              = google_cloudfunctions2_function.worker.service_config[0].uri
    }
  }

  retry_policy {
    minimum_backoff = "${var.retry_minimum_backoff_seconds}s"
    maximum_backoff = "${var.retry_maximum_backoff_seconds}s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dlq.id
    max_delivery_attempts = var.max_delivery_attempts
  }

  expiration_policy {
    ttl = ""
  }

  lifecycle {
    precondition {
      condition     = var.ack_deadline_seconds >= local.worker_timeout_s
      error_message = "ack_deadline_seconds must be at least the worker's timeout (local.worker_timeout_s), or Pub/Sub delivers a task again while it still runs."
    }
    precondition {
      condition     = var.retry_minimum_backoff_seconds <= var.retry_maximum_backoff_seconds
      error_message = "retry_minimum_backoff_seconds must not exceed retry_maximum_backoff_seconds."
    }
  }

  depends_on = [
    google_cloud_run_v2_service_iam_member.worker_invoker_push,
    google_service_account_iam_member.pubsub_agent_signs_push_tokens,
    google_pubsub_topic_iam_member.pubsub_agent_publishes_dead_letters,
  ]
}

# Dead letters are also pushed to the dead-letter handler, which records each task as failed with the
# reason (the inspect subscription above keeps its own copy for `atlas replay-dlq`). No dead-letter policy
# here: a dead letter that cannot be recorded is retried with backoff until its retention runs out.
resource "google_pubsub_subscription" "dead_letter_handler" {
  name                       = local.dlq_handler_name
  topic                      = google_pubsub_topic.dlq.id
  ack_deadline_seconds       = 60
  message_retention_duration = "${var.dead_letter_retention_days * 86400}s"

  push_config {
    push_endpoint = "${google_cloudfunctions2_function.dead_letter.service_config[0].uri}/projects/${var.project_id}/topics/${local.dlq_topic_name}"

    oidc_token {
      service_account_email = google_service_account.push.email
      audience              = google_cloudfunctions2_function.dead_letter.service_config[0].uri
    }
  }

  retry_policy {
    minimum_backoff = "${var.retry_minimum_backoff_seconds}s"
    maximum_backoff = "${var.retry_maximum_backoff_seconds}s"
  }

  expiration_policy {
    ttl = ""
  }

  depends_on = [
    google_cloud_run_v2_service_iam_member.dead_letter_invoker_push,
    google_service_account_iam_member.pubsub_agent_signs_push_tokens,
  ]
}
