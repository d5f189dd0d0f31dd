# Firestore: the task documents (tasks/{task_id}), their indexes, their TTL and backups.

resource "google_firestore_database" "default" {
  project                           = var.project_id
  name                              = "(default)" # the code uses the default database
  location_id                       = var.region
  type                              = "FIRESTORE_NATIVE"
  concurrency_mode                  = "OPTIMISTIC" # the claim is a short transaction on one document
  point_in_time_recovery_enablement = var.environment == "prod" ? "POINT_IN_TIME_RECOVERY_ENABLED" : "POINT_IN_TIME_RECOVERY_DISABLED"
  delete_protection_state           = var.firestore_delete_protection ? "DELETE_PROTECTION_ENABLED" : "DELETE_PROTECTION_DISABLED"
  # Protected: `terraform destroy` only forgets the database. Unprotected (teardown): it is deleted.
  deletion_policy = var.firestore_delete_protection ? "ABANDON" : "DELETE"
  depends_on      = [google_project_service.enabled]
}

# Every read in the code is by document id (claim, finish, `atlas show`), which needs no index. This one
# serves the operator's query in docs/deploy.md: tasks in a given status, most recently updated first
# (e.g. what is stuck in `running`, or what failed today).
resource "google_firestore_index" "tasks_by_status" {
  project    = var.project_id
  database   = google_firestore_database.default.name
  collection = var.tasks_collection

  fields {
    field_path = "status"
    order      = "ASCENDING"
  }
  fields {
    field_path = "updated_at"
    order      = "DESCENDING"
  }
}

# Finished tasks expire: Firestore deletes a document (within about a day) once its TTL field is in the
# past. The worker writes the field on terminal tasks only, so a queued or running task never expires.
resource "google_firestore_field" "task_ttl" {
  project    = var.project_id
  database   = google_firestore_database.default.name
  collection = var.tasks_collection
  field      = var.task_ttl_field

  ttl_config {}

  # A timestamp that only grows would make a hot index; nothing queries it.
  index_config {}
}

# Large, never-queried fields are kept out of the single-field indexes: cheaper writes, no index-entry
# size limits on long designs.
resource "google_firestore_field" "not_indexed" {
  for_each   = toset(["result", "sources", "raw_excerpt"])
  project    = var.project_id
  database   = google_firestore_database.default.name
  collection = var.tasks_collection
  field      = each.value

  index_config {}
}

resource "google_firestore_backup_schedule" "daily" {
  project   = var.project_id
  database  = google_firestore_database.default.name
  retention = "${var.firestore_backup_retention_days * 86400}s"

  daily_recurrence {}
}
