output "topic" {
  description = "The task topic (publish tasks here)."
  value       = google_pubsub_topic.tasks.id
}

output "dlq_topic" {
  description = "The dead-letter topic (read it through the -dlq-inspect subscription)."
  value       = google_pubsub_topic.dlq.id
}

output "worker_uri" {
  description = "The worker function's service URI (private: only the push identity may invoke it)."
  value       = google_cloudfunctions2_function.worker.service_config[0].uri
}

output "retrieval_uri" {
  description = "The retrieval function's service URI (private: only the worker may invoke it)."
  value       = google_cloudfunctions2_function.retrieval.service_config[0].uri
}

output "worker_service_account" {
  description = "Email of the worker's service account."
  value       = google_service_account.worker.email
}

output "retrieval_service_account" {
  description = "Email of the retrieval function's service account."
  value       = google_service_account.retrieval.email
}

output "push_service_account" {
  description = "Email of the identity the push subscription signs its OIDC tokens as."
  value       = google_service_account.push.email
}
