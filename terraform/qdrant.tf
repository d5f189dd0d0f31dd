# Optional: a managed Qdrant Cloud cluster on GCP and a database key that can only read and write the
# knowledge collection (qdrant_cloud_enabled = true). Off by default: then retrieval uses qdrant_url, or
# the embedded store.
#
# The qdrant provider keeps the key it creates in the Terraform state (its `key` attribute): the state
# bucket is private and versioned, and only the deployer can read it. From there the key goes into the
# secret atlas-qdrant-api-key through a write-only argument, so the secret version adds no second copy.

data "qdrant-cloud_booking_packages" "gcp" {
  count          = var.qdrant_cloud_enabled ? 1 : 0
  cloud_provider = "gcp"
  cloud_region   = var.qdrant_cloud_region
}

locals {
  qdrant_packages = var.qdrant_cloud_enabled ? [
    for package in data.qdrant-cloud_booking_packages.gcp[0].packages : package
    if package.resource_configuration[0].cpu == var.qdrant_cloud_package.cpu && package.resource_configuration[0].ram == var.qdrant_cloud_package.ram
  ] : []
}

resource "qdrant-cloud_accounts_cluster" "knowledge" {
  count          = var.qdrant_cloud_enabled ? 1 : 0
  name           = "atlas-${var.environment}"
  cloud_provider = "gcp"
  cloud_region   = var.qdrant_cloud_region

  configuration {
    number_of_nodes = 1
    database_configuration {
      service {
        jwt_rbac = true # needed for keys scoped to a collection
      }
    }
    node_configuration {
      package_id = local.qdrant_packages[0].id
    }
  }

  lifecycle {
    precondition {
      condition     = length(local.qdrant_packages) > 0
      error_message = "No Qdrant Cloud package matches qdrant_cloud_package in qdrant_cloud_region."
    }
  }
}

resource "qdrant-cloud_accounts_database_api_key_v2" "retrieval" {
  count      = var.qdrant_cloud_enabled ? 1 : 0
  cluster_id = qdrant-cloud_accounts_cluster.knowledge[0].id
  name       = "atlas-retrieval-${var.environment}"

  # Retrieval searches and ingests one collection; the key can do nothing else.
  collection_access_rules {
    collection_name = var.knowledge_collection
    access_type     = "COLLECTION_ACCESS_RULE_ACCESS_TYPE_READ_WRITE"
  }
}

resource "google_secret_manager_secret_version" "qdrant_api_key" {
  count                  = var.qdrant_cloud_enabled ? 1 : 0
  secret                 = google_secret_manager_secret.qdrant_api_key[0].id
  secret_data_wo         = qdrant-cloud_accounts_database_api_key_v2.retrieval[0].key
  secret_data_wo_version = 1 # bump to write a rotated key
}
