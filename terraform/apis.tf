# The APIs this environment uses. disable_on_destroy = false: turning an API off on destroy can break
# other things in the project and takes minutes; teardown (docs/deploy.md) leaves them on.

locals {
  services = toset([
    "artifactregistry.googleapis.com",     # the functions' images
    "cloudbuild.googleapis.com",           # builds the functions (and runs cloudbuild.yaml)
    "cloudfunctions.googleapis.com",       # the two gen2 functions
    "cloudresourcemanager.googleapis.com", # project IAM
    "firestore.googleapis.com",            # tasks
    "iam.googleapis.com",                  # service accounts
    "iamcredentials.googleapis.com",       # OIDC/ID tokens (push subscription, worker -> retrieval)
    "monitoring.googleapis.com",           # custom metrics, the dashboard, alert policies
    "pubsub.googleapis.com",               # tasks in, dead letters out
    "run.googleapis.com",                  # gen2 functions run on Cloud Run
    "secretmanager.googleapis.com",        # LLM and Qdrant keys
    "serviceusage.googleapis.com",         # this file
    "storage.googleapis.com",              # function sources
  ])
}

resource "google_project_service" "enabled" {
  for_each           = local.services
  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}
