# Atlas: the worker (Pub/Sub push -> CloudEvent function), the private retrieval function, Firestore.
# Skeletal: secrets, alerting, the build service account and the state backend come with the Terraform issue.

locals {
  # Eventarc is not needed: the worker is fed by our own push subscription, not a function trigger.
  # iam.googleapis.com is needed to create the service accounts below.
  services = toset([
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "monitoring.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
  ])

  labels       = { app = "atlas", environment = var.environment }
  pubsub_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
  worker_uri   = google_cloudfunctions2_function.worker.service_config[0].uri
}

data "google_project" "this" {
  project_id = var.project_id
}

resource "google_project_service" "enabled" {
  for_each           = local.services
  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}

# --- Identities --------------------------------------------------------------------------------

resource "google_service_account" "worker" {
  account_id   = "atlas-worker"
  display_name = "Atlas worker function"
  depends_on   = [google_project_service.enabled]
}

resource "google_service_account" "retrieval" {
  account_id   = "atlas-retrieval"
  display_name = "Atlas retrieval function"
  depends_on   = [google_project_service.enabled]
}

resource "google_service_account" "push" {
  account_id   = "atlas-push"
  display_name = "Atlas push subscription (OIDC token to the worker)"
  depends_on   = [google_project_service.enabled]
}

# --- Pub/Sub topics ----------------------------------------------------------------------------

resource "google_pubsub_topic" "tasks" {
  name       = var.topic_name
  labels     = local.labels
  depends_on = [google_project_service.enabled]
}

resource "google_pubsub_topic" "dlq" {
  name       = "${var.topic_name}-dlq"
  labels     = local.labels
  depends_on = [google_project_service.enabled]
}

resource "google_pubsub_subscription" "dlq_inspect" {
  name                       = "${var.topic_name}-dlq-inspect"
  topic                      = google_pubsub_topic.dlq.id
  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"
  labels                     = local.labels

  expiration_policy {
    ttl = "" # never expires
  }
}

# --- Function sources --------------------------------------------------------------------------

resource "random_id" "bucket_suffix" {
  byte_length = 4
}

resource "google_storage_bucket" "sources" {
  name                        = "${var.project_id}-atlas-sources-${random_id.bucket_suffix.hex}"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  labels                      = local.labels

  versioning {
    enabled = true
  }
}

# The object name carries the bundle's hash: a new bundle is a new object, which redeploys the function.
resource "google_storage_bucket_object" "worker" {
  name   = "worker-${filemd5(var.worker_bundle)}.zip"
  bucket = google_storage_bucket.sources.name
  source = var.worker_bundle
}

resource "google_storage_bucket_object" "retrieval" {
  name   = "retrieval-${filemd5(var.retrieval_bundle)}.zip"
  bucket = google_storage_bucket.sources.name
  source = var.retrieval_bundle
}

# --- Functions ---------------------------------------------------------------------------------

resource "google_cloudfunctions2_function" "retrieval" {
  name        = "atlas-retrieval"
  location    = var.region
  description = "Atlas retrieval: search and ingest over the knowledge base (private, HTTP)."
  labels      = local.labels

  build_config {
    runtime     = "python311"
    entry_point = "retrieval"
    source {
      storage_source {
        bucket = google_storage_bucket.sources.name
        object = google_storage_bucket_object.retrieval.name
      }
    }
  }

  service_config {
    service_account_email = google_service_account.retrieval.email
    available_memory      = "2Gi"
    timeout_seconds       = 60
    min_instance_count    = 0
    # The embedded store (/tmp/qdrant, in memory, lost when the instance stops) is per instance:
    # keep one instance so that what was ingested is what is searched. Use qdrant_url beyond dev.
    max_instance_count = var.qdrant_url == "" ? 1 : 5
    # ALLOW_ALL but private: only the worker holds roles/run.invoker (the worker has no VPC egress).
    ingress_settings = "ALLOW_ALL"
    environment_variables = merge(
      {
        ATLAS_KNOWLEDGE_COLLECTION = var.knowledge_collection
        ATLAS_EMBEDDING_MODEL_DIR  = "model" # inside the bundle
      },
      var.qdrant_url == "" ? { ATLAS_QDRANT_PATH = "/tmp/qdrant" } : { ATLAS_QDRANT_URL = var.qdrant_url },
    )
  }

  depends_on = [google_project_service.enabled]
}

