# Identities, one per job, each with only what that job needs. Roles are granted on the resource they
# concern (a secret, a service, a topic, a bucket) wherever Google Cloud allows it; the project-level
# grants are the ones without a narrower scope. No basic roles (owner/editor/viewer), no public members.

# --- Service accounts ------------------------------------------------------------------------------

resource "google_service_account" "worker" {
  account_id   = "atlas-worker"
  display_name = "Atlas worker function (runtime)"
  depends_on   = [google_project_service.enabled]
}

resource "google_service_account" "retrieval" {
  account_id   = "atlas-retrieval"
  display_name = "Atlas retrieval function (runtime)"
  depends_on   = [google_project_service.enabled]
}

resource "google_service_account" "push" {
  account_id   = "atlas-push"
  display_name = "Atlas push subscription (signs the OIDC token sent to the worker)"
  depends_on   = [google_project_service.enabled]
}

# Builds the functions' images from the source zips (build_config.service_account), instead of the
# project's default compute account, which often holds Editor.
resource "google_service_account" "function_build" {
  account_id   = "atlas-function-build"
  display_name = "Atlas function image builds (Cloud Build, on behalf of Cloud Functions)"
  depends_on   = [google_project_service.enabled]
}

# Runs cloudbuild.yaml: tests, packaging, terraform plan/apply, the smoke test.
resource "google_service_account" "deployer" {
  account_id   = "atlas-deployer"
  display_name = "Atlas CI/CD (cloudbuild.yaml: terraform apply and the smoke test)"
  depends_on   = [google_project_service.enabled]
}

# --- Worker ------------------------------------------------------------------------------------------

# Firestore has no per-collection IAM; datastore.user is its narrowest role that can read and write documents.
resource "google_project_iam_member" "worker_firestore" {
  project = var.project_id
  role    = "roles/datastore.user"
  member  = google_service_account.worker.member
}

# Each instance writes its own metric series (atlas.observability.export); metricWriter can write, not read.
resource "google_project_iam_member" "worker_metrics" {
  project = var.project_id
  role    = "roles/monitoring.metricWriter"
  member  = google_service_account.worker.member
}

# The only identity allowed to call retrieval (the worker sends an ID token for the service URL).
resource "google_cloud_run_v2_service_iam_member" "retrieval_invoker_worker" {
  project  = var.project_id
  location = google_cloudfunctions2_function.retrieval.location
  name     = google_cloudfunctions2_function.retrieval.name
  role     = "roles/run.invoker"
  member   = google_service_account.worker.member
}

resource "google_secret_manager_secret_iam_member" "worker_llm_keys" {
  for_each  = google_secret_manager_secret.llm_key
  project   = var.project_id
  secret_id = each.value.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.worker.member
}

# --- Retrieval ---------------------------------------------------------------------------------------

resource "google_secret_manager_secret_iam_member" "retrieval_qdrant_key" {
  count     = local.qdrant_managed ? 1 : 0
  project   = var.project_id
  secret_id = google_secret_manager_secret.qdrant_api_key[0].secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.retrieval.member
}

# Restores, checks and publishes the embedded index's snapshots (index_bucket.tf). objectUser reads, creates and
# replaces objects (a publish replaces the live one) in that bucket only; it cannot change the bucket or its IAM.
resource "google_storage_bucket_iam_member" "retrieval_index" {
  count  = local.qdrant_managed ? 0 : 1
  bucket = google_storage_bucket.index[0].name
  role   = "roles/storage.objectUser"
  member = google_service_account.retrieval.member
}

# --- Push subscription -------------------------------------------------------------------------------

# The only identity allowed to call the worker: the push subscription's OIDC token is signed as atlas-push.
resource "google_cloud_run_v2_service_iam_member" "worker_invoker_push" {
  project  = var.project_id
  location = google_cloudfunctions2_function.worker.location
  name     = google_cloudfunctions2_function.worker.name
  role     = "roles/run.invoker"
  member   = google_service_account.push.member
}

# The dead-letter handler is called only by the push subscription on the dead-letter topic.
resource "google_cloud_run_v2_service_iam_member" "dead_letter_invoker_push" {
  project  = var.project_id
  location = google_cloudfunctions2_function.dead_letter.location
  name     = google_cloudfunctions2_function.dead_letter.name
  role     = "roles/run.invoker"
  member   = google_service_account.push.member
}

# --- The Pub/Sub service agent -----------------------------------------------------------------------

resource "google_project_service_identity" "pubsub" {
  provider = google-beta
  project  = var.project_id
  service  = "pubsub.googleapis.com"
}

# Mints the push OIDC token as atlas-push (required for projects created before April 2021, harmless after).
resource "google_service_account_iam_member" "pubsub_agent_signs_push_tokens" {
  service_account_id = google_service_account.push.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = google_project_service_identity.pubsub.member
}

