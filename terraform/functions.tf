# The two gen2 functions, both private through IAM (iam.tf: atlas-push alone invokes the worker,
# atlas-worker alone invokes retrieval). The worker also takes internal ingress only: Cloud Run counts a
# Pub/Sub push from the same project as internal. Retrieval cannot: the worker reaches it over its run.app
# URL without a VPC connector (a connector's VMs would cost more at rest than everything else here).

resource "google_cloudfunctions2_function" "retrieval" {
  # checkov:skip=CKV_GCP_124:Ingress must admit the worker, which has no VPC egress; only atlas-worker holds run.invoker (iam.tf), so every other caller gets 403 before the code runs.
  name        = "atlas-retrieval"
  location    = var.region
  description = "Atlas retrieval: search and ingest over the knowledge base (private, HTTP)."

  build_config {
    runtime           = "python311"
    entry_point       = "retrieval"
    service_account   = google_service_account.function_build.id
    docker_repository = google_artifact_registry_repository.functions.id
    source {
      storage_source {
        bucket = google_storage_bucket.sources.name
        object = google_storage_bucket_object.bundle["retrieval"].name
      }
    }
  }

  service_config {
    service_account_email = google_service_account.retrieval.email
    available_memory      = "2Gi" # the model, ONNX runtime's arenas, and the embedded store if used
    available_cpu         = "1"
    timeout_seconds       = local.retrieval_timeout_s
    # Embedding is CPU-bound: a few concurrent requests per vCPU keep latency predictable.
    max_instance_request_concurrency = 4
    min_instance_count               = var.retrieval_min_instances
    # Managed Qdrant is shared; an embedded index is each instance's own copy of the snapshot in index_bucket.tf.
    max_instance_count             = var.retrieval_max_instances
    ingress_settings               = "ALLOW_ALL"
    all_traffic_on_latest_revision = true
    environment_variables = merge(
      local.retrieval_env,
      local.qdrant_managed ? local.retrieval_env_managed_qdrant : local.retrieval_env_embedded_qdrant,
    )

    dynamic "secret_environment_variables" {
      for_each = local.retrieval_secret_env
      content {
        key        = secret_environment_variables.key
        project_id = var.project_id
        secret     = secret_environment_variables.value
        version    = "latest"
      }
    }
  }

  depends_on = [
    google_artifact_registry_repository_iam_member.function_build_pushes_images,
    google_project_iam_member.function_build_logs,
    google_storage_bucket_iam_member.function_build_reads_sources,
    google_secret_manager_secret_iam_member.retrieval_qdrant_key,
    google_secret_manager_secret_version.qdrant_api_key,
    google_storage_bucket_iam_member.retrieval_index, # an instance restores the index when it starts
  ]
}

resource "google_cloudfunctions2_function" "worker" {
  name        = "atlas-worker"
  location    = var.region
  description = "Atlas worker: one task per Pub/Sub push delivery (CloudEvent signature)."

  build_config {
    runtime           = "python311"
    entry_point       = "handle_task"
    service_account   = google_service_account.function_build.id
    docker_repository = google_artifact_registry_repository.functions.id
    source {
      storage_source {
        bucket = google_storage_bucket.sources.name
        object = google_storage_bucket_object.bundle["worker"].name
      }
    }
  }

  # No event_trigger: the trigger is our push subscription (pubsub.tf).
  service_config {
    service_account_email = google_service_account.worker.email
    available_memory      = "1Gi"
    available_cpu         = "1" # concurrency above 1 needs at least one vCPU
    timeout_seconds       = local.worker_timeout_s
    # A task mostly waits on retrieval and the LLM: 8 at once per instance; threads share the clients.
    max_instance_request_concurrency = 8
    min_instance_count               = 0
    max_instance_count               = var.worker_max_instances
    ingress_settings                 = "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision   = true
    environment_variables = merge(
      local.worker_env,
      var.daily_budget_usd == null ? {} : local.worker_env_daily_budget,
    )

    dynamic "secret_environment_variables" {
      for_each = local.worker_secret_env
      content {
        key        = secret_environment_variables.key
        project_id = var.project_id
        secret     = secret_environment_variables.value
        version    = "latest"
      }
    }
  }

  lifecycle {
    precondition {
      condition     = local.task_deadline_s < local.worker_timeout_s
      error_message = "The task deadline (ATLAS_TASK_DEADLINE_S) must leave the worker time to store the outcome before its timeout."
    }
    precondition {
      condition     = local.lease_s >= local.worker_timeout_s
      error_message = "The lease (ATLAS_LEASE_S) must outlive the worker's timeout, or a running task can be taken over."
    }
    precondition {
      condition     = local.retrieval_call_timeout < local.retrieval_timeout_s
      error_message = "The worker's retrieval timeout must be below the retrieval function's own timeout."
    }
  }

  depends_on = [
    google_artifact_registry_repository_iam_member.function_build_pushes_images,
    google_project_iam_member.function_build_logs,
    google_storage_bucket_iam_member.function_build_reads_sources,
    google_secret_manager_secret_iam_member.worker_llm_keys,
  ]
}

# The dead-letter handler: the worker's bundle with another entry point (handle_dead_letter). It records the
# task of each dead letter as failed with the reason and the delivery count; it calls no LLM, so it gets
# no secrets, and it needs the worker's settings only because the module loads them at import.
resource "google_cloudfunctions2_function" "dead_letter" {
  name        = "atlas-dead-letter"
  location    = var.region
  description = "Atlas dead-letter handler: records dead-lettered tasks as failed (CloudEvent signature)."

  build_config {
    runtime           = "python311"
    entry_point       = "handle_dead_letter"
    service_account   = google_service_account.function_build.id
    docker_repository = google_artifact_registry_repository.functions.id
    source {
      storage_source {
        bucket = google_storage_bucket.sources.name
        object = google_storage_bucket_object.bundle["worker"].name
      }
    }
  }

  # No event_trigger: the trigger is the push subscription on the dead-letter topic (pubsub.tf).
  service_config {
    service_account_email            = google_service_account.worker.email
    available_memory                 = "512Mi"
    available_cpu                    = "1"
    timeout_seconds                  = 60
    max_instance_request_concurrency = 8
    min_instance_count               = 0
    max_instance_count               = 2
    ingress_settings                 = "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision   = true
    environment_variables = merge(
      local.worker_env,
      var.daily_budget_usd == null ? {} : local.worker_env_daily_budget,
      local.dead_letter_env,
    )
  }

  depends_on = [
    google_artifact_registry_repository_iam_member.function_build_pushes_images,
    google_project_iam_member.function_build_logs,
    google_storage_bucket_iam_member.function_build_reads_sources,
  ]
}
