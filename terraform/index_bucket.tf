# The embedded index's store of record (only without managed Qdrant, which is its own store). Each retrieval
# instance keeps its own Qdrant Edge shard in /tmp: it restores the newest snapshot (a tar of the flushed
# shard folder) from this bucket when it starts, checks for a newer generation at most every
# ATLAS_INDEX_REFRESH_S, and an ingest publishes a new snapshot only if the generation it started from is
# still the live one (shared/atlas/retrieval/snapshot_store.py). That is what lets retrieval scale past one
# instance in embedded mode (functions.tf).

resource "google_storage_bucket" "index" {
  # checkov:skip=CKV_GCP_62:Access logs would record every instance's generation check (one GET every ATLAS_INDEX_REFRESH_S); Cloud Audit Logs already record admin access, and only atlas-retrieval may touch the objects.
  count                       = local.qdrant_managed ? 0 : 1
  name                        = "${var.project_id}-atlas-index"
  location                    = var.region # next to the function: restores are fast and cross no region
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  # Everything ingested lives here; teardown empties it explicitly first (docs/deploy.md).
  force_destroy = false
  labels        = merge(local.labels, { component = "knowledge-index" })

  # Every publish is a new generation; the replaced ones stay as noncurrent versions, to roll back a bad ingest.
  versioning {
    enabled = true
  }

  # Versioning already keeps the history that matters; soft delete would bill each deleted generation 7 more days.
  soft_delete_policy {
    retention_duration_seconds = 0
  }

  # A noncurrent generation goes once it has more than index_noncurrent_snapshots_kept newer ones, or has
  # been noncurrent for index_noncurrent_snapshot_days, whichever comes first. The live one is never touched.
  lifecycle_rule {
    condition {
      num_newer_versions = var.index_noncurrent_snapshots_kept + 1 # the live generation counts as a newer one
      with_state         = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.index_noncurrent_snapshot_days
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.enabled]
}
