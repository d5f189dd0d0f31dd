# Function sources: the zips built by scripts/package_functions.py, and the repository of the images
# Cloud Functions builds from them.

locals {
  # dist/manifest.json: {"bundles": {"worker": {"zip": "worker-<hash>.zip", "content_sha256": ...}, ...}}.
  # `terraform plan` fails here until `make package` has written it.
  manifest     = jsondecode(file(var.bundle_manifest))
  manifest_dir = dirname(var.bundle_manifest)
  bundles      = { for name in ["worker", "retrieval"] : name => local.manifest.bundles[name] }
}

resource "random_id" "sources_bucket" {
  byte_length = 4
}

resource "google_storage_bucket" "sources" {
  # checkov:skip=CKV_GCP_62:Access logs of a bucket that only Terraform writes and the function builder reads would record nothing useful; Cloud Audit Logs already record admin access.
  name                        = "${var.project_id}-atlas-sources-${random_id.sources_bucket.hex}"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true # only derived artefacts: `make package` rebuilds every one of them

  versioning {
    enabled = true
  }

  # A bundle is needed only while its function builds; replaced bundles become noncurrent versions.
  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 30
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.enabled]
}

# The object's name is the bundle's content hash: a changed bundle is a new object, which redeploys its
# function; an unchanged one plans no change at all.
resource "google_storage_bucket_object" "bundle" {
  for_each     = local.bundles
  name         = each.value.zip
  bucket       = google_storage_bucket.sources.name
  source       = "${local.manifest_dir}/${each.value.zip}"
  content_type = "application/zip"
}

resource "google_artifact_registry_repository" "functions" {
  # checkov:skip=CKV_GCP_84:Google-managed encryption for images built from our own public-source bundles; CMEK adds a KMS key's cost without protecting anything secret.
  repository_id = "atlas-functions"
  location      = var.region
  format        = "DOCKER"
  description   = "Images of the Atlas functions, built by Cloud Functions from the source bundles."

  # Keep the last few images of each function (rollback), delete the rest: storage is what costs at rest.
  cleanup_policy_dry_run = false
  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = 5
    }
  }
  cleanup_policies {
    id     = "delete-old"
    action = "DELETE"
    condition {
      older_than = "2592000s" # 30 days
    }
  }

  depends_on = [google_project_service.enabled]
}
