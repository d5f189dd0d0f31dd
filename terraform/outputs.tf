output "project_id" {
  description = "The environment's project."
  value       = var.project_id
}

output "topic" {
  description = "The task topic's id (publish tasks here)."
  value       = google_pubsub_topic.tasks.name
}

output "dlq_topic" {
  description = "The dead-letter topic (read it through dlq_inspect_subscription)."
  value       = google_pubsub_topic.dlq.name
}

output "dlq_inspect_subscription" {
  description = "Pull dead letters from here: gcloud pubsub subscriptions pull <this> --auto-ack --limit=10."
  value       = google_pubsub_subscription.dlq_inspect.name
}

output "worker_subscription" {
  description = "The push subscription that drives the worker."
  value       = google_pubsub_subscription.worker.name
}

output "tasks_collection" {
  description = "Firestore collection of the task documents."
  value       = var.tasks_collection
}

output "worker_uri" {
  description = "The worker's URL (private: only atlas-push may invoke it)."
  value       = google_cloudfunctions2_function.worker.service_config[0].uri
}

output "retrieval_uri" {
  description = "The retrieval function's URL (private: only atlas-worker may invoke it)."
  value       = google_cloudfunctions2_function.retrieval.service_config[0].uri
}

output "service_accounts" {
  description = "Email of each Atlas service account, by job."
  value = {
    worker         = google_service_account.worker.email
    retrieval      = google_service_account.retrieval.email
    push           = google_service_account.push.email
    function_build = google_service_account.function_build.email
    deployer       = google_service_account.deployer.email
  }
}

output "secrets" {
  description = "Secret Manager secret ids that need a value (docs/deploy.md, adding secrets)."
  value = concat(
    [for secret in google_secret_manager_secret.llm_key : secret.secret_id],
    [for secret in google_secret_manager_secret.qdrant_api_key : secret.secret_id],
  )
}

output "bundles" {
  description = "The source objects the functions were built from (their names carry the content hash)."
  value       = { for name, object in google_storage_bucket_object.bundle : name => "gs://${object.bucket}/${object.name}" }
}

output "index_bucket" {
  description = "The bucket of the embedded index's snapshots (empty with managed Qdrant)."
  value       = local.qdrant_managed ? "" : "gs://${google_storage_bucket.index[0].name}"
}

output "qdrant_url" {
  description = "The Qdrant the retrieval function uses (empty: the embedded store)."
  value       = local.qdrant_managed ? local.qdrant_url : ""
}