resource "google_cloudfunctions2_function" "worker" {
  name        = "atlas-worker"
  location    = var.region
  description = "Atlas worker: one task per Pub/Sub push delivery (CloudEvent signature)."
  labels      = local.labels

  build_config {
    runtime     = "python311"
    entry_point = "handle_task"
    source {
      storage_source {
        bucket = google_storage_bucket.sources.name
        object = google_storage_bucket_object.worker.name
      }
    }
  }

  # No event_trigger: the trigger is the push subscription below.
  service_config {
    service_account_email            = google_service_account.worker.email
    timeout_seconds                  = 300
    available_memory                 = "1Gi"
    available_cpu                    = "1" # concurrency above 1 needs at least one vCPU
    max_instance_request_concurrency = 8
    min_instance_count               = 0
    max_instance_count               = 10
    # Pub/Sub push cannot reach ALLOW_INTERNAL_ONLY; private through IAM (only atlas-push invokes).
    ingress_settings = "ALLOW_ALL"
    environment_variables = merge(
      {
        ATLAS_PROJECT          = var.project_id
        ATLAS_TOPIC            = var.topic_name
        ATLAS_TASKS_COLLECTION = var.tasks_collection
        ATLAS_RETRIEVAL_URL    = google_cloudfunctions2_function.retrieval.service_config[0].uri
      },
      var.llm_chain == "[]" ? {} : { ATLAS_LLM_CHAIN = var.llm_chain },
    )
  }

  depends_on = [google_project_service.enabled]
}

# --- IAM ---------------------------------------------------------------------------------------

resource "google_cloud_run_v2_service_iam_member" "retrieval_invoker_worker" {
  project  = var.project_id
  location = google_cloudfunctions2_function.retrieval.location
  name     = google_cloudfunctions2_function.retrieval.name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.worker.email}"
}

resource "google_cloud_run_v2_service_iam_member" "worker_invoker_push" {
  project  = var.project_id
  location = google_cloudfunctions2_function.worker.location
  name     = google_cloudfunctions2_function.worker.name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.push.email}"
}

resource "google_project_iam_member" "worker_datastore_user" {
  project = var.project_id
  role    = "roles/datastore.user"
  member  = "serviceAccount:${google_service_account.worker.email}"
}

# The Pub/Sub service agent mints the push OIDC token, forwards to the DLQ and acks the original.
resource "google_service_account_iam_member" "push_token_creator" {
  service_account_id = google_service_account.push.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_agent
}

resource "google_pubsub_topic_iam_member" "dlq_publisher" {
  project = var.project_id
  topic   = google_pubsub_topic.dlq.name
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_agent
}

resource "google_pubsub_subscription_iam_member" "worker_subscriber" {
  project      = var.project_id
  subscription = google_pubsub_subscription.worker.name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}

# --- The worker's trigger: our push subscription -----------------------------------------------

resource "google_pubsub_subscription" "worker" {
  name                 = "${var.topic_name}-worker"
  topic                = google_pubsub_topic.tasks.id
  ack_deadline_seconds = 300
  labels               = local.labels

  push_config {
    # The path names the topic, as functions-framework expects of a Pub/Sub push to a CloudEvent function.
    push_endpoint = "${local.worker_uri}/projects/${var.project_id}/topics/${var.topic_name}"
    oidc_token {
      service_account_email = google_service_account.push.email
      audience              = local.worker_uri
    }
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dlq.id
    max_delivery_attempts = 5
  }

  expiration_policy {
    ttl = "" # never expires
  }

  depends_on = [
    google_cloud_run_v2_service_iam_member.worker_invoker_push,
    google_service_account_iam_member.push_token_creator,
  ]
}

# --- Firestore ---------------------------------------------------------------------------------

resource "google_firestore_database" "default" {
  project                 = var.project_id
  name                    = "(default)"
  location_id             = var.region
  type                    = "FIRESTORE_NATIVE"
  delete_protection_state = "DELETE_PROTECTION_ENABLED"
  deletion_policy         = "ABANDON"
  depends_on              = [google_project_service.enabled]
}