# Dead-lettering: the agent publishes the failed message to the DLQ topic and acknowledges it on the
# source subscription. Without both grants Pub/Sub keeps redelivering instead of dead-lettering.
resource "google_pubsub_topic_iam_member" "pubsub_agent_publishes_dead_letters" {
  project = var.project_id
  topic   = google_pubsub_topic.dlq.name
  role    = "roles/pubsub.publisher"
  member  = google_project_service_identity.pubsub.member
}

resource "google_pubsub_subscription_iam_member" "pubsub_agent_acks_dead_letters" {
  project      = var.project_id
  subscription = google_pubsub_subscription.worker.name
  role         = "roles/pubsub.subscriber"
  member       = google_project_service_identity.pubsub.member
}

# --- Function builds ---------------------------------------------------------------------------------

resource "google_project_iam_member" "function_build_logs" {
  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = google_service_account.function_build.member
}

resource "google_artifact_registry_repository_iam_member" "function_build_pushes_images" {
  project    = var.project_id
  location   = google_artifact_registry_repository.functions.location
  repository = google_artifact_registry_repository.functions.name
  role       = "roles/artifactregistry.writer"
  member     = google_service_account.function_build.member
}

resource "google_storage_bucket_iam_member" "function_build_reads_sources" {
  bucket = google_storage_bucket.sources.name
  role   = "roles/storage.objectViewer"
  member = google_service_account.function_build.member
}

# --- Deployer (Cloud Build running cloudbuild.yaml) ---------------------------------------------------
# Everything terraform/ manages, and nothing else. Its own grants below are applied once by a person at
# bootstrap (docs/deploy.md): the deployer may only grant the two project roles the runtime accounts need.

locals {
  deployer_project_roles = toset([
    "roles/artifactregistry.admin",         # the images repository and its IAM
    "roles/cloudfunctions.developer",       # the two functions
    "roles/datastore.owner",                # Firestore database, indexes, TTL, backups; the smoke test reads a task
    "roles/logging.logWriter",              # the build's own logs (CLOUD_LOGGING_ONLY)
    "roles/monitoring.editor",              # metric descriptors, the dashboard, alert policies, channels
    "roles/pubsub.admin",                   # topics, subscriptions and their IAM; the smoke test publishes
    "roles/run.admin",                      # invoker grants on the functions' Cloud Run services
    "roles/secretmanager.admin",            # secrets and their IAM (values are added out of band)
    "roles/serviceusage.serviceUsageAdmin", # apis.tf and the Pub/Sub service identity
    "roles/storage.admin",                  # the sources bucket, its objects and IAM; Cloud Build's staging bucket
  ])
  # Project-level roles terraform/ grants to other accounts; the deployer may grant these and no others.
  grantable_project_roles = ["roles/datastore.user", "roles/logging.logWriter", "roles/monitoring.metricWriter"]
}

resource "google_project_iam_member" "deployer" {
  for_each = local.deployer_project_roles
  project  = var.project_id
  role     = each.value
  member   = google_service_account.deployer.member
}

resource "google_project_iam_member" "deployer_manages_service_accounts" {
  # checkov:skip=CKV_GCP_49:The deployer creates the five Atlas service accounts and sets their IAM (actAs, token creator), which needs iam.serviceAccountAdmin; it runs only from cloudbuild.yaml, and a person grants it at bootstrap.
  project = var.project_id
  role    = "roles/iam.serviceAccountAdmin"
  member  = google_service_account.deployer.member
}

resource "google_project_iam_member" "deployer_grants_runtime_roles" {
  project = var.project_id
  role    = "roles/resourcemanager.projectIamAdmin"
  member  = google_service_account.deployer.member

  condition {
    title       = "only-atlas-runtime-roles"
    description = "The deployer may only add or remove the project roles the Atlas runtime accounts need."
    expression  = "api.getAttribute('iam.googleapis.com/modifiedGrantsByRole', []).hasOnly(${jsonencode(local.grantable_project_roles)})"
  }
}

# Deploying a function or a push subscription that runs as an account requires actAs on that account
# only, not project-wide Service Account User.
resource "google_service_account_iam_member" "deployer_acts_as" {
  for_each = {
    worker         = google_service_account.worker.name
    retrieval      = google_service_account.retrieval.name
    push           = google_service_account.push.name
    function_build = google_service_account.function_build.name
    deployer       = google_service_account.deployer.name # a build that runs as the deployer
  }
  service_account_id = each.value
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.deployer.member
}

# The state bucket may live in another project (e.g. a shared CI project); storage.admin above covers only this one.
resource "google_storage_bucket_iam_member" "deployer_state" {
  count  = var.state_bucket == "" ? 0 : 1
  bucket = var.state_bucket
  role   = "roles/storage.objectAdmin"
  member = google_service_account.deployer.member
}
