terraform {
  # 1.11: write-only arguments (secret_data_wo) keep the Qdrant key's secret version out of the state.
  required_version = ">= 1.11"

  # google, google-beta and random: ~> the version of the schema tests/infra/test_provider_schema.py checks
  # this configuration against (requirements-provider-schema.txt; terraform/README.md says why).
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 8.7"
    }
    # The Pub/Sub service agent's identity (google_project_service_identity) is a beta-only resource.
    google-beta = {
      source  = "hashicorp/google-beta"
      version = "~> 8.7"
    }
    # Declared for modules that zip in Terraform; our bundles are zipped by scripts/package_functions.py,
    # whose hash is stable across machines (the archive provider's zip embeds file modes of the checkout).
    archive = {
      source  = "hashicorp/archive"
      version = "~> 2.7"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.9"
    }
    # Used only when var.qdrant_cloud_enabled (qdrant.tf); with the flag off no resource of it is
    # planned. Its management key comes from the QDRANT_CLOUD_API_KEY environment variable, never a variable.
    qdrant-cloud = {
      source  = "qdrant/qdrant-cloud"
      version = "~> 1.19"
    }
  }
}

provider "google" {
  project        = var.project_id
  region         = var.region
  default_labels = local.labels
}

provider "google-beta" {
  project        = var.project_id
  region         = var.region
  default_labels = local.labels
}

# The provider refuses an empty api_key even when none of its resources is planned; with the flag off it
# gets a placeholder that is never sent anywhere, with the flag on null (then QDRANT_CLOUD_API_KEY is read).
provider "qdrant-cloud" {
  api_key    = var.qdrant_cloud_enabled ? null : "qdrant-cloud-disabled"
  account_id = var.qdrant_cloud_account_id
}
